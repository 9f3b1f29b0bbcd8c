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
    PYTHONPATH=src /tmp/venv-lm/bin/python scripts/make_lm_fixtures.py \\
        --chatglm /tmp/ref/chatglm_official --out tests/fixtures/parity/lm

What runs (tiny random-weight models, float32, CPU):
- `ChatGLMForConditionalGeneration` built from `ChatGLMConfig` in two configurations: the
  published one's settings (multi-query attention with 2 KV groups, q/k/v bias, RMSNorm,
  `original_rope`, epsilon 1.5625e-7) and a variant with full multi-head attention (where
  ChatGLM interleaves q/k/v head by head), `rope_ratio` 500 and `original_rope` false;
- `save_pretrained` (safetensors, `transformer.*` names, as the snapshot) with an auto_map naming
  the snapshot's module, so the folder is laid out as the published one;
- its forward pass on a prompt (all positions' logits), its KV-cache path (prefill, then one token
  at a time with `past_key_values`), and `generate` greedily from the prompt.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

SEED = 20261203
VOCAB = 96
PROMPT = 20
PREFILL = 12
NEW_TOKENS = 16

# The tiny sizes; the rest of each configuration is the published snapshot's (config.json of
# glm-4-voice-9b: RMSNorm pre-norm, no dense biases, q/k/v bias, multi-query attention).
SIZES = {
    "num_layers": 2,
    "padded_vocab_size": VOCAB,
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


def variant(name: str, settings: dict[str, Any], classes: tuple[Any, Any], out: Path, seed: int) -> dict[str, Any]:
    config_class, model_class = classes
    config = config_class(**SIZES, **settings, eos_token_id=[VOCAB - 3, VOCAB - 2], pad_token_id=VOCAB - 3)
    config.torch_dtype = torch.float32
    config.architectures = ["ChatGLMModel"]
    config.auto_map = AUTO_MAP
    model = model_class(config, empty_init=False).eval()
    randomize(model, seed)
    folder = out / name
    model.save_pretrained(str(folder), safe_serialization=True)

    generator = torch.Generator().manual_seed(seed + 1)
    prompt = torch.randint(0, VOCAB - 3, (1, PROMPT), generator=generator)
    with torch.no_grad():
        logits = model(prompt).logits[0]
        # the cache path as `generate` drives it: a prefill, then one token per call
        first = model(prompt[:, :PREFILL], use_cache=True)
        past, steps = first.past_key_values, [first.logits[0, -1]]
        for i in range(PREFILL, PROMPT):
            step = model(
                prompt[:, i : i + 1],
                position_ids=torch.tensor([[i]]),
                past_key_values=past,
                use_cache=True,
            )
            past = step.past_key_values
            steps.append(step.logits[0, -1])
        greedy = model.generate(
            prompt,
            attention_mask=torch.ones_like(prompt),
            do_sample=False,
            max_new_tokens=NEW_TOKENS,
            eos_token_id=None,
            pad_token_id=VOCAB - 3,
        )[0, PROMPT:]
    return {
        "config": settings,
        "arrays": {
            f"{name}_prompt": prompt[0].numpy(),
            f"{name}_logits": logits.numpy(),
            f"{name}_cached_logits": torch.stack(steps).numpy(),
        },
        "greedy": greedy.tolist(),
        "logits_std": float(logits.std()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chatglm", type=Path, required=True, help="package folder with the official files")
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/parity/lm"))
    args = parser.parse_args()
    import transformers

    torch.set_num_threads(1)
    classes = official(args.chatglm)
    args.out.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {"seed": SEED, "torch": torch.__version__, "transformers": transformers.__version__}
    arrays: dict[str, np.ndarray] = {}
    for index, (name, settings) in enumerate(VARIANTS.items()):
        result = variant(name, settings, classes, args.out, SEED + 10 * index)
        arrays.update(result.pop("arrays"))
        meta[name] = result
    meta["prefill"] = PREFILL
    np.savez_compressed(args.out / "lm_cases.npz", **arrays)
    (args.out / "lm_reference.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print("wrote", sorted(str(p.relative_to(args.out)) for p in args.out.rglob("*") if p.is_file()))


if __name__ == "__main__":
    main()
