"""Eval question voices: espeak-ng and Kokoro in one run, each question's engine recorded, and the
rendered questions intelligible to the recognizer that scores them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.test_eval_datasets import SHARED
from tests.test_eval_run import run_eval

from voicerag_cli.eval.speech import Voice, engine_of, voice_plan

needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="../shared/data is not present beside the repo")


def test_the_voice_name_picks_the_engine() -> None:
    assert engine_of("jm_kumo") == engine_of("jf_alpha:0.5+jm_kumo:0.5") == "kokoro"
    assert engine_of("en-us") == engine_of("en-gb") == engine_of("cmn") == engine_of("en-us+f3") == "espeak"
    assert engine_of("jf_alpha+en-us") == "espeak"  # not a Kokoro blend: left to espeak, which says so
    plan = voice_plan(["a", "b", "c", "d"], ["en-us", "jm_kumo"], [175], seed=0)
    assert {v.engine for v in plan.values()} == {"espeak", "kokoro"}
    assert Voice("jm_kumo", 150).to_json() == {"name": "jm_kumo", "rate": 150, "pitch": 50, "engine": "kokoro"}


def rows_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]


@needs_shared
@pytest.mark.slow
def test_english_questions_spoken_by_espeak_and_kokoro(tmp_path: Path) -> None:
    out = tmp_path / "en"
    summary = run_eval(
        tmp_path, out, "--dataset", "rgb-en", "--data", str(SHARED / "rgb" / "en_fact.json"), "--limit", "3",
        "--modes", "asr", "--voices", "en-us,jm_kumo", "--rates", "175",
    )  # fmt: skip
    rows = rows_of(out)
    assert {r["voice"]["engine"] for r in rows} == {"espeak", "kokoro"}
    assert summary["modes"]["asr"]["questions"] == 3
    assert all(row["audio_seconds"] > 1.0 for row in rows)
    # the Kokoro-spoken question reads back (espeak's "Who acquired Instagram?" is a known tiny.en miss)
    kokoro = next(row for row in rows if row["voice"]["engine"] == "kokoro")
    assert kokoro["modes"]["asr"]["wer"] <= 0.25, kokoro["modes"]["asr"]["transcript"]
    assert summary["modes"]["asr"]["wer"] < 1.0


@needs_shared
@pytest.mark.slow
def test_chinese_questions_spoken_by_kokoro_read_back_by_the_zh_profile(tmp_path: Path) -> None:
    out = tmp_path / "zh"
    run_eval(
        tmp_path, out, "--dataset", "rgb-zh", "--data", str(SHARED / "rgb" / "zh_refine.json"), "--limit", "2",
        "--modes", "asr", "--profile", "zh",
    )  # fmt: skip
    rows = rows_of(out)
    assert [r["voice"]["engine"] for r in rows] == ["kokoro", "kokoro"]
    assert {r["voice"]["name"] for r in rows} <= {"jm_kumo", "jf_gongitsune"}
    for row in rows:
        assert row["modes"]["asr"]["cer"] <= 0.6, row["modes"]["asr"]["transcript"]
