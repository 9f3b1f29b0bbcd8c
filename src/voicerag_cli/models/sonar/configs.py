"""Architecture hyper-parameters of the SONAR encoders, named as in the fairseq2/SONAR configs.

An asset card picks an architecture (`model_arch`) and may override fields with `model_config`,
merged as fairseq2 0.8's config merger does: a plain key merges into the architecture's value
(recursively for a nested config: `model_config: {vocab_info: {size: 127}}` changes one field);
a key under `_set_` replaces the value whole (`model_config: {_set_: {model_dim: 32}}`). fairseq2
would rebuild a nested config set under `_set_` from its type's defaults (not the
architecture's), so that form is refused here with the merging spelling named. Fields that only
matter for training (dropout, LayerDrop) are accepted and ignored; values this inference code
does not implement are refused.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from voicerag_cli.errors import ModelError

TEXT_FAMILY = "transformer_encoder"
SPEECH_FAMILY = "sonar_speech"

# Accepted in cards for compatibility, without effect at inference.
_TRAINING_ONLY = {
    "emb_dropout_p",
    "attention_dropout_p",
    "activation_dropout_p",
    "dropout_p",
    "attn_dropout_p",
    "final_dropout_p",
    "first_pass_dropout_p",
    "layer_drop_p",
    "ffn_inner_dropout_p",
    "feature_grad_scale",
}


@dataclass
class VocabInfo:
    size: int = 256206
    pad_idx: int = 1  # the fairseq dictionary's pad index: sets the sinusoidal positions' offset


@dataclass
class TextEncoderConfig:
    """SONAR's `SonarTextEncoderConfig`; `basic` is text_sonar_basic_encoder (NLLB-style encoder)."""

    model_dim: int = 1024
    max_seq_len: int = 512
    vocab_info: VocabInfo = field(default_factory=VocabInfo)
    num_encoder_layers: int = 24
    num_encoder_attn_heads: int = 16
    ffn_inner_dim: int = 8192
    pooling: str = "mean"
    activation_fn: str = "ReLU"
    no_scale_embedding: bool = False
    no_token_positional_embeddings: bool = False
    learned_pos: bool = False
    from_fairseq: bool = True  # fairseq-trained: positions start after the pad index
    # Used by SONAR only for attention pooling, which text_sonar_basic_encoder does not use.
    num_decoder_layers: int = 24
    num_decoder_attn_heads: int = 16
    normalize_before: bool = False

    @property
    def max_positions(self) -> int:
        # SONAR widens the position table by pad_idx + 1 for fairseq-trained models; the text
        # pipeline truncates token sequences to this length.
        return self.max_seq_len + (self.vocab_info.pad_idx + 1 if self.from_fairseq else 0)


@dataclass
class W2v2EncoderConfig:
    """The w2v-BERT 2.0 "600m" conformer encoder that SONAR's speech encoders start from."""

    model_dim: int = 1024
    max_seq_len: int = 4096  # frames after stacking: bounds the relative position table
    feature_dim: int = 160
    num_fbank_channels: int = 80
    fbank_stride: int = 2
    num_encoder_layers: int = 24
    num_encoder_attn_heads: int = 16
    ffn_inner_dim: int = 4096
    depthwise_conv_kernel_size: int = 31
    use_fbank: bool = True
    use_conformer: bool = True
    pos_encoder_type: str = "relative"
    layer_norm_features: bool = False
    sample_fbank_every_k: int = 1


@dataclass
class SpeechEncoderConfig:
    """SONAR's `SonarSpeechEncoderConfig`: the encoder plus an attention-pooling decoder."""

    w2v2_encoder_config: W2v2EncoderConfig = field(default_factory=W2v2EncoderConfig)
    model_dim: int = 1024
    max_seq_len: int = 1024
    pad_idx: int = 1
    bos_idx: int = 2
    num_decoder_layers: int = 3
    num_decoder_attn_heads: int = 16
    decoder_norm_order: str = "POST"
    ffn_inner_dim: int = 4096


TEXT_ARCHS = {"basic": lambda: TextEncoderConfig()}
SPEECH_ARCHS = {
    "english": lambda: SpeechEncoderConfig(num_decoder_layers=3),
    "non_english": lambda: SpeechEncoderConfig(num_decoder_layers=6),
}

# Card keys that differ from our field names.
_RENAMED = {"_from_fairseq": "from_fairseq"}


def apply_overrides(config: Any, overrides: Any, where: str) -> Any:
    """A copy of dataclass `config` with a card's `overrides` merged in (fairseq2's rules)."""
    if overrides is None:
        return config
    if not isinstance(overrides, dict):
        raise ModelError(f"{where}: model_config must be a mapping, got {overrides!r}")
    if "_del_" in overrides:
        raise ModelError(f"{where}: _del_ is not supported in model_config")
    set_keys = overrides.get("_set_") or {}
    if not isinstance(set_keys, dict):
        raise ModelError(f"{where}: _set_ must be a mapping, got {set_keys!r}")
    fields = {f.name: f for f in dataclasses.fields(config)}
    changes: dict[str, Any] = {}
    # fairseq2 merges the plain keys first, then applies _set_ (which wins on a shared key).
    plain = [(key, value, False) for key, value in overrides.items() if key != "_set_"]
    for key, value, replace in [*plain, *((key, value, True) for key, value in set_keys.items())]:
        name = _RENAMED.get(key, key)
        if name in _TRAINING_ONLY:
            continue
        if name not in fields:
            raise ModelError(f"{where}: unknown model_config key {key!r}; known: {', '.join(fields)}")
        current = changes.get(name, getattr(config, name))
        if dataclasses.is_dataclass(current):
            if replace:
                raise ModelError(
                    f"{where}: {key!r} under _set_ would replace the whole nested config (fairseq2 fills the "
                    f"rest with its type's defaults); merge instead: model_config: {{{key}: {{field: value}}}}"
                )
            changes[name] = apply_overrides(current, value, f"{where}.{key}")
        elif isinstance(current, bool) != isinstance(value, bool) or not isinstance(value, type(current)):
            raise ModelError(f"{where}: model_config key {key!r} must be {type(current).__name__}, got {value!r}")
        else:
            changes[name] = value
    return dataclasses.replace(config, **changes)


def text_config(arch: str, overrides: Any, where: str) -> TextEncoderConfig:
    if arch not in TEXT_ARCHS:
        raise ModelError(f"{where}: unknown SONAR text encoder arch {arch!r}; known: {', '.join(TEXT_ARCHS)}")
    config = apply_overrides(TEXT_ARCHS[arch](), overrides, where)
    if config.pooling not in {"mean", "max", "last"}:
        raise ModelError(f"{where}: pooling {config.pooling!r} is not implemented here (mean, max, last are)")
    if config.learned_pos or config.no_token_positional_embeddings:
        raise ModelError(f"{where}: only sinusoidal token positions are implemented (as in text_sonar_basic_encoder)")
    if config.model_dim % config.num_encoder_attn_heads:
        raise ModelError(f"{where}: model_dim must be a multiple of num_encoder_attn_heads")
    return config


def speech_config(arch: str, overrides: Any, where: str) -> SpeechEncoderConfig:
    if arch not in SPEECH_ARCHS:
        raise ModelError(f"{where}: unknown SONAR speech encoder arch {arch!r}; known: {', '.join(SPEECH_ARCHS)}")
    config = apply_overrides(SPEECH_ARCHS[arch](), overrides, where)
    enc = config.w2v2_encoder_config
    supported = (
        enc.use_fbank
        and enc.use_conformer
        and enc.pos_encoder_type == "relative"
        and not enc.layer_norm_features
        and enc.sample_fbank_every_k == 1
        and config.decoder_norm_order == "POST"
    )
    if not supported:
        raise ModelError(f"{where}: only the w2v-BERT conformer front-end of SONAR's speech encoders is implemented")
    if enc.model_dim != config.model_dim:
        raise ModelError(f"{where}: model_dim ({config.model_dim}) must equal w2v2_encoder_config.model_dim")
    if enc.feature_dim != enc.num_fbank_channels * enc.fbank_stride:
        raise ModelError(f"{where}: feature_dim must be num_fbank_channels * fbank_stride")
    return config
