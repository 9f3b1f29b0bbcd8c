"""Streaming voice activity detection and utterance segmentation.

The detector is Silero VAD v6, the ONNX model that ships inside the faster-whisper wheel (an
existing dependency), run frame by frame with its recurrent state carried between calls, so
it works on a live stream. `UtteranceSegmenter` turns frame probabilities into utterances
with hysteresis (separate start/end thresholds), a minimum speech length, a silence timeout
that ends an utterance, and a pre-roll so the first syllable is not cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voicerag_cli.errors import ModelError

RATE = 16_000
FRAME = 512  # samples per VAD frame at 16 kHz (32 ms), fixed by the model
CONTEXT = 64  # samples of the previous frame the model also sees


def silero_model_path() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("faster-whisper is not installed: it carries the Silero VAD model")
    return Path(next(iter(spec.submodule_search_locations))) / "assets" / "silero_vad_v6.onnx"


class SileroVad:
    """Speech probability per 32 ms frame, keeping state across calls."""

    def __init__(self, model_path: Path | None = None) -> None:
        import onnxruntime

        path = model_path or silero_model_path()
        if not path.exists():
            raise ModelError(f"Silero VAD model not found at {path}")
        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        options.log_severity_level = 4
        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"], sess_options=options)
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)

    def probability(self, frame: np.ndarray) -> float:
        if frame.shape != (FRAME,):
            raise ValueError(f"a VAD frame is {FRAME} samples at 16 kHz, got {frame.shape}")
        window = np.concatenate([self._context, frame.astype(np.float32)])[None, :]
        probs, self._h, self._c = self.session.run(None, {"input": window, "h": self._h, "c": self._c})
        self._context = frame[-CONTEXT:].astype(np.float32)
        return float(np.asarray(probs).reshape(-1)[0])


@dataclass(frozen=True)
class VadConfig:
    start_threshold: float = 0.5  # a frame this likely to be speech may start an utterance
    end_threshold: float = 0.35  # below this a frame counts as silence (hysteresis)
    min_speech_ms: int = 250  # shorter bursts (clicks, coughs) are ignored
    silence_ms: int = 500  # this much silence ends an utterance
    pre_roll_ms: int = 200  # audio kept from before the detected start
    max_utterance_s: float = 30.0  # a longer utterance is cut here

    def frames(self, ms: float) -> int:
        return max(1, round(ms / 1000 * RATE / FRAME))


@dataclass(frozen=True)
class SpeechStarted:
    at_s: float  # stream time of the first speech frame (after min_speech_ms was confirmed)


@dataclass(frozen=True)
class Utterance:
    samples: np.ndarray  # 16 kHz float32, pre-roll included
    start_s: float  # stream time of the first speech frame
    end_s: float  # stream time of the last speech frame's end
    detected_s: float  # stream time at which the end was declared (end_s + silence timeout)


VadEvent = SpeechStarted | Utterance


class UtteranceSegmenter:
    """Feed 16 kHz audio in blocks of any size; get SpeechStarted / Utterance events."""

    def __init__(self, vad: SileroVad, config: VadConfig | None = None) -> None:
        self.vad = vad
        self.config = config or VadConfig()
        self._pending = np.zeros(0, dtype=np.float32)
        self._frames_seen = 0
        self._history: list[np.ndarray] = []  # recent frames for pre-roll
        self._speech: list[np.ndarray] = []
        self._in_speech = False
        self._confirmed = False
        self._voiced_run = 0
        self._silent_run = 0
        self._start_frame = 0
        self._last_voiced_frame = 0
        self.last_probability = 0.0
        self.last_level_db = -100.0

    @property
    def now_s(self) -> float:
        return self._frames_seen * FRAME / RATE

    @property
    def in_speech(self) -> bool:
        return self._in_speech and self._confirmed

    def feed(self, samples: np.ndarray) -> list[VadEvent]:
        self._pending = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        events: list[VadEvent] = []
        while len(self._pending) >= FRAME:
            frame, self._pending = self._pending[:FRAME], self._pending[FRAME:]
            event = self._step(frame)
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[VadEvent]:
        """End of stream: close an utterance that is still open."""
        if self._in_speech and self._confirmed:
            return [self._finish()]
        return []

    def _step(self, frame: np.ndarray) -> VadEvent | None:
        cfg = self.config
        index = self._frames_seen
        self._frames_seen += 1
        probability = self.vad.probability(frame)
        self.last_probability = probability
        rms = float(np.sqrt(np.mean(frame * frame))) if frame.size else 0.0
        self.last_level_db = 20 * np.log10(max(rms, 1e-5))
        self._history.append(frame)
        del self._history[: -cfg.frames(cfg.pre_roll_ms) - 1]

        if not self._in_speech:
            if probability >= cfg.start_threshold:
                self._in_speech, self._confirmed = True, False
                self._start_frame = self._last_voiced_frame = index
                self._voiced_run, self._silent_run = 1, 0
                self._speech = list(self._history)  # pre-roll plus this frame
            return None

        self._speech.append(frame)
        if probability >= cfg.end_threshold:
            self._voiced_run += 1
            self._silent_run = 0
            self._last_voiced_frame = index
        else:
            self._silent_run += 1
        if not self._confirmed:
            if self._voiced_run >= cfg.frames(cfg.min_speech_ms):
                self._confirmed = True
                return SpeechStarted(self._start_frame * FRAME / RATE)
            if self._silent_run >= cfg.frames(cfg.silence_ms):  # too short: a click, not speech
                self._in_speech = False
            return None
        too_long = len(self._speech) * FRAME / RATE >= cfg.max_utterance_s
        if self._silent_run >= cfg.frames(cfg.silence_ms) or too_long:
            return self._finish()
        return None

    def _finish(self) -> Utterance:
        utterance = Utterance(
            samples=np.concatenate(self._speech) if self._speech else np.zeros(0, dtype=np.float32),
            start_s=self._start_frame * FRAME / RATE,
            end_s=(self._last_voiced_frame + 1) * FRAME / RATE,
            detected_s=self.now_s,
        )
        self._in_speech = self._confirmed = False
        self._speech = []
        self._voiced_run = self._silent_run = 0
        return utterance
