"""Write the GLM-4-Voice LM parity fixtures in tests/fixtures/parity/lm/ by running the OFFICIAL
ChatGLM model code (`modeling_chatglm.py` + `configuration_chatglm.py` of the glm-4-voice-9b
snapshot).

Not part of the package and never imported by it or by the tests: the tests only read what this
script wrote. The official files are not in this repository; the Hugging Face snapshot cannot be
reached from the project's machines, so they come from a public GitHub copy of the snapshot's
files (see README, "Reference fidelity"), put into a package folder in a scratch place:

    python3 -m venv /tmp/venv-lm --system-site-packages      # reuses the installed CPU torch
    /tmp/venv-lm/bin/pip install transformers==4.44.1 huggingface_hub==0.25.2
    mkdir -p /tmp/ref/chatglm_official && touch /tmp/ref/chatglm_official/__init__.py
    # modeling_chatglm.py and configuration_chatglm.py into /tmp/ref/chatglm_official/
    # tokenization_chatglm.py (GLM-4's ChatGLM4Tokenizer) anywhere, e.g. /tmp/ref/tokenization_chatglm.py
    /tmp/venv-lm/bin/pip install tiktoken
    PYTHONPATH=src /tmp/venv-lm/bin/python scripts/make_lm_fixtures.py \\
        --chatglm /tmp/ref/chatglm_official --tokenizer-code /tmp/ref/tokenization_chatglm.py \\
        --out tests/fixtures/parity/lm

What runs (tiny random-weight models, float32, CPU):
- the tokenizer: a tiny byte-level vocabulary trained here, written as GLM-4's `tokenizer.model`
  (`base64 rank` lines) with a `tokenizer_config.json` holding GLM-4-Voice's special and
  `<|audio_N|>` tokens; upstream's `ChatGLM4Tokenizer` (through `AutoTokenizer` with remote code,
  as model_server.py) encodes web_demo.py's prompts (tests/fixtures/parity/glm4voice_reference.json)
  as model_server.py does, `tokenizer([prompt])`, encodes assorted texts, and decodes a completion
  as web_demo.py keeps it;
- `ChatGLMForConditionalGeneration` built from `ChatGLMConfig` in two configurations: the
  published one's settings (multi-query attention with 2 KV groups, q/k/v bias, RMSNorm,
  `original_rope`, epsilon 1.5625e-7) and a variant with full multi-head attention (where
  ChatGLM interleaves q/k/v head by head), `rope_ratio` 500 and `original_rope` false;
- `save_pretrained` (safetensors, `transformer.*` names, as the snapshot) with an auto_map naming
  the snapshot's module, so the folder is laid out as the published one (the published variant's
  folder also gets the tokenizer files: a whole snapshot, less the code);
- its forward pass on a prompt (all positions' logits) and its KV-cache path (prefill, then one
  token at a time with `past_key_values`), under both its attention classes (SdpaAttention, the
  default, and CoreAttention), and `generate` greedily from the prompt and from the official
  prompts' ids.
"""

from __future__ import annotations

import argparse
import base64
import copy
import importlib
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

SEED = 20261203
AUDIO_TOKENS = 64
TEXT_VOCAB = 480
PROMPT = 20
PREFILL = 12
NEW_TOKENS = 16

# The tiny sizes; the rest of each configuration is the published snapshot's (config.json of
# glm-4-voice-9b: RMSNorm pre-norm, no dense biases, q/k/v bias, multi-query attention).
SIZES = {
    "num_layers": 2,
    "hidden_size": 32,
    "ffn_hidden_size": 48,
    "kv_channels": 8,
    "num_attention_heads": 4,
    "seq_length": 256,
}
PUBLISHED = {
    "add_bias_linear": False,
    "add_qkv_bias": True,
    "apply_query_key_layer_scaling": True,
    "apply_residual_connection_post_layernorm": False,
    "attention_dropout": 0.0,
    "attention_softmax_in_fp32": True,
    "bias_dropout_fusion": True,
    "fp32_residual_connection": False,
    "hidden_dropout": 0.0,
    "layernorm_epsilon": 1.5625e-07,
    "multi_query_attention": True,
    "multi_query_group_num": 2,
    "original_rope": True,
    "post_layer_norm": True,
    "rmsnorm": True,
    "rope_ratio": 1,
    "use_cache": True,
}
VARIANTS = {
    "published": PUBLISHED,
    # ChatGLM2-style full attention, a longer rotary base, and `original_rope` off (which the
    # official code reads but does not use)
    "multi_head": PUBLISHED | {"multi_query_attention": False, "rope_ratio": 500, "original_rope": False},
}
AUTO_MAP = {
    "AutoConfig": "configuration_chatglm.ChatGLMConfig",
    "AutoModel": "modeling_chatglm.ChatGLMForConditionalGeneration",
    "AutoModelForCausalLM": "modeling_chatglm.ChatGLMForConditionalGeneration",
    "AutoModelForSeq2SeqLM": "modeling_chatglm.ChatGLMForConditionalGeneration",
}


# --- tokenizer -----------------------------------------------------------------------------------

CORPUS = (
    "The safety bicycle was introduced in 1885 by John Kemp Starley. Olympus Mons is the tallest "
    "volcano in the solar system. Answer the question using the numbered passages below, citing "
    "them as [1] or [2]; if they do not contain the answer, say that you do not know.\n"
    "User will provide you with a speech instruction. Do it step by step. First, think about the "
    "instruction and respond in a interleaved manner, with 13 text token followed by 26 audio tokens.\n"
    "安全自行车于1885年推出。奥林帕斯山是太阳系中最高的火山。请根据下面的段落回答问题。\n"
    "def tokenize(text: str) -> list[int]:\n    return [ord(c) for c in text]  # 42, 3.14, 2026-12-03\n"
)
TEXTS = [
    "When was the safety bicycle introduced?",
    "  Leading spaces,\ttabs and\n\nblank lines  \n",
    "Numbers 1234567 and 3.14159, dates 2026-12-03, don't we'll THEY'RE",
    "安全自行车是什么时候推出的？奥林帕斯山。",
    "Mixed: café ☕ naïve Ωmega — «quotes» 🚲🚲",
    "code: def f(x):\n    return x ** 2  # squared",
    "<|user|>\nsplit <|assistant|>streaming_transcription\n<|begin_of_audio|><|audio_7|><|end_of_audio|>",
]
SPECIALS = [
    "<|endoftext|>",
    "[MASK]",
    "[gMASK]",
    "[sMASK]",
    "<sop>",
    "<eop>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|observation|>",
    "<|begin_of_image|>",
    "<|end_of_image|>",
    "<|begin_of_video|>",
    "<|end_of_video|>",
    "<|begin_of_audio|>",
    "<|end_of_audio|>",
]


def tiny_ranks() -> dict[bytes, int]:
    """A byte-level BPE trained on CORPUS, as tiktoken ranks (the 256 bytes, then merged tokens
    in the order they were learnt)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=TEXT_VOCAB, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator([CORPUS] * 4, trainer)
    to_byte = {c: b for b, c in bytes_to_unicode().items()}
    return {bytes(to_byte[c] for c in text): rank for text, rank in bpe.get_vocab().items()}


def write_tokenizer_files(folder: Path) -> int:
    """tokenizer.model and tokenizer_config.json as GLM-4-Voice's snapshot lays them out; returns
    the tokenizer's length."""
    ranks = tiny_ranks()
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"{base64.b64encode(t).decode()} {r}" for t, r in sorted(ranks.items(), key=lambda x: x[1])]
    (folder / "tokenizer.model").write_text("\n".join(lines) + "\n", encoding="ascii")
    added = [*SPECIALS, *(f"<|audio_{n}|>" for n in range(AUDIO_TOKENS))]
    config = {
        "added_tokens_decoder": {
            str(len(ranks) + n): {
                "content": token,
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": True,
            }
            for n, token in enumerate(added)
        },
        "additional_special_tokens": SPECIALS[6:],
        "auto_map": {"AutoTokenizer": ["tokenization_chatglm.ChatGLM4Tokenizer", None]},
        "chat_template": None,
        "clean_up_tokenization_spaces": False,
        "do_lower_case": False,
        "eos_token": "<|endoftext|>",
        "model_max_length": 128000,
        "pad_token": "<|endoftext|>",
        "padding_side": "left",
        "remove_space": False,
        "tokenizer_class": "ChatGLM4Tokenizer",
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    return len(ranks) + len(added)


def official_tokenizer(folder: Path, code: Path) -> Any:
    """Upstream's class over the fixture's files, loaded as model_server.py loads it (from a scratch
    copy of the folder with the code beside the files: the fixture never holds the code)."""
    from transformers import AutoTokenizer

    scratch = Path(tempfile.mkdtemp()) / "snapshot"
    shutil.copytree(folder, scratch)
    shutil.copy(code, scratch / "tokenization_chatglm.py")
    return AutoTokenizer.from_pretrained(str(scratch), trust_remote_code=True)


def tokenizer_cases(tokenizer: Any, prompts: dict[str, Any]) -> dict[str, Any]:
    turns = {name: prompts[name] for name in ("first_turn", "second_turn", "text_turn")}
    # an answer as the model writes it: text runs and speech-token runs; web_demo.py keeps
    # decode(complete_tokens, spaces_between_special_tokens=False) as history
    words = tokenizer.encode(" It was 1885, said Starley. 安全!", add_special_tokens=False)
    audio = tokenizer.convert_tokens_to_ids([f"<|audio_{n}|>" for n in (5, 9, 63, 0)])
    completion = [*words[:4], *audio, *words[4:], *audio[:2]]
    return {
        "vocab_size": len(tokenizer),
        # model_server.py: tokenizer([prompt], return_tensors="pt")
        "prompt_ids": {name: tokenizer([text])["input_ids"][0] for name, text in turns.items()},
        "text_ids": [tokenizer.encode(text, add_special_tokens=False) for text in TEXTS],
        "texts": TEXTS,
        "completion_ids": completion,
        "completion_text": tokenizer.decode(completion, spaces_between_special_tokens=False),
        "special_ids": {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIALS},
    }


# --- model -------------------------------------------------------------------------------------


def official(folder: Path) -> tuple[Any, Any]:
    """The official config and model classes, imported as the package `folder` names (the
    modeling file imports its config relatively, as in the snapshot)."""
    sys.path.insert(0, str(folder.parent))
    config = importlib.import_module(f"{folder.name}.configuration_chatglm")
    modeling = importlib.import_module(f"{folder.name}.modeling_chatglm")
    return config.ChatGLMConfig, modeling.ChatGLMForConditionalGeneration


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Random weights scaled so that attention is sharp and logits spread widely: a wrong rotary
    angle, head order or q/k/v split then moves the logits far beyond float rounding. The norm
    weights are drawn around 1 (the official init leaves them uninitialised)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("inv_freq"):
                continue
            if "layernorm" in name:
                tensor.copy_(1.0 + 0.2 * torch.randn(tensor.shape, generator=generator))
            elif name.endswith(".bias"):
                tensor.copy_(0.5 * torch.randn(tensor.shape, generator=generator))
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=generator) / tensor.shape[-1] ** 0.5 * 1.5)


def forward_and_cache_path(model: Any, prompt: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Every position's logits, and the cache path as `generate` drives it: a prefill, then one
    token per call with `past_key_values` (the logits of the prefill's last and each step)."""
    logits = model(prompt).logits[0]
    first = model(prompt[:, :PREFILL], use_cache=True)
    past, steps = first.past_key_values, [first.logits[0, -1]]
    for i in range(PREFILL, prompt.shape[1]):
        step = model(prompt[:, i : i + 1], position_ids=torch.tensor([[i]]), past_key_values=past, use_cache=True)
        past = step.past_key_values
        steps.append(step.logits[0, -1])
    return logits, steps


def variant(
    name: str,
    settings: dict[str, Any],
    classes: tuple[Any, Any],
    out: Path,
    seed: int,
    vocab: int,
    stops: list[int],
    prompts: dict[str, list[int]],
) -> dict[str, Any]:
    config_class, model_class = classes
    config = config_class(**SIZES, **settings, padded_vocab_size=vocab, eos_token_id=stops, pad_token_id=stops[0])
    config.torch_dtype = torch.float32
    config.architectures = ["ChatGLMModel"]
    config.auto_map = AUTO_MAP
    model = model_class(config, empty_init=False).eval()
    randomize(model, seed)
    folder = out / name
    model.save_pretrained(str(folder), safe_serialization=True)

    # the same weights under the official code's other attention class (CoreAttention: its own
    # masks, layer-number scaling); the default one is SdpaAttention
    eager_config = copy.deepcopy(config)
    eager_config._attn_implementation = "eager"
    eager_config.torch_dtype = torch.float32  # (a deep copy keeps it as a name)
    eager = model_class(eager_config, empty_init=False).eval()
    eager.load_state_dict(model.state_dict())
    assert type(eager.transformer.encoder.layers[0].self_attention.core_attention).__name__ == "CoreAttention"

    generator = torch.Generator().manual_seed(seed + 1)
    prompt = torch.randint(0, stops[0], (1, PROMPT), generator=generator)
    with torch.no_grad():
        logits, steps = forward_and_cache_path(model, prompt)
        eager_logits, eager_steps = forward_and_cache_path(eager, prompt)
        greedy = model.generate(
            prompt,
            attention_mask=torch.ones_like(prompt),
            do_sample=False,
            max_new_tokens=NEW_TOKENS,
            eos_token_id=None,
            pad_token_id=stops[0],
        )[0, PROMPT:]
        # the official prompts' ids (the tokenizer's), answered until a stop id, as model_server.py
        answers = {
            turn: model.generate(
                torch.tensor([ids]),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                do_sample=False,
                max_new_tokens=NEW_TOKENS,
                eos_token_id=stops,
                pad_token_id=stops[0],
            )[0, len(ids) :].tolist()
            for turn, ids in prompts.items()
        }
    return {
        "config": settings,
        "arrays": {
            f"{name}_prompt": prompt[0].numpy(),
            f"{name}_logits": logits.numpy(),
            f"{name}_cached_logits": torch.stack(steps).numpy(),
            f"{name}_eager_logits": eager_logits.numpy(),
            f"{name}_eager_cached_logits": torch.stack(eager_steps).numpy(),
        },
        "greedy": greedy.tolist(),
        "prompt_answers": answers,
        "logits_std": float(logits.std()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chatglm", type=Path, required=True, help="package folder with the official files")
    parser.add_argument("--tokenizer-code", type=Path, required=True, help="the official tokenization_chatglm.py")
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/parity/lm"))
    parser.add_argument(
        "--prompts",
        type=Path,
        default=Path("tests/fixtures/parity/glm4voice_reference.json"),
        help="web_demo.py's prompts, as make_parity_fixtures.py recorded them",
    )
    args = parser.parse_args()
    import transformers

    torch.set_num_threads(1)
    classes = official(args.chatglm)
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    meta: dict[str, Any] = {"seed": SEED, "torch": torch.__version__, "transformers": transformers.__version__}
    tokenizer_dir = args.out / "published"
    length = write_tokenizer_files(tokenizer_dir)
    tokenizer = official_tokenizer(tokenizer_dir, args.tokenizer_code)
    assert len(tokenizer) == length, (len(tokenizer), length)
    reference = json.loads(args.prompts.read_text(encoding="utf-8"))
    meta["tokenizer"] = tokenizer_cases(tokenizer, reference["prompt"])
    vocab = -(-length // 8) * 8  # padded, as the published vocabulary is
    stops = [tokenizer.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|user|>", "<|observation|>")]
    arrays: dict[str, np.ndarray] = {}
    for index, (name, settings) in enumerate(VARIANTS.items()):
        prompts = meta["tokenizer"]["prompt_ids"] if name == "published" else {}
        result = variant(name, settings, classes, args.out, SEED + 10 * index, vocab, stops, prompts)
        arrays.update(result.pop("arrays"))
        meta[name] = result
    meta["prefill"] = PREFILL
    np.savez_compressed(args.out / "lm_cases.npz", **arrays)
    (args.out / "lm_reference.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print("wrote", sorted(str(p.relative_to(args.out)) for p in args.out.rglob("*") if p.is_file()))


if __name__ == "__main__":
    main()
