"""Reading SONAR checkpoints safely and loading them strictly into our modules.

Official checkpoints are read with `torch.load(weights_only=True)`, as fairseq2 0.8 itself reads
them (its model families load with `restrict=True`): no pickled code runs. Two key layouts occur:
- fairseq2's, optionally under a top-level "model" key: used as is (the text encoder's layout;
  SONAR's converter for the older fairseq layout of text encoders has never worked, so the
  published text checkpoint must be in this one);
- fairseq's (`encoder.w2v_model.*`, `decoder.*`) for speech encoders: renamed with the same rules
  as SONAR's `_convert_sonar_speech_checkpoint`.
Then every key and shape must match the module exactly; tensors are cast to float32.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from voicerag_cli.errors import ModelError

# fairseq -> fairseq2 names of SONAR speech encoder parameters (the first matching rule applies).
_W2V = r"^encoder\.w2v_model\."
_LAYER = _W2V + r"encoder\.layers\.([0-9]+)\."
_DEC = r"^decoder\.layers\.([0-9]+)\."
_SPEECH_KEY_RULES: list[tuple[str, str]] = [
    (_W2V + r"layer_norm\.", "encoder_frontend.post_extract_layer_norm."),
    (_W2V + r"post_extract_proj\.", "encoder_frontend.model_dim_proj."),
    (_LAYER + r"conv_module\.batch_norm\.", r"encoder.layers.\1.conv.batch_norm."),
    (_LAYER + r"conv_module\.depthwise_conv\.", r"encoder.layers.\1.conv.depthwise_conv."),
    (_LAYER + r"conv_module\.layer_norm\.", r"encoder.layers.\1.conv_layer_norm."),
    (_LAYER + r"conv_module\.pointwise_conv1\.", r"encoder.layers.\1.conv.pointwise_conv1."),
    (_LAYER + r"conv_module\.pointwise_conv2\.", r"encoder.layers.\1.conv.pointwise_conv2."),
    (_LAYER + r"ffn(1|2)\.layer_norm\.", r"encoder.layers.\1.ffn\2_layer_norm."),
    (_LAYER + r"ffn(1|2)\.w_1\.", r"encoder.layers.\1.ffn\2.inner_proj."),
    (_LAYER + r"ffn(1|2)\.w_2\.", r"encoder.layers.\1.ffn\2.output_proj."),
    (_LAYER + r"self_attn_layer_norm\.", r"encoder.layers.\1.self_attn_layer_norm."),
    (_LAYER + r"self_attn\.linear_q\.", r"encoder.layers.\1.self_attn.q_proj."),
    (_LAYER + r"self_attn\.linear_k\.", r"encoder.layers.\1.self_attn.k_proj."),
    (_LAYER + r"self_attn\.linear_v\.", r"encoder.layers.\1.self_attn.v_proj."),
    (_LAYER + r"self_attn\.linear_out\.", r"encoder.layers.\1.self_attn.output_proj."),
    (_LAYER + r"self_attn\.linear_pos\.", r"encoder.layers.\1.self_attn.sdpa.r_proj."),
    (_LAYER + r"self_attn\.pos_bias_u$", r"encoder.layers.\1.self_attn.sdpa.u_bias"),
    (_LAYER + r"self_attn\.pos_bias_v$", r"encoder.layers.\1.self_attn.sdpa.v_bias"),
    (_LAYER + r"final_layer_norm\.", r"encoder.layers.\1.layer_norm."),
    # fairseq's w2v-BERT ran a pre-LN encoder by accident; SONAR keeps that norm after the conformer.
    (_W2V + r"encoder\.layer_norm\.", "layer_norm."),
    (r"^decoder\.embed_tokens\.", "encoder_pooler.decoder_frontend.embed."),
    (_DEC + r"self_attn_layer_norm\.", r"encoder_pooler.decoder.layers.\1.self_attn_layer_norm."),
    (_DEC + r"self_attn\.out_proj\.", r"encoder_pooler.decoder.layers.\1.self_attn.output_proj."),
    (_DEC + r"self_attn\.", r"encoder_pooler.decoder.layers.\1.self_attn."),
    (_DEC + r"encoder_attn_layer_norm\.", r"encoder_pooler.decoder.layers.\1.encoder_decoder_attn_layer_norm."),
    (_DEC + r"encoder_attn\.out_proj\.", r"encoder_pooler.decoder.layers.\1.encoder_decoder_attn.output_proj."),
    (_DEC + r"encoder_attn\.", r"encoder_pooler.decoder.layers.\1.encoder_decoder_attn."),
    (_DEC + r"fc1\.", r"encoder_pooler.decoder.layers.\1.ffn.inner_proj."),
    (_DEC + r"fc2\.", r"encoder_pooler.decoder.layers.\1.ffn.output_proj."),
    (_DEC + r"final_layer_norm\.", r"encoder_pooler.decoder.layers.\1.ffn_layer_norm."),
    (r"^decoder\.embed_out$", "encoder_pooler.projection_out.weight"),
]
# fairseq-only entries that the model never used at inference (masking, an unused conv position
# encoder, version markers).
_SPEECH_DROPPED = re.compile(
    r"^(encoder\.w2v_model\.mask_emb|encoder\.w2v_model\.encoder\.pos_conv\..*|(en|de)coder\.version"
    r"|(en|de)coder\.embed_positions\._float_tensor)$"
)


def read_state_dict(path: Path) -> dict[str, Any]:
    """The tensors of a .pt checkpoint, unwrapped from a top-level "model" key if present."""
    try:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:  # files in the pre-1.6 format cannot be memory-mapped
            if "mmap" not in str(exc):
                raise
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelError(f"checkpoint {path} holds Python objects that a weights-only load refuses: {first}") from exc
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot read checkpoint {path}: {first}") from exc
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        data = data["model"]
    if not isinstance(data, dict):
        raise ModelError(f"checkpoint {path} is not a state dict (got {type(data).__name__})")
    return data


def convert_speech_keys(state: dict[str, Any]) -> dict[str, Any]:
    """fairseq-layout speech encoder keys to fairseq2 names; fairseq2 layouts pass unchanged."""
    if not any(key.startswith("encoder.w2v_model.") for key in state):
        return state
    converted: dict[str, Any] = {}
    for key, value in state.items():
        if _SPEECH_DROPPED.match(key):
            continue
        for pattern, replacement in _SPEECH_KEY_RULES:
            new_key, count = re.subn(pattern, replacement, key)
            if count:
                key = new_key
                break
        converted[key] = value
    return converted


def load_strict(model: nn.Module, state: dict[str, Any], source: Path) -> None:
    """Assign `state` to `model` (built on the meta device) after checking keys and shapes."""
    expected = model.state_dict()
    tensors = {key: value for key, value in state.items() if isinstance(value, Tensor)}
    for key in expected:
        # torch adds this counter to BatchNorm; fairseq checkpoints may predate it, and eval ignores it.
        if key.endswith("num_batches_tracked") and key not in tensors:
            tensors[key] = torch.zeros((), dtype=torch.long)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise ModelError(
            f"checkpoint {source} does not match the SONAR architecture its card names: keys {'; '.join(parts)}"
        )
    for key, reference in expected.items():
        if tuple(tensors[key].shape) != tuple(reference.shape):
            raise ModelError(
                f"checkpoint {source} does not match its card's architecture: {key} has shape "
                f"{tuple(tensors[key].shape)}, expected {tuple(reference.shape)}"
            )
        if tensors[key].is_floating_point():
            tensors[key] = tensors[key].to(torch.float32)
    model.load_state_dict(tensors, strict=True, assign=True)
    model.eval()
    model.requires_grad_(False)
