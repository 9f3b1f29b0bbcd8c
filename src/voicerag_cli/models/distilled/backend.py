"""`speech_embedder` backend `whisper-tiny-distilled`: spoken question -> text-embedding space.

Frozen Whisper tiny.en encoder (CTranslate2, int8, unpadded input) + a head distilled onto
all-MiniLM-L6-v2 (see models/distilled/weights/MODEL_CARD.md): either a standalone head
(`voicerag-speech-head/1`) or a bridge into MiniLM's own (possibly tuned) BERT layers
(`voicerag-speech-bridge/1`). No transcription happens: the vector
is compared directly with the index's passage vectors.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from voicerag_cli.errors import ModelError
from voicerag_cli.models.base import EmbeddingSpace

if TYPE_CHECKING:
    from voicerag_cli.config import Settings
    from voicerag_cli.models.base import Roles
    from voicerag_cli.models.distilled.frontend import WhisperEncoderFrontend

TARGET_DIM = 384  # all-MiniLM-L6-v2


class DistilledSpeechEmbedder:
    def __init__(
        self,
        frontend: WhisperEncoderFrontend,
        head_file: Path,
        expected: EmbeddingSpace | None,
        text_model_dir: Path | None = None,
    ) -> None:
        from voicerag_cli.models.distilled.frontend import FRONTEND_ID
        from voicerag_cli.models.distilled.head import BRIDGE_FORMAT, NumpySpeechHead, read_head_file

        head = read_head_file(head_file)
        meta = head.metadata
        self.space = EmbeddingSpace(meta["target_space_id"], int(meta["target_dim"]))
        if expected is not None and self.space != expected:
            raise ModelError(
                f"speech-embedder head {head_file.name} was trained onto {self.space.space_id} (dim {self.space.dim}), "
                f"but the configured text embedder's space is {expected.space_id} (dim {expected.dim}); "
                "use the default text embedder or train a head for yours"
            )
        is_bridge = meta["format"] == BRIDGE_FORMAT
        out_key = "to_bert.weight" if is_bridge else "out.weight"
        out_dim = head.tensors[out_key].shape[0] if out_key in head.tensors else -1
        if out_dim != self.space.dim:
            raise ModelError(
                f"speech-embedder head {head_file.name} records dim {self.space.dim} but produces {out_dim}-d vectors"
            )
        if meta["frontend"] != FRONTEND_ID:
            raise ModelError(
                f"speech-embedder head {head_file.name} expects front-end {meta['frontend']!r}, not {FRONTEND_ID!r}"
            )
        self.frontend = frontend
        self.head: Callable[[np.ndarray], np.ndarray]
        if is_bridge:
            from voicerag_cli.models.bert_numpy import NumpyBert
            from voicerag_cli.models.distilled.bridge import NumpySpeechBridge

            if text_model_dir is None:
                raise ModelError(f"speech-embedder head {head_file.name} needs the text embedder's BERT weights")
            self.head = NumpySpeechBridge(head, NumpyBert(text_model_dir))
        else:
            self.head = NumpySpeechHead(head)
        self.metadata = meta

    def embed_speech(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        from voicerag_cli.audio.io import resample
        from voicerag_cli.models.distilled.frontend import SAMPLE_RATE

        samples = resample(np.asarray(audio, dtype=np.float32).reshape(-1), sample_rate, SAMPLE_RATE)
        seconds = len(samples) / SAMPLE_RATE
        if seconds > MAX_SECONDS:  # the encoder would see only the first 30 s: refuse, do not truncate
            from voicerag_cli.errors import InputError

            raise InputError(
                f"e2e embeds at most {MAX_SECONDS} s of speech; this question is {seconds:.1f} s (use --rag asr)"
            )
        return self.head(self.frontend(samples))


MAX_SECONDS = 30  # Whisper's positional table: 1500 encoder frames


def create(settings: Settings, registry: Roles) -> DistilledSpeechEmbedder:
    from voicerag_cli.models.bundled import MINILM, SPEECH_HEAD, WHISPER_TINY_EN
    from voicerag_cli.models.distilled.frontend import WhisperEncoderFrontend
    from voicerag_cli.models.distilled.paths import HEAD_FILE
    from voicerag_cli.models.pinned import stamps_for, verified_folder
    from voicerag_cli.models.sentence_embedder import MINILM_SPACE_ID

    stamps = stamps_for(settings)
    head_file = verified_folder(SPEECH_HEAD, stamps) / HEAD_FILE
    # Always the bundled tiny.en, whatever asr.model_path says: the head fits only its features.
    frontend = WhisperEncoderFrontend(verified_folder(WHISPER_TINY_EN, stamps), compute_type="int8")
    # A bridge head runs the bundled MiniLM's BERT (its tuned layers, when shipped, replace them).
    text_model = verified_folder(MINILM, stamps)
    return DistilledSpeechEmbedder(frontend, head_file, EmbeddingSpace(MINILM_SPACE_ID, TARGET_DIM), text_model)
