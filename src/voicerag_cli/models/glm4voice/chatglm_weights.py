"""GLM-4-Voice-9B as published (the ChatGLM layout: `model_type = "chatglm"`, weights under
`transformer.*`, fused query/key/value) loaded into transformers' native `GlmForCausalLM`, so the
model runs without the snapshot's own code and can use the graphed decoder (`static_lm.py`).

The two are the same network (transformers' GLM was written as this conversion target):
RMSNorm pre-norm blocks; q, k, v in `query_key_value` (stacked as three blocks under
multi-query attention, as the published model has it; interleaved head by head, q k v per head,
under full multi-head attention, where ChatGLM views the rows as heads x 3); SiLU-gated MLP with
the gate first in `dense_h_to_4h`; rotary angles on interleaved pairs of the first half of each
head with base 10000 x `rope_ratio` (the official code reads `original_rope` but computes the
same angles either way). Configurations outside that (LayerNorm, biased dense layers, post-norm
residuals) are refused rather than converted wrongly. Checked against the official
`modeling_chatglm.py` on tiny random weights (tests/test_glm4voice_lm_parity.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from voicerag_cli.errors import ModelError

WHAT = "GLM-4-Voice LM"
LAYER = "transformer.encoder.layers."
RENAMED = {
    "transformer.embedding.word_embeddings.weight": "model.embed_tokens.weight",
    "transformer.encoder.final_layernorm.weight": "model.norm.weight",
    "transformer.output_layer.weight": "lm_head.weight",
}
LAYER_RENAMED = {
    "input_layernorm.weight": "input_layernorm.weight",
    "post_attention_layernorm.weight": "post_attention_layernorm.weight",
    "self_attention.dense.weight": "self_attn.o_proj.weight",
    "mlp.dense_h_to_4h.weight": "mlp.gate_up_proj.weight",
    "mlp.dense_4h_to_h.weight": "mlp.down_proj.weight",
}
# Settings under which the ChatGLM network is not the native GLM one.
UNSUPPORTED = {
    "rmsnorm": False,
    "add_bias_linear": True,
    "apply_residual_connection_post_layernorm": True,
    "post_layer_norm": False,
}


def is_chatglm(config: dict[str, Any]) -> bool:
    return config.get("model_type") == "chatglm"


def glm_config(config: dict[str, Any]) -> Any:
    """The native `GlmConfig` equivalent to a ChatGLM `config.json`."""
    from transformers import GlmConfig

    for key, bad in UNSUPPORTED.items():
        if key in config and config[key] == bad:
            raise ModelError(f"{WHAT}: config.json has {key} = {json.dumps(bad)}, which this loader does not convert")
    try:
        heads = int(config["num_attention_heads"])
        hidden = int(config["hidden_size"])
        kv_heads = int(config["multi_query_group_num"]) if config.get("multi_query_attention") else heads
        return GlmConfig(
            vocab_size=int(config["padded_vocab_size"]),
            hidden_size=hidden,
            intermediate_size=int(config["ffn_hidden_size"]),
            num_hidden_layers=int(config["num_layers"]),
            num_attention_heads=heads,
            num_key_value_heads=kv_heads,
            head_dim=int(config.get("kv_channels", 128)),  # ChatGLMConfig's default, as upstream reads it
            max_position_embeddings=int(config.get("seq_length", 8192)),
            rms_norm_eps=float(config.get("layernorm_epsilon", 1e-5)),
            attention_bias=bool(config.get("add_qkv_bias", False)),
            rope_parameters={
                "rope_type": "default",
                "rope_theta": 10000.0 * float(config.get("rope_ratio", 1.0)),
                "partial_rotary_factor": 0.5,
            },
            eos_token_id=config.get("eos_token_id"),
            pad_token_id=config.get("pad_token_id"),
            tie_word_embeddings=False,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{WHAT}: config.json is not a ChatGLM config: {exc}") from exc


def native_tensors(
    name: str, tensor: torch.Tensor, config: Any, multi_query: bool = True
) -> Iterator[tuple[str, torch.Tensor]]:
    """The native name(s) and tensor(s) for one checkpoint tensor; nothing for the rotary table,
    which the native model computes from its config. `multi_query`: the ChatGLM config's
    `multi_query_attention`, which decides how q, k and v are laid out in the fused rows."""
    if name in RENAMED:
        yield RENAMED[name], tensor
        return
    if name == "transformer.rotary_pos_emb.inv_freq":
        return
    if not name.startswith(LAYER):
        raise ModelError(f"{WHAT}: unexpected tensor {name} in a ChatGLM checkpoint")
    index, rest = name[len(LAYER) :].split(".", 1)
    prefix = f"model.layers.{index}."
    if rest in LAYER_RENAMED:
        yield prefix + LAYER_RENAMED[rest], tensor
        return
    if rest in ("self_attention.query_key_value.weight", "self_attention.query_key_value.bias"):
        kind = rest.rsplit(".", 1)[1]
        q = config.num_attention_heads * config.head_dim
        kv = config.num_key_value_heads * config.head_dim
        if tensor.shape[0] != q + 2 * kv:
            raise ModelError(f"{WHAT}: {name} has {tensor.shape[0]} rows, expected {q + 2 * kv}")
        if multi_query:
            pieces = tensor.split([q, kv, kv])
        else:  # ChatGLM's [heads, 3 * head_dim] view of the rows: q, k, v of head 0, then head 1...
            per_head = tensor.reshape(config.num_attention_heads, 3, config.head_dim, *tensor.shape[1:])
            pieces = tuple(per_head[:, i].reshape(q, *tensor.shape[1:]) for i in range(3))
        for part, piece in zip(("q_proj", "k_proj", "v_proj"), pieces, strict=True):
            yield f"{prefix}self_attn.{part}.{kind}", piece.contiguous()
        return
    raise ModelError(f"{WHAT}: unexpected tensor {name} in a ChatGLM checkpoint")


def load_chatglm(folder: Path, config: dict[str, Any], device: str, dtype: torch.dtype) -> Any:
    """`GlmForCausalLM` with the snapshot's weights, read tensor by tensor from its safetensors
    shards straight onto `device`; every parameter must be filled exactly once."""
    from safetensors import safe_open
    from transformers import GlmForCausalLM

    native = glm_config(config)
    multi_query = bool(config.get("multi_query_attention", False))
    with torch.device("meta"):
        model = GlmForCausalLM(native)
    state: dict[str, torch.Tensor] = {}
    for shard in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(shard), framework="pt", device=str(device)) as reader:
                for name in reader.keys():  # noqa: SIM118 (a safetensors reader is not a dict)
                    for key, tensor in native_tensors(name, reader.get_tensor(name), native, multi_query):
                        if key in state:
                            raise ModelError(f"{WHAT}: {key} appears twice in {folder}")
                        state[key] = tensor.to(dtype)
        except OSError as exc:
            raise ModelError(f"{WHAT}: cannot read {shard}: {exc}") from exc
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    if missing:
        raise ModelError(f"{WHAT}: {folder} lacks {len(missing)} tensors, first {missing[0]}")
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise ModelError(f"{WHAT}: {key} has shape {tuple(tensor.shape)}, expected {tuple(expected[key].shape)}")
    model.load_state_dict(state, strict=True, assign=True)
    # The rotary table is a non-persistent buffer, still on the meta device: compute it for real.
    model.model.rotary_emb = type(model.model.rotary_emb)(native).to(device)
    return model.eval()
