"""Whisper log-mel features at 16 kHz, as the speech tokenizer was trained on them.

The checkpoint folder's `preprocessor_config.json` describes a `WhisperFeatureExtractor`
(128 mel bins, 25 ms window, 10 ms hop); transformers' implementation of it is used as is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from voicerag_cli.errors import ModelError
from voicerag_cli.models.glm4voice.checkpoint import require_file


def load_feature_extractor(folder: Path, mel_bins: int, what: str) -> Any:
    from transformers import WhisperFeatureExtractor

    require_file(folder, "preprocessor_config.json", what)
    extractor = WhisperFeatureExtractor.from_pretrained(str(folder))
    if extractor.feature_size != mel_bins:
        raise ModelError(f"{what}: preprocessor has {extractor.feature_size} mel bins, the encoder {mel_bins}")
    return extractor


def log_mel(extractor: Any, audio: np.ndarray, samples_per_token: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Features [1, mel, frames] and the frame mask [1, frames] of one <= 30 s segment.

    The audio is padded to whole tokens (as upstream: `pad_to_multiple_of` the token stride) so
    that conv2 and pooling see complete windows; the mask marks the padded frames."""
    batch = extractor(
        [audio],
        sampling_rate=16_000,
        return_attention_mask=True,
        return_tensors="pt",
        padding="longest",
        pad_to_multiple_of=samples_per_token,
    )
    return batch["input_features"].float(), batch["attention_mask"]
