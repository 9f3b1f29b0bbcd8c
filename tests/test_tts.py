"""Speech output: the espeak-ng backend writes valid, intelligible WAVs; citation markers are
never spoken."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voicerag_cli.audio.io import read_audio
from voicerag_cli.config import Settings
from voicerag_cli.errors import BackendError
from voicerag_cli.models.base import Answer
from voicerag_cli.models.espeak import EspeakSynthesizer, create
from voicerag_cli.pipeline.ask import AskPipeline, AskResult, spoken_form
from voicerag_cli.registry import Registry


@pytest.fixture(scope="module")
def tts() -> EspeakSynthesizer:
    return create(Settings(), None)


def test_espeak_writes_a_valid_wav(tts: EspeakSynthesizer, tmp_path: Path) -> None:
    target = tmp_path / "nested" / "answer.wav"
    assert tts.synthesize("The Rhine rises in the Swiss Alps.", target) == target
    info = sf.info(str(target))
    assert (info.format, info.channels, info.samplerate) == ("WAV", 1, 22_050)
    assert 1.0 < info.duration < 6.0
    samples, _ = sf.read(str(target), dtype="float32")
    assert float(np.max(np.abs(samples))) > 0.1
    assert [p.name for p in target.parent.iterdir()] == ["answer.wav"]  # no .part file left


def test_rate_and_leading_dash(tts: EspeakSynthesizer, tmp_path: Path) -> None:
    text = "-v is read as words, not as an option"
    slow = tts.synthesize(text, tmp_path / "slow.wav", rate=110)
    fast = tts.synthesize(text, tmp_path / "fast.wav", rate=300)
    assert sf.info(str(slow)).duration > 1.5 * sf.info(str(fast)).duration


def test_espeak_failure_is_a_backend_error(tts: EspeakSynthesizer, tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="espeak-ng failed"):
        tts.synthesize("hello", tmp_path / "x.wav", voice="xx-no-such-voice")
    # nothing half-written left behind (config/ is the suite's isolated XDG_CONFIG_HOME, cache/
    # holds only the model stamps the suite starts each test with)
    assert [entry.name for entry in tmp_path.iterdir() if entry.name not in ("config", "cache")] == []
    assert [entry.name for entry in (tmp_path / "cache").iterdir()] == ["verified"]


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        (
            "Karl von Frisch decoded it [1]. The Rhine rises in the Alps [2, 3].",
            "Karl von Frisch decoded it. The Rhine rises in the Alps.",
        ),
        ("Nothing cited here.", "Nothing cited here."),
        ("Two [10][11] markers  and   spaces [4]", "Two markers and spaces"),
        # not citations: their words are spoken (the brackets are markup, not speech)
        ("A list [a] and a year [1973 was good] stay.", "A list a and a year 1973 was good stay."),
    ],
)
def test_spoken_form_drops_citations(text: str, spoken: str) -> None:
    assert spoken_form(text) == spoken


def test_pipeline_speaks_without_citations(registry: Registry, tmp_path: Path) -> None:
    """Synthesize an answer with markers through the pipeline and listen to it with Whisper."""
    result = AskResult(
        input="text",
        rag="text",
        index="none",
        transcript=None,
        question="q",
        answer=Answer("It is the biggest planet in the solar system [1] [2].", [1, 2]),
        sources=[],
        timings_ms={},
        models={},
    )
    pipeline = AskPipeline(registry, searcher=None, k=5, ef_search=128)  # type: ignore[arg-type]
    path = pipeline.speak(result, tmp_path / "answer.wav")
    assert result.answer_audio == str(path) and result.models["tts"] == "espeak" and "tts" in result.timings_ms
    heard = registry.asr().transcribe(read_audio(path).samples, 16_000).text.lower()
    assert "biggest planet" in heard and "solar system" in heard
    assert not any(word in heard for word in ("one", "two", "1", "2", "bracket"))
