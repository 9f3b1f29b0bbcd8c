"""Random-weight checkpoints written in the public GLM-4-Voice on-disk layouts.

The tests build tiny ones and the GPU benchmark real-sized ones; both then go through the same
loading code as the downloaded checkpoints, so key names, config parsing and file checks are
exercised for real. Nothing here is used when answering questions."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

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
