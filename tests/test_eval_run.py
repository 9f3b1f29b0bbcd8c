"""`voicerag eval` end to end with the embedded default models, in subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.test_eval_datasets import SHARED, write_hotpot

needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="../shared/data is not present beside the repo")


def eval_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICERAG_")}
    env.update(
        VOICERAG_DATA_DIR=str(tmp_path / "data"),
        VOICERAG_CACHE_DIR=str(tmp_path / "cache"),
        VOICERAG_CONFIG=os.devnull,
    )
    return env


def voicerag(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "voicerag_cli", *args], env=env, capture_output=True, text=True)


def run_eval(tmp_path: Path, out: Path, *args: str) -> dict:
    result = voicerag(["eval", "--out", str(out), "--json", *args], eval_env(tmp_path))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary == json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return summary


@needs_shared
@pytest.mark.slow
def test_rgb_english_all_modes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    summary = run_eval(
        tmp_path, out, "--dataset", "rgb-en", "--data", str(SHARED / "rgb" / "en_fact.json"), "--limit", "12",
        "--modes", "none,asr,e2e,oracle",
    )  # fmt: skip
    modes = summary["modes"]
    assert summary["questions"] == 12
    assert set(modes) == {"none", "asr", "e2e", "oracle"} and not summary["skipped_modes"]
    oracle, asr, e2e = modes["oracle"], modes["asr"], modes["e2e"]
    # e2e runs with the default distilled speech embedder: no transcript, so no WER, and faster. Its
    # quality is not asserted here: per question, chance alone gives Hit@5 ~0.88 (docs/evaluation.md); the
    # pooled check against chance is in tests/test_speech_encoder.py.
    assert e2e["questions"] == 12 and "wer" not in e2e
    assert e2e["retrieval_ms"] < asr["retrieval_ms"]
    assert oracle["hit@5"] >= 0.8
    assert oracle["hit@5"] >= asr["hit@5"]
    assert oracle["recall@10"] >= oracle["recall@5"] >= oracle["recall@1"]
    assert 0.0 <= asr["wer"] < 0.6  # espeak speech through Whisper tiny.en: imperfect, not garbage
    assert asr["retrieval_ms"] > oracle["retrieval_ms"]  # transcription is part of asr retrieval time
    assert modes["none"]["match"] <= oracle["match"]
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 12 and len({r["qid"] for r in rows}) == 12
    assert all(r["voice"]["name"] in {"en-us", "en-gb"} for r in rows)
    assert {r["voice"]["name"] for r in rows} == {"en-us", "en-gb"}  # voices are varied


@needs_shared
@pytest.mark.slow
def test_rgb_chinese_slice(tmp_path: Path) -> None:
    summary = run_eval(
        tmp_path, tmp_path / "zh", "--dataset", "rgb-zh", "--data", str(SHARED / "rgb" / "zh_refine.json"),
        "--limit", "6", "--modes", "asr,oracle",
    )  # fmt: skip
    oracle, asr = summary["modes"]["oracle"], summary["modes"]["asr"]
    assert oracle["hit@5"] >= 0.8
    assert oracle["hit@5"] >= asr["hit@5"]
    assert "cer" in asr and "wer" not in asr  # Chinese transcripts are scored per character
    # Debian's espeak-ng cannot read Chinese, so Chinese questions default to Kokoro voices
    assert summary["config"]["voices"] == ["jm_kumo", "jf_gongitsune"]


@pytest.mark.slow
def test_hotpot_fixture_pooled_two_rounds(tmp_path: Path) -> None:
    summary = run_eval(
        tmp_path, tmp_path / "hp", "--dataset", "hotpot", "--data", str(write_hotpot(tmp_path)),
        "--modes", "none,oracle", "--corpus", "pooled", "--rounds", "2", "-k", "2",
    )  # fmt: skip
    oracle, round2 = summary["modes"]["oracle"], summary["modes"]["oracle round2"]
    assert oracle["questions"] == 1
    assert oracle["hit@3"] == 1.0  # three paragraphs in all: both gold ones are among them
    assert round2["context_recall"] >= oracle["context_recall"]  # the union can only add passages
    assert round2["context_size"] >= oracle["context_size"] == 2.0


@pytest.mark.slow
def test_deterministic_given_seed(tmp_path: Path) -> None:
    data = str(write_hotpot(tmp_path))

    def stable(out: Path) -> list[dict]:
        run_eval(tmp_path, out, "--dataset", "hotpot", "--data", data, "--modes", "oracle", "--seed", "3")
        rows = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
        for row in rows:
            for result in row["modes"].values():
                for key in ("timings_ms", "retrieval_ms", "response_ms"):
                    result.pop(key, None)
        return rows

    assert stable(tmp_path / "a") == stable(tmp_path / "b")


@needs_shared
@pytest.mark.slow
def test_resume_after_interruption(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["eval", "--dataset", "rgb-en", "--data", str(SHARED / "rgb" / "en_fact.json"), "--limit", "6",
            "--modes", "asr", "--out", str(out)]  # fmt: skip
    env = eval_env(tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "voicerag_cli", *args], env=env, stderr=subprocess.DEVNULL)
    results = out / "results.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if results.exists() and len(results.read_bytes().splitlines()) >= 2:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = len(results.read_bytes().splitlines())
    assert 2 <= done_before < 6, "the run should have been killed midway"
    with results.open("a", encoding="utf-8") as handle:  # as if killed in the middle of a write
        handle.write('{"qid": "torn", "modes": {')

    resumed = voicerag([*args, "--json"], env)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["resumed_from"] == done_before
    rows = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["qid"] for r in rows) == [str(i) for i in range(6)]
    assert summary["modes"]["asr"]["questions"] == 6

    changed = voicerag([*args[:-2], "--modes", "oracle", "--out", str(out)], env)
    assert changed.returncode == 3
    assert "different run (differs in: modes)" in changed.stderr


def test_without_matplotlib_the_run_completes_and_names_the_extra(tmp_path: Path) -> None:
    blocker = tmp_path / "no_matplotlib" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('matplotlib is blocked for this test')\n")
    env = eval_env(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(blocker.parent), env.get("PYTHONPATH")]))
    out = tmp_path / "run"
    args = [
        "eval",
        "--dataset",
        "hotpot",
        "--data",
        str(write_hotpot(tmp_path)),
        "--modes",
        "oracle",
        "--out",
        str(out),
    ]
    result = voicerag(args, {**env, "COLUMNS": "120"})
    assert result.returncode == 0, result.stderr
    assert "pip install 'voicerag[eval]' (matplotlib)" in result.stderr
    assert not (out / "plot.png").exists() and (out / "summary.json").exists() and (out / "table.md").exists()
    assert "summary.json, table.md, results.jsonl" in result.stderr and "plot.png ·" not in result.stderr
