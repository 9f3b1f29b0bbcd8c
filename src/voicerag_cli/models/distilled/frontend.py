"""Frozen speech front-end: Whisper log-mel features -> the CTranslate2 Whisper encoder.

The encoder is run on the *unpadded* mel spectrogram. Whisper was trained on 30 s windows, but
its encoder is a plain transformer with sinusoidal positions, so a 4 s question can be encoded
on its own: about 20x less work than padding it to 30 s (measured in MODEL_CARD.md). The
distilled head is trained on exactly these unpadded features, so training and inference agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from voicerag_cli.errors import ModelError

SAMPLE_RATE = 16_000
N_MELS = 80
# The encoder's positional table covers 1500 output frames = 3000 mel frames = 30 s.
MAX_MEL_FRAMES = 3000
# Recorded in the head's metadata: a head only fits the features of the front-end it was trained on.
FRONTEND_ID = "ctranslate2:whisper-tiny.en/int8/encoder-unpadded/mel80"


class WhisperEncoderFrontend:
    """Audio (float32 mono 16 kHz) -> encoder states [frames, 384] (float32, 50 frames/s)."""

    def __init__(self, model_dir: Path, compute_type: str = "int8", threads: int = 0) -> None:
        import ctranslate2
        from faster_whisper.feature_extractor import FeatureExtractor

        if not (model_dir / "model.bin").exists():
            raise ModelError(f"Whisper encoder weights not found in {model_dir} (need a CTranslate2 model.bin)")
        try:
            self.model = ctranslate2.models.Whisper(
                str(model_dir), device="cpu", compute_type=compute_type, intra_threads=threads
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"cannot load the Whisper encoder from {model_dir}: {exc}") from exc
        self._storage_view = ctranslate2.StorageView
        self.features = FeatureExtractor(feature_size=N_MELS)

    def mel(self, audio: np.ndarray) -> np.ndarray:
        """Log-mel [80, n] with n even (the encoder's stride-2 convolution halves it) and <= 30 s."""
        mel = self.features(np.asarray(audio, dtype=np.float32))
        n = min(mel.shape[1], MAX_MEL_FRAMES)
        n -= n % 2
        if n < 2:
            raise ValueError("audio too short for the Whisper encoder (need at least 20 ms)")
        return np.ascontiguousarray(mel[:, :n], dtype=np.float32)

    def encode_mel(self, mel: np.ndarray) -> np.ndarray:
        view = self._storage_view.from_array(np.ascontiguousarray(mel[None], dtype=np.float32))
        out: Any = self.model.encode(view, to_cpu=True)
        return np.asarray(out, dtype=np.float32)[0]

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        return self.encode_mel(self.mel(audio))
