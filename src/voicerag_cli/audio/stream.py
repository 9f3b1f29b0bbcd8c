"""Live audio in and out, behind small interfaces so the chat loop runs the same on a
microphone and speakers as on a recorded file and a virtual speaker (scripts and tests).

Time is *stream time*: seconds of input consumed. For the microphone it follows the wall
clock; for a file it runs as fast as the loop can read, or in real time with `realtime=True`.
Sinks are told the stream time, so playback and barge-in work identically in both cases.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from voicerag_cli.errors import BackendError

RATE = 16_000


class AudioSource(Protocol):
    def blocks(self) -> Iterator[np.ndarray]:
        """Yield float32 mono blocks at 16 kHz until the source ends."""
        ...

    def close(self) -> None: ...


class AudioSink(Protocol):
    def play(self, samples: np.ndarray, rate: int, now_s: float) -> None:
        """Start playing (non-blocking)."""
        ...

    def stop(self, now_s: float) -> None: ...

    def is_playing(self, now_s: float) -> bool: ...

    def wait(self) -> None:
        """Block until what is playing has ended (typed chat: one answer after another)."""
        ...


class StreamResampler:
    """Incremental resampling of a native-rate stream to 16 kHz (soxr keeps filter state)."""

    def __init__(self, rate: int) -> None:
        import soxr

        self._stream = None if rate == RATE else soxr.ResampleStream(rate, RATE, 1, dtype="float32")

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        # Guard against garbage from broken devices: NaN/inf (which would poison the filter state)
        # before resampling, out-of-range samples after it too, since the filter overshoots a clipped input.
        block = np.clip(np.nan_to_num(block.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0), -1.0, 1.0)
        if self._stream is None:
            return block
        return np.clip(self._stream.resample_chunk(block, last=last), -1.0, 1.0)


class FileSource:
    """A recorded conversation fed as if from the microphone."""

    def __init__(self, path: Path, block_ms: int = 32, realtime: bool = False) -> None:
        from voicerag_cli.audio.io import checked_mono, decode_audio

        # the checks of `ask` (a regular, readable file; a plausible header; finite, non-silent
        # samples), with its messages
        samples, rate, name = decode_audio(path)
        self.samples = checked_mono(samples, rate, name)
        self.rate = rate
        self.block = max(1, rate * block_ms // 1000)
        self.realtime = realtime

    def blocks(self) -> Iterator[np.ndarray]:
        resample = StreamResampler(self.rate)
        started = time.monotonic()
        for offset in range(0, len(self.samples), self.block):
            chunk = self.samples[offset : offset + self.block]
            last = offset + self.block >= len(self.samples)
            if self.realtime:
                delay = started + offset / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            yield resample(chunk, last=last)

    def close(self) -> None:
        pass


class MicSource:
    """The default (or chosen) input device at its native rate, resampled to 16 kHz. The
    device is checked on construction; capture starts when `blocks()` is first iterated."""

    def __init__(self, device: int | str | None = None, block_ms: int = 32) -> None:
        self.sd = import_sounddevice()
        try:
            info = self.sd.query_devices(device, "input")
        except (ValueError, self.sd.PortAudioError) as exc:
            raise BackendError(f"no usable input device{f' {device!r}' if device is not None else ''}: {exc}") from exc
        self.device = device
        self.rate = int(info["default_samplerate"])
        self.name = str(info["name"])
        self.blocksize = max(1, self.rate * block_ms // 1000)
        self._queue: queue.Queue[np.ndarray] = queue.Queue()
        self._stream: Any = None
        self._closed = False

    def _callback(self, data: np.ndarray, frames: int, when: Any, status: Any) -> None:
        self._queue.put(data[:, 0].copy())

    def _open(self) -> None:
        try:
            self._stream = self.sd.InputStream(
                device=self.device,
                channels=1,
                samplerate=self.rate,
                dtype="float32",
                blocksize=self.blocksize,
                callback=self._callback,
            )
            self._stream.start()
        except self.sd.PortAudioError as exc:
            raise BackendError(f"cannot open input device {self.name!r} (busy or gone?): {exc}") from exc

    def blocks(self) -> Iterator[np.ndarray]:
        self._open()
        resample = StreamResampler(self.rate)
        while not self._closed:
            try:
                block = self._queue.get(timeout=2.0)
            except queue.Empty as exc:
                if not self._stream.active:
                    raise BackendError(f"input device {self.name!r} stopped delivering audio (disconnected?)") from exc
                continue
            yield resample(block)

    def close(self) -> None:
        self._closed = True
        if self._stream is None:
            return
        try:
            self._stream.stop()
            self._stream.close()
        except Exception:  # closing a device that vanished must not mask the original error
            pass


class SpeakerSink:
    """Plays through the default (or chosen) output device."""

    def __init__(self, device: int | str | None = None) -> None:
        self.sd = import_sounddevice()
        self.device = device
        try:
            self.sd.query_devices(device, "output")
        except (ValueError, self.sd.PortAudioError) as exc:
            raise BackendError(f"no usable output device: {exc} (use --mute)") from exc

    def play(self, samples: np.ndarray, rate: int, now_s: float) -> None:
        try:
            self.sd.play(samples, rate, device=self.device)
        except self.sd.PortAudioError as exc:
            raise BackendError(f"cannot play audio: {exc}") from exc

    def stop(self, now_s: float) -> None:
        self.sd.stop()

    def wait(self) -> None:
        self.sd.wait()

    def is_playing(self, now_s: float) -> bool:
        stream = self.sd.get_stream() if hasattr(self.sd, "get_stream") else None
        try:
            return bool(stream is not None and stream.active)
        except RuntimeError:  # no stream was ever started
            return False


class VirtualSink:
    """A speaker that plays in stream time without a device: what was played, when, and
    whether it was cut short is recorded (for --mute, --input runs, and tests)."""

    def __init__(self) -> None:
        self.log: list[dict[str, float]] = []

    def play(self, samples: np.ndarray, rate: int, now_s: float) -> None:
        self.log.append({"start_s": now_s, "duration_s": len(samples) / rate, "stopped_s": -1.0})

    def stop(self, now_s: float) -> None:
        if self.log and self.is_playing(now_s):
            self.log[-1]["stopped_s"] = now_s

    def wait(self) -> None:
        pass  # stream time does not pass while nothing is fed: nothing to wait for

    def is_playing(self, now_s: float) -> bool:
        if not self.log:
            return False
        last = self.log[-1]
        return last["stopped_s"] < 0 and now_s < last["start_s"] + last["duration_s"]


def import_sounddevice() -> Any:
    try:
        import sounddevice as sd
    except OSError as exc:  # the PortAudio library itself is missing
        raise BackendError(f"audio devices unavailable: {exc} (install libportaudio2)") from exc
    return sd


def list_devices() -> list[dict[str, Any]]:
    sd = import_sounddevice()
    devices = []
    for index, info in enumerate(sd.query_devices()):
        devices.append(
            {
                "index": index,
                "name": info["name"],
                "inputs": info["max_input_channels"],
                "outputs": info["max_output_channels"],
                "default_samplerate": info["default_samplerate"],
            }
        )
    return devices
