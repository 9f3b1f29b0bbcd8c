"""A tiny llama-architecture GGUF for the llama generator's tests: random weights (a few hundred
KB) and a SentencePiece-style vocabulary in its metadata (byte tokens, so any text tokenizes),
plus a plain chat template. It answers gibberish, but through the real llama.cpp code paths."""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def _vocabulary() -> tuple[list[str], list[float], list[int]]:
    """Tokens, their scores and types (1 normal, 2 unknown, 3 control, 6 byte)."""
    tokens, scores, types = ["<unk>", "<s>", "</s>"], [0.0, 0.0, 0.0], [2, 3, 3]
    for byte in range(256):
        tokens.append(f"<0x{byte:02X}>")
        scores.append(0.0)
        types.append(6)
    pieces = list(string.ascii_letters + string.digits + ".,;:!?()[]-_'\"")
    pieces += ["\u2581" + word for word in ("the", "a", "is", "to", "of", "and", "in", "it", "you", "answer")]
    pieces.append("\u2581")
    for rank, piece in enumerate(pieces):
        tokens.append(piece)
        scores.append(-float(rank))
        types.append(1)
    return tokens, scores, types


def write_tiny_gguf(path: Path, seed: int = 0, embedding: int = 64, layers: int = 2, heads: int = 4) -> Path:
    import gguf

    tokens, scores, types = _vocabulary()
    vocab, feed_forward = len(tokens), 2 * embedding
    rng = np.random.default_rng(seed)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("voicerag-test-tiny")
    writer.add_context_length(4096)
    writer.add_embedding_length(embedding)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(feed_forward)
    writer.add_head_count(heads)
    writer.add_head_count_kv(heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(embedding // heads)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_chat_template(CHAT_TEMPLATE)

    output = weight(vocab, embedding)
    output[:259] -= 4.0  # keep control and byte tokens unlikely: the tests want readable text back
    writer.add_tensor("token_embd.weight", weight(vocab, embedding))
    writer.add_tensor("output_norm.weight", np.ones(embedding, dtype=np.float32))
    writer.add_tensor("output.weight", output)
    for block in range(layers):
        prefix = f"blk.{block}"
        writer.add_tensor(f"{prefix}.attn_norm.weight", np.ones(embedding, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"{prefix}.{name}.weight", weight(embedding, embedding))
        writer.add_tensor(f"{prefix}.ffn_norm.weight", np.ones(embedding, dtype=np.float32))
        writer.add_tensor(f"{prefix}.ffn_gate.weight", weight(feed_forward, embedding))
        writer.add_tensor(f"{prefix}.ffn_up.weight", weight(feed_forward, embedding))
        writer.add_tensor(f"{prefix}.ffn_down.weight", weight(embedding, feed_forward))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
