"""Kokoro TTS on the real int8 model: per-sentence streaming, voice blends, and speech that
Whisper reads back (English through tiny.en, Chinese through the zh profile's Whisper base)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voicerag_cli.errors import InputError
from voicerag_cli.models.kokoro import SAMPLE_RATE, clauses, load_voices, parse_blend


def test_blends_are_normalized_weighted_sums_and_bad_names_are_clear() -> None:
    _, voices = load_voices()
    assert {"jf_alpha", "jm_kumo"} <= set(voices)
    alpha, kumo = voices["jf_alpha"].reshape(-1, 256), voices["jm_kumo"].reshape(-1, 256)
    blend = parse_blend("jf_alpha:3+jm_kumo:1", voices)
    np.testing.assert_allclose(blend, 0.75 * alpha + 0.25 * kumo, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(parse_blend("jm_kumo", voices), kumo)
    with pytest.raises(InputError, match="unknown Kokoro voice 'af_heart'"):
        parse_blend("af_heart", voices)
    with pytest.raises(InputError, match="positive"):
        parse_blend("jf_alpha:0", voices)


def test_long_sentences_are_cut_at_clause_punctuation_only() -> None:
    sentence = "当时大批民众聚集在寺庙门口，大门打开后人群立刻涌入，一名女子直接摔倒在地，随后其他人也跟着摔倒。"
    pieces = clauses(sentence, 16)
    assert "".join(pieces) == sentence  # nothing lost or reordered
    assert pieces == [
        "当时大批民众聚集在寺庙门口，",
        "大门打开后人群立刻涌入，",
        "一名女子直接摔倒在地，",
        "随后其他人也跟着摔倒。",
    ]
    assert clauses(sentence, 40) == [sentence[:37], sentence[37:]]  # clauses packed up to the limit
    assert clauses(sentence, 0) == [sentence] == clauses(sentence, 200)
    assert clauses("没有逗号的一个很长很长很长的句子。", 5) == ["没有逗号的一个很长很长很长的句子。"]


@pytest.fixture(scope="module")
def kokoro(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from voicerag_cli.config import load_settings
    from voicerag_cli.registry import Registry

    cache = tmp_path_factory.mktemp("cache")
    return Registry(load_settings(None, overrides={"models.tts": "kokoro", "paths.cache_dir": str(cache)})).tts()


@pytest.mark.slow
def test_streams_one_chunk_per_sentence_and_english_reads_back(kokoro, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from voicerag_cli.audio.io import read_audio
    from voicerag_cli.config import load_settings
    from voicerag_cli.eval.metrics import transcript_error
    from voicerag_cli.registry import Registry

    text = "The library opens at nine. It closes at six."
    chunks = list(kokoro.stream(text))
    assert len(chunks) == 2 and all(c.dtype == np.float32 and c.size > 0.4 * SAMPLE_RATE for c in chunks)
    path = kokoro.synthesize(text, tmp_path / "en.wav", voice="jf_alpha:0.5+jm_kumo:0.5")
    clip = read_audio(path)
    asr = Registry(load_settings(None)).asr()
    assert transcript_error(asr.transcribe(clip.samples, clip.sample_rate).text, text)["wer"] <= 0.25


@pytest.mark.slow
def test_chinese_answer_is_intelligible_to_whisper_base(kokoro, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from voicerag_cli.audio.io import read_audio
    from voicerag_cli.config import load_settings
    from voicerag_cli.eval.metrics import transcript_error
    from voicerag_cli.registry import Registry

    text = "京沪高速铁路连接北京和上海。"
    clip = read_audio(kokoro.synthesize(text, tmp_path / "zh.wav"))
    assert clip.samples.size > SAMPLE_RATE // 2
    settings = load_settings(None, overrides={"paths.cache_dir": str(tmp_path / "c")}, profile="zh")
    heard = Registry(settings).asr().transcribe(clip.samples, clip.sample_rate).text
    assert transcript_error(heard, text)["cer"] <= 0.4, heard


@pytest.mark.slow
def test_latin_words_in_chinese_are_spoken_not_dropped(kokoro) -> None:  # type: ignore[no-untyped-def]
    vocab = kokoro.vocab
    text = "RCEP具体包括哪些国家？"
    with_latin = kokoro.phonemes(text)
    kokoro.read_latin = False
    try:
        without = kokoro.phonemes(text)
    finally:
        kokoro.read_latin = True
    # misaki alone keeps the letters, which Kokoro's vocabulary lacks: they would be silent
    assert "RCEP" in without and not {"R", "C", "E", "P"} <= set(vocab)
    assert "RCEP" not in with_latin and with_latin.endswith(without.removeprefix("RCEP"))
    spoken = with_latin.removesuffix(without.removeprefix("RCEP"))
    assert sum(c in vocab for c in spoken) >= 8  # espeak's IPA for four letter names
