"""`voicerag chat`: real VAD, real models, real audio from espeak-ng fed through the audio
source/sink interfaces; plus a run through PortAudio itself on an ALSA null device."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voicerag_cli.audio.stream import FileSource, VirtualSink
from voicerag_cli.audio.vad import SileroVad, SpeechStarted, Utterance, UtteranceSegmenter, VadConfig
from voicerag_cli.config import Settings
from voicerag_cli.errors import BackendError
from voicerag_cli.index.builder import build_index
from voicerag_cli.index.hnsw_store import IndexRoot
from voicerag_cli.pipeline.ask import AskPipeline
from voicerag_cli.pipeline.chat import ChatSession
from voicerag_cli.registry import Registry

REPO = Path(__file__).resolve().parents[1]
RATE = 16_000
QUESTIONS = ["Who built the first running machine?", "What is the tallest volcano in the solar system?"]


def speak(text: str, voice: str = "en-us") -> np.ndarray:
    """espeak-ng speech at 16 kHz, trimmed to the voiced part (so onsets are known exactly)."""
    result = subprocess.run(["espeak-ng", "-v", voice, "--stdout", text], capture_output=True, check=True)
    import io

    samples, rate = sf.read(io.BytesIO(result.stdout), dtype="float32")
    import soxr

    samples = soxr.resample(samples, rate, RATE).astype(np.float32)
    voiced = np.flatnonzero(np.abs(samples) > 0.01)
    return samples[voiced[0] : voiced[-1] + 1]


def conversation(
    gaps_s: list[float], noise: float = 0.003, seed: int = 0
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Leading silence, then each question followed by its gap, over low background noise.
    Returns the audio and the true (start, end) of each question in seconds."""
    parts, spans, position = [np.zeros(RATE, dtype=np.float32)], [], 1.0
    for question, gap in zip(QUESTIONS, gaps_s, strict=True):
        clip = speak(question)
        spans.append((position, position + len(clip) / RATE))
        parts += [clip, np.zeros(int(gap * RATE), dtype=np.float32)]
        position += len(clip) / RATE + gap
    audio = np.concatenate(parts)
    audio += np.random.default_rng(seed).normal(0, noise, len(audio)).astype(np.float32)
    return audio, spans


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Registry, IndexRoot]:
    settings = Settings()
    registry = Registry(settings)
    root = IndexRoot(tmp_path_factory.mktemp("data") / "indexes")
    build_index(root, "demo", [REPO / "examples" / "docs"], settings.index, registry.text_embedder)
    return registry, root


def session_for(
    demo: tuple[Registry, IndexRoot], sink: VirtualSink, save: Path | None = None, **kw: object
) -> ChatSession:
    registry, root = demo
    pipeline = AskPipeline(registry, root.open("demo"), k=3, ef_search=64)
    return ChatSession(pipeline, UtteranceSegmenter(SileroVad(), VadConfig()), sink, rag="asr", save_dir=save, **kw)  # type: ignore[arg-type]


def write_wav(path: Path, audio: np.ndarray, rate: int = RATE) -> Path:
    sf.write(str(path), audio, rate)
    return path


def test_segmentation_boundaries_in_noise() -> None:
    audio, spans = conversation([1.5, 1.0], noise=0.005)
    audio[int(0.4 * RATE) : int(0.43 * RATE)] += 0.5  # a 30 ms click: not speech
    segmenter = UtteranceSegmenter(SileroVad(), VadConfig(silence_ms=500))
    events = []
    for offset in range(0, len(audio), 1000):  # odd block size on purpose
        events += segmenter.feed(audio[offset : offset + 1000])
    events += segmenter.flush()
    utterances = [e for e in events if isinstance(e, Utterance)]
    starts = [e for e in events if isinstance(e, SpeechStarted)]
    assert len(utterances) == 2 and len(starts) == 2
    for utterance, (start, end) in zip(utterances, spans, strict=True):
        assert abs(utterance.start_s - start) < 0.15
        assert abs(utterance.end_s - end) < 0.3
        assert utterance.detected_s - utterance.end_s == pytest.approx(0.512, abs=0.04)  # 16 frames of silence
        assert len(utterance.samples) / RATE >= end - start  # pre-roll included, nothing cut


@pytest.mark.slow
def test_file_fed_conversation_turns_barge_in_and_saving(demo: tuple[Registry, IndexRoot], tmp_path: Path) -> None:
    # 1 s after question one the answer (several seconds long) is still playing: barge-in.
    audio, spans = conversation([1.0, 1.5])
    sink = VirtualSink()
    session = session_for(demo, sink, save=tmp_path / "session")
    turns = session.run(FileSource(write_wav(tmp_path / "conv.wav", audio)))

    assert [t.index for t in turns] == [1, 2]
    assert turns[0].result is not None and turns[1].result is not None
    assert "running machine" in turns[0].result.transcript.lower()
    assert "volcano" in turns[1].result.transcript.lower()
    assert turns[0].result.sources[0].source.endswith("bicycles.md")
    assert turns[1].result.sources[0].source.endswith("solar_system.txt")
    # turn order in stream time, and the interruption at the second question's onset
    assert turns[0].answer_started_s == pytest.approx(turns[0].detected_s)
    assert turns[0].interrupted_s == pytest.approx(spans[1][0], abs=0.15)
    assert sink.log[0]["stopped_s"] >= turns[0].interrupted_s
    assert turns[1].interrupted_s is None
    assert turns[0].eos_to_audio_ms > turns[0].latency_ms["vad_tail"] > 0
    # second turn's generator saw the first as history
    saved = json.loads((tmp_path / "session" / "session.json").read_text(encoding="utf-8"))
    assert [t["turn"] for t in saved["turns"]] == [1, 2]
    assert saved["turns"][0]["interrupted_s"] == pytest.approx(turns[0].interrupted_s, abs=1e-3)
    for n in (1, 2):
        folder = tmp_path / "session" / f"turn-{n:03d}"
        question, rate = sf.read(str(folder / "question.wav"))
        assert rate == RATE and len(question) / RATE > 1.0
        answer, answer_rate = sf.read(str(folder / "answer.wav"))
        assert answer_rate > 0 and len(answer) > answer_rate  # over a second of spoken answer
        assert json.loads((folder / "turn.json").read_text(encoding="utf-8"))["turn"] == n


@pytest.mark.slow
def test_no_barge_in_when_disabled_or_after_the_answer(demo: tuple[Registry, IndexRoot], tmp_path: Path) -> None:
    audio, _ = conversation([1.0, 1.0])
    turns = session_for(demo, VirtualSink(), barge_in=False).run(FileSource(write_wav(tmp_path / "a.wav", audio)))
    assert len(turns) == 2 and turns[0].interrupted_s is None
    # a pause longer than the answer: it finishes before the next question
    audio, _ = conversation([12.0, 1.0])
    turns = session_for(demo, VirtualSink()).run(FileSource(write_wav(tmp_path / "b.wav", audio)))
    assert len(turns) == 2 and turns[0].interrupted_s is None


class DisconnectingSource:
    """A source whose device vanishes after `seconds` of audio (as a USB mic being pulled)."""

    def __init__(self, inner: FileSource, seconds: float) -> None:
        self.inner, self.seconds = inner, seconds

    def blocks(self) -> Iterator[np.ndarray]:
        delivered = 0
        for block in self.inner.blocks():
            if delivered / RATE >= self.seconds:
                raise BackendError("input device stopped delivering audio (disconnected?)")
            delivered += len(block)
            yield block

    def close(self) -> None:
        self.inner.close()


def test_device_lost_mid_session_keeps_saved_turns(demo: tuple[Registry, IndexRoot], tmp_path: Path) -> None:
    audio, spans = conversation([1.0, 1.5])
    session = session_for(demo, VirtualSink(), save=tmp_path / "s")
    cut = spans[1][0] + 0.3  # during the second question
    with pytest.raises(BackendError, match="disconnected"):
        session.run(DisconnectingSource(FileSource(write_wav(tmp_path / "c.wav", audio)), cut))
    saved = json.loads((tmp_path / "s" / "session.json").read_text(encoding="utf-8"))
    assert [t["turn"] for t in saved["turns"]] == [1]
    assert (tmp_path / "s" / "turn-001" / "question.wav").exists()


def cli_env(tmp_path: Path, demo_index: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICERAG_")}
    env.update(VOICERAG_DATA_DIR=str(tmp_path / "data"), VOICERAG_CONFIG=os.devnull)
    if demo_index:
        subprocess.run(
            [sys.executable, "-m", "voicerag_cli", "index", str(REPO / "examples" / "docs")], env=env, check=True,
            capture_output=True,
        )  # fmt: skip
    return env


@pytest.mark.slow
def test_cli_input_file_json_lines(tmp_path: Path) -> None:
    audio, _ = conversation([1.0, 1.5])
    wav = write_wav(tmp_path / "conv44k.wav", _resample(audio, 44_100), 44_100)  # the device's native rate
    env = cli_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "voicerag_cli", "chat", "--input", str(wav), "--json", "--save", str(tmp_path / "out")],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["event"] for line in lines] == ["turn", "barge_in", "turn"]
    assert lines[1]["turn"] == 1
    assert lines[2]["result"]["sources"][0]["source"].endswith("solar_system.txt")
    assert (tmp_path / "out" / "turn-002" / "answer.wav").exists()


def test_cli_text_mode_follow_up(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "voicerag_cli", "chat", "--text", "--mute", "--json"],
        input="who built the running machine?\nand in which year?\n", env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    first, second = (json.loads(line)["result"] for line in result.stdout.splitlines())
    assert "Drais" in first["answer"]
    # the follow-up names no topic: the conversation supplies it
    assert second["sources"][0]["source"].endswith("bicycles.md")
    assert "1817" in second["answer"]


@pytest.mark.slow
def test_cli_chat_honours_ask_rounds(tmp_path: Path) -> None:
    env = cli_env(tmp_path) | {"VOICERAG_ASK__ROUNDS": "2"}
    result = subprocess.run(
        [sys.executable, "-m", "voicerag_cli", "chat", "--text", "--mute", "--json"],
        input="where does the rhine rise?\n", env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [turn] = [json.loads(line)["result"] for line in result.stdout.splitlines()]
    assert turn["rounds"] == 2 and turn["first_round"] is not None
    assert {"search_round2", "generate_round2"} <= set(turn["timings_ms"])


def test_cli_bad_device_is_a_clean_error(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "voicerag_cli", "chat", "--mic", "--device", "97"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 7
    assert result.stderr.startswith("voicerag: error: no usable input device")
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def _resample(audio: np.ndarray, rate: int) -> np.ndarray:
    import soxr

    return soxr.resample(audio, RATE, rate).astype(np.float32)


ASOUNDRC = "pcm.!default { type null }\nctl.!default { type hw card 0 }\n"


def test_through_portaudio_on_alsa_null_device(tmp_path: Path) -> None:
    """The real MicSource/SpeakerSink code paths through PortAudio and ALSA, on the null PCM
    (which captures arbitrary bytes and discards playback): the stream opens at the device's
    native rate, blocks are resampled to 16 kHz and sanitized, playback starts and stops."""
    if shutil.which("aplay") is None and not Path("/usr/share/alsa/alsa.conf").exists():
        pytest.skip("ALSA configuration not installed (libasound2-data): no null device to open")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".asoundrc").write_text(ASOUNDRC, encoding="utf-8")
    script = """
import itertools, numpy as np, sounddevice as sd
from voicerag_cli.audio.stream import MicSource, SpeakerSink
if not any(d["max_input_channels"] for d in sd.query_devices()):
    raise SystemExit(42)
mic = MicSource(None)
blocks = list(itertools.islice(mic.blocks(), 10))
mic.close()
assert all(b.dtype == np.float32 and np.isfinite(b).all() and np.all(np.abs(b) <= 1) for b in blocks), "unsanitized"
total = sum(len(b) for b in blocks)
speaker = SpeakerSink(None)
speaker.play(np.zeros(16000, dtype=np.float32), 16000, 0.0)
opened = sd.get_stream().samplerate == 16000  # the null PCM is unpaced: playback may already be over
speaker.stop(0.0)
print(mic.rate, total, opened, speaker.is_playing(0.0))
"""
    env = {**os.environ, "HOME": str(home)}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    if result.returncode == 42:
        pytest.skip("PortAudio lists no ALSA devices even with a null PCM configured")
    assert result.returncode == 0, result.stderr
    rate, total, opened, after_stop = result.stdout.split()
    assert int(rate) > 0
    assert 10 * 512 * 0.5 <= int(total) <= 10 * 512 * 1.2  # ten 32 ms blocks at 16 kHz, less resampler delay
    assert opened == "True" and after_stop == "False"
