"""Random-weight checkpoints written in the public GLM-4-Voice on-disk layouts.

The tests build tiny ones and the GPU benchmark real-sized ones; both then go through the same
loading code as the downloaded checkpoints, so key names, config parsing and file checks are
exercised for real. Test support, outside the package: nothing here ships or answers questions."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import save_file

from voicerag_cli.models.glm4voice.speech_tokenizer import CHECKPOINT_PREFIX, SpeechTokenizerConfig, WhisperVQEncoder

T = TypeVar("T")


def _seeded(build: Callable[[], T], seed: int) -> T:
    """Build a module with PyTorch's default (fan-in scaled) init from a fixed seed: random but
    well-conditioned weights, so activations and codebook choices are not degenerate."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def write_speech_tokenizer(folder: Path, config: SpeechTokenizerConfig, seed: int = 0) -> Path:
    """config.json, preprocessor_config.json and model.safetensors as in `glm-4-voice-tokenizer`,
    including the weights the tokenizer skips (final layer norm, a layer past the quantizer, a
    Whisper decoder tensor) so that the skipping is tested too."""
    from transformers import WhisperFeatureExtractor

    folder.mkdir(parents=True, exist_ok=True)
    encoder = _seeded(lambda: WhisperVQEncoder(config), seed)
    state = {CHECKPOINT_PREFIX + name: tensor.contiguous() for name, tensor in encoder.state_dict().items()}
    dim = config.d_model
    state[CHECKPOINT_PREFIX + "layer_norm.weight"] = torch.ones(dim)
    state[CHECKPOINT_PREFIX + "layer_norm.bias"] = torch.zeros(dim)
    state[CHECKPOINT_PREFIX + f"layers.{config.quantize_position}.fc1.bias"] = torch.zeros(config.encoder_ffn_dim)
    state["model.decoder.layer_norm.weight"] = torch.ones(dim)
    save_file(state, str(folder / "model.safetensors"))
    payload = {"model_type": "whisper", "architectures": ["WhisperVQForConditionalGeneration"]}
    payload |= dataclasses.asdict(config)
    (folder / "config.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    WhisperFeatureExtractor(feature_size=config.num_mel_bins).save_pretrained(str(folder))
    return folder


TEXT_CORPUS = (
    "The safety bicycle was introduced in 1885 by John Kemp Starley. "
    "Olympus Mons is the tallest volcano in the solar system. "
    "A grounded answer cites its passages, like this [1] or [2]. "
    "Numbers 0 1 2 3 4 5 6 7 8 9 and punctuation , . ? ! : ; ( ) - café ☕"
)


def write_tokenizer(folder: Path, audio_count: int, text_vocab: int = 400) -> Any:
    """A byte-level BPE tokenizer with GLM-4-Voice's special tokens and `<|audio_0|>`... appended
    after the text vocabulary, contiguous, as in the real one; saved as tokenizer.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from voicerag_cli.models.glm4voice.protocol import END_OF_TEXT, SPECIAL_TOKENS

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=text_vocab, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator([TEXT_CORPUS] * 4, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=END_OF_TEXT, pad_token=END_OF_TEXT)
    tokenizer.add_special_tokens(
        {"additional_special_tokens": [*SPECIAL_TOKENS, *(f"<|audio_{n}|>" for n in range(audio_count))]}
    )
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(folder))
    return tokenizer


def glm_config(vocab_size: int, stop_ids: list[int], **sizes: int) -> Any:
    """A transformers GLM-4 config (the architecture family of GLM-4-Voice-9B); defaults to its
    published 9B shape, `sizes` override for tiny test models."""
    from transformers import GlmConfig

    return GlmConfig(vocab_size=vocab_size, eos_token_id=stop_ids, pad_token_id=stop_ids[1], **sizes)


def write_interleaved_lm(folder: Path, audio_count: int, seed: int = 0, **sizes: int) -> Path:
    """A random-weight causal LM snapshot (config.json, model.safetensors, tokenizer files) that
    speaks the GLM-4-Voice token protocol; tiny by default."""
    from transformers import GlmForCausalLM

    from voicerag_cli.models.glm4voice.protocol import TokenMap

    tokenizer = write_tokenizer(folder, audio_count)
    tokens = TokenMap.from_tokenizer(tokenizer)
    shape = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "max_position_embeddings": 4096,
    } | sizes
    config = glm_config(len(tokenizer), list(tokens.stop_ids), **shape)
    model = _seeded(lambda: GlmForCausalLM(config), seed)
    model.save_pretrained(str(folder))
    return folder


def write_chatglm_lm(folder: Path, audio_count: int, seed: int = 0, **sizes: int) -> tuple[Path, Any]:
    """The snapshot of `write_interleaved_lm` re-saved in the published GLM-4-Voice-9B layout
    (ChatGLM names, fused query/key/value, `model_type = "chatglm"`; the tokenizer as
    `tokenizer.model` tiktoken ranks + `tokenizer_config.json` added tokens; upstream's code named
    in auto_map but not shipped); returns the folder and the native model it was made from."""
    from safetensors.torch import load_file
    from transformers import GlmForCausalLM

    write_interleaved_lm(folder, audio_count, seed, **sizes)
    native = GlmForCausalLM.from_pretrained(str(folder)).eval()
    config = native.config
    state = load_file(str(folder / "model.safetensors"))
    out = {
        "transformer.embedding.word_embeddings.weight": state["model.embed_tokens.weight"],
        "transformer.encoder.final_layernorm.weight": state["model.norm.weight"],
        "transformer.output_layer.weight": state["lm_head.weight"],
        "transformer.rotary_pos_emb.inv_freq": native.model.rotary_emb.inv_freq.clone(),
    }
    for i in range(config.num_hidden_layers):
        src, dst = f"model.layers.{i}.", f"transformer.encoder.layers.{i}."
        for kind in ("weight", "bias"):
            parts = [state[f"{src}self_attn.{p}_proj.{kind}"] for p in "qkv"]
            out[f"{dst}self_attention.query_key_value.{kind}"] = torch.cat(parts)
        out[f"{dst}self_attention.dense.weight"] = state[f"{src}self_attn.o_proj.weight"]
        out[f"{dst}mlp.dense_h_to_4h.weight"] = state[f"{src}mlp.gate_up_proj.weight"]
        out[f"{dst}mlp.dense_4h_to_h.weight"] = state[f"{src}mlp.down_proj.weight"]
        for norm in ("input_layernorm", "post_attention_layernorm"):
            out[f"{dst}{norm}.weight"] = state[f"{src}{norm}.weight"]
    (folder / "model.safetensors").unlink()
    names = sorted(out)
    half = len(names) // 2  # two shards, as a real multi-file snapshot
    save_file({n: out[n].contiguous() for n in names[:half]}, str(folder / "model-00001-of-00002.safetensors"))
    save_file({n: out[n].contiguous() for n in names[half:]}, str(folder / "model-00002-of-00002.safetensors"))
    chatglm = {
        "model_type": "chatglm",
        "architectures": ["ChatGLMModel"],
        "auto_map": {"AutoModelForCausalLM": "modeling_chatglm.ChatGLMForConditionalGeneration"},
        "num_layers": config.num_hidden_layers,
        "padded_vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size,
        "ffn_hidden_size": config.intermediate_size,
        "kv_channels": config.head_dim,
        "num_attention_heads": config.num_attention_heads,
        "multi_query_attention": True,
        "multi_query_group_num": config.num_key_value_heads,
        "seq_length": config.max_position_embeddings,
        "layernorm_epsilon": config.rms_norm_eps,
        "rope_ratio": config.rope_parameters["rope_theta"] / 10000.0,
        "rmsnorm": True,
        "original_rope": True,
        "add_bias_linear": False,
        "add_qkv_bias": True,
        "apply_residual_connection_post_layernorm": False,
        "post_layer_norm": True,
        "eos_token_id": config.eos_token_id,
        "pad_token_id": config.pad_token_id,
    }
    (folder / "config.json").write_text(json.dumps(chatglm, indent=2), encoding="utf-8")
    write_tiktoken_files(folder)
    return folder, native


def write_tiktoken_files(folder: Path) -> None:
    """Replace a byte-level BPE `tokenizer.json` by upstream's tokenizer files: the BPE's tokens
    as tiktoken ranks (their ids; merges learnt in order, so a token's rank follows its parts')
    and the added tokens with their ids in `tokenizer_config.json`, naming upstream's class."""
    import base64

    from transformers.convert_slow_tokenizer import bytes_to_unicode

    data = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    to_byte = {c: b for b, c in bytes_to_unicode().items()}
    ranks = {bytes(to_byte[c] for c in text): rank for text, rank in data["model"]["vocab"].items()}
    lines = [f"{base64.b64encode(t).decode()} {r}" for t, r in sorted(ranks.items(), key=lambda item: item[1])]
    (folder / "tokenizer.model").write_text("\n".join(lines) + "\n", encoding="ascii")
    added = {
        str(token["id"]): {"content": token["content"], "special": True, "normalized": False}
        for token in data["added_tokens"]
    }
    config = {
        "added_tokens_decoder": added,
        "auto_map": {"AutoTokenizer": ["tokenization_chatglm.ChatGLM4Tokenizer", None]},
        "tokenizer_class": "ChatGLM4Tokenizer",
        "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "padding_side": "left",
        "clean_up_tokenization_spaces": False,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    for name in ("tokenizer.json", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)


class InterleavePattern:
    """A logits processor that makes a random-weight LM emit GLM-4-Voice's answer shape: runs of
    `text` text tokens and `audio` speech tokens, then `<|user|>` after `total` tokens. It lets
    tests and the benchmark drive the real streaming path with realistic token timing."""

    def __init__(
        self,
        prompt_length: int,
        text_ids: range,
        audio_ids: range,
        stop_id: int,
        total: int,
        text: int = 13,
        audio: int = 26,
    ) -> None:
        self.prompt_length = prompt_length
        self.text_ids, self.audio_ids, self.stop_id = text_ids, audio_ids, stop_id
        self.total, self.text, self.audio = total, text, audio

    def allowed(self, position: int) -> range:
        if position >= self.total:
            return range(self.stop_id, self.stop_id + 1)
        return self.text_ids if position % (self.text + self.audio) < self.text else self.audio_ids

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        keep = self.allowed(input_ids.shape[1] - self.prompt_length)
        masked = torch.full_like(scores, float("-inf"))
        masked[:, keep.start : keep.stop] = scores[:, keep.start : keep.stop]
        return masked


DECODER_YAML = """\
# Same layout as the published glm-4-voice-decoder/config.yaml (HyperPyYAML tags included).
sample_rate: 22050
spk_embed_dim: 192

flow: !new:cosyvoice.flow.flow.MaskedDiffWithXvec
    input_size: {input_size}
    output_size: 80
    spk_embed_dim: !ref <spk_embed_dim>
    output_type: 'mel'
    vocab_size: {vocab_size}
    input_frame_rate: 12.5
    only_mask_loss: True
    encoder: !new:cosyvoice.transformer.encoder.BlockConformerEncoder
        output_size: {encoder_size}
        attention_heads: {encoder_heads}
        linear_units: {encoder_ffn}
        num_blocks: {encoder_layers}
        normalize_before: True
        input_layer: 'linear'
        pos_enc_layer_type: 'rel_pos_espnet'
        selfattention_layer_type: 'block_rel_selfattn'
        block_size: 10
        input_size: {input_size}
        use_cnn_module: False
        macaron_style: False
    length_regulator: !new:cosyvoice.flow.length_regulator.InterpolateRegulator
        channels: 80
        sampling_ratios: [1, 1, 1, 1]
    decoder: !new:cosyvoice.flow.flow_matching.ConditionalCFM
        in_channels: 240
        n_spks: 1
        spk_emb_dim: 80
        cfm_params: !new:omegaconf.DictConfig
            content:
                sigma_min: 1e-06
                solver: 'euler'
                t_scheduler: 'cosine'
                training_cfg_rate: 0.2
                inference_cfg_rate: 0.7
                reg_loss_type: 'l1'
        estimator: !new:cosyvoice.flow.decoder.ConditionalDecoder
            in_channels: 320
            out_channels: 80
            channels: [{channels}, {channels}]
            dropout: 0
            attention_head_dim: {head_dim}
            n_blocks: {blocks}
            num_mid_blocks: {mid}
            num_heads: {heads}
            act_fn: 'gelu'

hift: !new:cosyvoice.hifigan.generator.HiFTGenerator
    in_channels: 80
    base_channels: {base_channels}
    nb_harmonics: 8
    sampling_rate: !ref <sample_rate>
    nsf_alpha: 0.1
    nsf_sigma: 0.003
    nsf_voiced_threshold: 10
    upsample_rates: [8, 8]
    upsample_kernel_sizes: [16, 16]
    istft_params:
        n_fft: 16
        hop_len: 4
    resblock_kernel_sizes: [3, 7, 11]
    resblock_dilation_sizes: [[1, 3, 5], [1, 3, 5], [1, 3, 5]]
    source_resblock_kernel_sizes: [7, 11]
    source_resblock_dilation_sizes: [[1, 3, 5], [1, 3, 5]]
    lrelu_slope: 0.1
    audio_limit: 0.99
    f0_predictor: !new:cosyvoice.hifigan.f0_predictor.ConvRNNF0Predictor
        num_class: 1
        in_channels: 80
        cond_channels: {base_channels}
"""

REAL_DECODER_SIZES = {
    "vocab_size": 16384,
    "input_size": 512,
    "encoder_size": 512,
    "encoder_heads": 8,
    "encoder_ffn": 2048,
    "encoder_layers": 6,
    "channels": 256,
    "head_dim": 64,
    "heads": 8,
    "blocks": 4,
    "mid": 12,
    "base_channels": 512,
}
TINY_DECODER_SIZES = {
    "vocab_size": 64,
    "input_size": 16,
    "encoder_size": 16,
    "encoder_heads": 2,
    "encoder_ffn": 32,
    "encoder_layers": 2,
    "channels": 16,
    "head_dim": 8,
    "heads": 2,
    "blocks": 1,
    "mid": 1,
    "base_channels": 16,
}
# Convolutions upstream wraps in weight normalisation: stored as weight_g / weight_v pairs.
WEIGHT_NORMED = ("f0_predictor.condnet.", "conv_pre.", "ups.", "resblocks.", "conv_post.")


def unfold_weight_norm(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """Store weight-normalised convolutions as upstream does: a direction `weight_v` and a
    per-output-channel magnitude `weight_g` (random, so that folding them back is really tested)."""
    generator = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        normed = name.endswith(".weight") and tensor.dim() == 3 and name.startswith(WEIGHT_NORMED)
        if not normed:
            out[name] = tensor
            continue
        base = name[: -len(".weight")]
        direction = torch.randn(tensor.shape, generator=generator)
        out[base + ".weight_v"] = direction
        # g chosen so that g * v / ||v|| equals the module's weight norm-wise per channel
        out[base + ".weight_g"] = tensor.reshape(tensor.shape[0], -1).norm(dim=1).reshape(-1, 1, 1).clone()
    return out


def write_speech_decoder(folder: Path, sizes: dict[str, int] | None = None, seed: int = 0) -> Path:
    """config.yaml, flow.pt and hift.pt as in `glm-4-voice-decoder` (plain tensor state dicts)."""
    from voicerag_cli.models.glm4voice.decoder_config import parse_decoder_config
    from voicerag_cli.models.glm4voice.flow import FlowDecoder
    from voicerag_cli.models.glm4voice.hift import HiFTGenerator

    folder.mkdir(parents=True, exist_ok=True)
    text = DECODER_YAML.format(**(sizes or TINY_DECODER_SIZES))
    (folder / "config.yaml").write_text(text, encoding="utf-8")
    config = parse_decoder_config(text, "synthetic")
    flow = _seeded(lambda: FlowDecoder(config.flow), seed)
    hift = _seeded(lambda: HiFTGenerator(config.hift), seed + 1)
    torch.save({k: v.contiguous() for k, v in flow.state_dict().items()}, folder / "flow.pt")
    torch.save(unfold_weight_norm(hift.state_dict(), seed + 2), folder / "hift.pt")
    return folder


def stream_in_blocks(decoder: Any, tokens: list[int], first_block: int) -> tuple[list[Any], Any]:
    """Decode `tokens` through `decoder.stream()` in the blocks the backend's schedule
    (`block_schedule(first_block)`) cuts them into; returns the audio chunks and the stream."""
    from voicerag_cli.models.glm4voice.backend import block_schedule

    schedule, stream, chunks, start = block_schedule(first_block), decoder.stream(), [], 0
    while start < len(tokens):
        size = schedule[min(len(chunks), len(schedule) - 1)]
        chunks.append(stream.push(tokens[start : start + size], final=start + size >= len(tokens)))
        start += size
    return chunks, stream
