"""Showing and playing an answer while a streaming generator (glm4voice, llama) produces it: text
deltas go to stderr as they arrive, audio chunks into an output stream that starts playing with
the first chunk. Generators that do not stream are left alone."""

from __future__ import annotations

import collections
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from voicerag_cli.errors import BackendError

if TYPE_CHECKING:
    from voicerag_cli.registry import Registry


class StreamingPlayer:
    """Plays chunks back to back on the default output device, starting with the first one.
    A device error stops playback but not the answer: it is kept in `error` for the caller."""

    def __init__(self, device: int | str | None = None) -> None:
        self.device = device
        self.chunks: collections.deque[np.ndarray] = collections.deque()
        self.lock = threading.Lock()
        self.stream: Any = None
        self.rate = 0
        self.queued_s = 0.0
        self.started_at: float | None = None
        self.error: str | None = None

    def write(self, samples: np.ndarray, rate: int) -> None:
        if self.error is not None or not len(samples):
            return
        if self.stream is None:
            self._open(rate)
            if self.error is not None:
                return
        with self.lock:
            self.chunks.append(np.asarray(samples, dtype=np.float32))
        self.queued_s += len(samples) / rate

    def _open(self, rate: int) -> None:
        from voicerag_cli.audio.stream import import_sounddevice

        try:
            sd = import_sounddevice()
            self.stream = sd.OutputStream(
                samplerate=rate, channels=1, dtype="float32", device=self.device, callback=self._fill
            )
            self.stream.start()
        except (BackendError, OSError, ValueError, RuntimeError) as exc:  # PortAudioError is a RuntimeError
            self.error = f"cannot play audio: {exc}"
            self.stream = None
            return
        self.rate, self.started_at = rate, time.monotonic()

    def _fill(self, out: np.ndarray, frames: int, when: Any, status: Any) -> None:
        """PortAudio callback: copy queued audio; silence while the next chunk is still coming."""
        filled = 0
        with self.lock:
            while filled < frames and self.chunks:
                chunk = self.chunks[0]
                take = min(frames - filled, len(chunk))
                out[filled : filled + take, 0] = chunk[:take]
                filled += take
                if take == len(chunk):
                    self.chunks.popleft()
                else:
                    self.chunks[0] = chunk[take:]
        out[filled:, 0] = 0.0

    @property
    def played(self) -> bool:
        return self.started_at is not None

    def finish(self) -> None:
        """Wait until everything queued has been played, then close the device."""
        if self.stream is None:
            return
        assert self.started_at is not None
        deadline = self.started_at + self.queued_s + 2.0  # a device that stalls cannot hang the CLI
        while time.monotonic() < deadline:
            with self.lock:
                if not self.chunks:
                    break
            time.sleep(0.02)
        time.sleep(max(0.0, min(0.3, deadline - time.monotonic())))  # let the device drain its own buffer
        try:
            self.stream.stop()
            self.stream.close()
        except Exception:  # a device that vanished while playing must not mask the answer
            pass
        self.stream = None


class AnswerStream:
    """An `AnswerListener` for the terminal: prints text deltas, plays audio chunks."""

    def __init__(self, show_text: bool, player: StreamingPlayer | None) -> None:
        self.show_text = show_text
        self.player = player
        self.printed = False

    def on_text(self, delta: str) -> None:
        if self.show_text:
            from voicerag_cli.cli.console import err, strip_controls

            err.print(strip_controls(delta), end="", markup=False, highlight=False, soft_wrap=True)
            self.printed = True

    def on_audio(self, samples: np.ndarray, sample_rate: int) -> None:
        if self.player is not None:
            self.player.write(samples, sample_rate)

    @property
    def wants_audio(self) -> bool:
        """Whether audio is played: text-only generators synthesize their sentences only then."""
        return self.player is not None

    @property
    def played(self) -> bool:
        return self.player is not None and self.player.played

    def close(self) -> None:
        if self.printed:
            from voicerag_cli.cli.console import err

            err.print()
            self.printed = False
        if self.player is not None:
            self.player.finish()


def attach(registry: Registry, show_text: bool, play: bool) -> AnswerStream | None:
    """Give the configured generator a terminal listener if it streams; None otherwise."""
    from voicerag_cli.models.base import StreamingGenerator

    generator = registry.generator()
    if not isinstance(generator, StreamingGenerator) or not (show_text or play):
        return None
    stream = AnswerStream(show_text, StreamingPlayer() if play else None)
    generator.listener = stream
    return stream
