"""Many questions in one `voicerag ask` process (several audio files, repeated --text, --text -
reading lines from stdin): one JSON object per line, in order; bad input anywhere fails before
any model loads; a status line on stderr only when stderr is a terminal."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from test_ask import BEE_QUESTION, check_schema
from voicerag_cli.errors import ExitCode
from vrtest import DemoIndex, assert_error, cli_command, run_cli

PLANET_QUESTION = "What is the biggest planet in the solar system?"


def json_lines(stdout: str) -> list[dict]:
    lines = stdout.splitlines()
    assert all(line.startswith("{") for line in lines), stdout
    return [json.loads(line) for line in lines]


@pytest.mark.slow
def test_several_audio_files_one_json_line_each(
    on_demo_index: DemoIndex, speech: Callable[..., Path], tmp_path: Path
) -> None:
    bee, planet = speech(BEE_QUESTION), speech(PLANET_QUESTION)
    out = tmp_path / "answers"
    result = run_cli("ask", bee, planet, "--json", "--out", out)
    assert result.code == 0, result
    first, second = json_lines(result.stdout)
    for payload in (first, second):
        check_schema(payload, on_demo_index, "asr")
    assert [first["input"], second["input"]] == [str(bee), str(planet)]
    assert "nobel" in first["transcript"].lower() and "planet" in second["transcript"].lower()
    assert Path(first["sources"][0]["source"]).name == "honeybees.md"
    assert Path(second["sources"][0]["source"]).name == "solar_system.txt"
    # --out: one folder per question, in order
    assert sorted(p.name for p in out.iterdir()) == ["001", "002"]
    assert json.loads((out / "002" / "result.json").read_text(encoding="utf-8")) == second
    assert second["answer_audio"] == str(out / "002" / "answer.wav")


def test_text_lines_on_stdin_and_repeated_text(on_demo_index: DemoIndex) -> None:
    stdin = "Where does the Rhine rise?\n\n  When was the pneumatic tyre patented?  \n"
    result = run_cli("ask", "--text", "-", "--json", "-k", "2", stdin=stdin)
    assert result.code == 0, result
    payloads = json_lines(result.stdout)
    assert [p["question"] for p in payloads] == ["Where does the Rhine rise?", "When was the pneumatic tyre patented?"]
    for payload in payloads:
        check_schema(payload, on_demo_index, "text")
    assert [Path(p["sources"][0]["source"]).name for p in payloads] == ["rhine.html", "bicycles.md"]

    repeated = run_cli("ask", "-t", "Where does the Rhine rise?", "-t", PLANET_QUESTION)
    assert repeated.code == 0, repeated
    assert repeated.stdout.count("question: ") == 2
    assert "Alps" in repeated.stdout and "Jupiter" in repeated.stdout
    assert repeated.stderr.count("search ") == 2  # a timings line per question


def test_one_question_is_still_one_json_object(on_demo_index: DemoIndex) -> None:
    result = run_cli("ask", "--text", "Where does the Rhine rise?", "--json")
    assert result.code == 0, result
    assert result.stdout.count("\n") == 1
    check_schema(result.json(), on_demo_index, "text")


@pytest.mark.slow
def test_bad_input_in_a_batch_fails_before_answering(
    on_demo_index: DemoIndex, speech: Callable[..., Path], tmp_path: Path
) -> None:
    silent = tmp_path / "silent.wav"
    import numpy as np
    import soundfile as sf

    sf.write(str(silent), np.zeros(16000, dtype=np.float32), 16000)
    result = run_cli("ask", speech(BEE_QUESTION), silent, "--json")
    assert_error(result, ExitCode.INPUT, "silent.wav")  # nothing answered, nothing on stdout
    assert_error(run_cli("ask", "--text", "-", stdin="\n  \n"), ExitCode.INPUT, "no question on stdin")
    assert_error(run_cli("ask", "-", "-", stdin=b""), ExitCode.INPUT, "only once")
    both = run_cli("ask", speech(BEE_QUESTION), "--text", "hello")
    assert both.code == ExitCode.USAGE and "not both" in both.stderr


SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"  # rich's "dots" frames: the status line's mark


def run_on_a_terminal(*args: object) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on one pseudo-terminal; returns (code, what it showed)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        cli_command(*args), stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=dict(os.environ)
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    proc.wait(timeout=120)
    return proc.returncode, b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_status_line_only_on_a_terminal(on_demo_index: DemoIndex, speech: Callable[..., Path]) -> None:
    question = speech(BEE_QUESTION)
    code, shown = run_on_a_terminal("ask", question)
    assert code == 0, shown
    # it appears after half a second, by when the recognizer may be loaded already
    assert "loading speech recognition (whisper-tiny-en)…" in shown or "transcribing…" in shown, shown
    last_frame = max(shown.rfind(frame) for frame in SPINNER)
    assert shown.rindex("\x1b[2K") > last_frame  # the line is erased before the answer

    code, shown = run_on_a_terminal("ask", question, "--json")
    assert code == 0, shown
    assert not any(frame in shown for frame in SPINNER)  # --json: no status line, even on a terminal
    check_schema(json.loads(shown), on_demo_index, "asr")

    piped = run_cli("ask", question, "--json")
    assert piped.code == 0, piped
    assert piped.stderr == ""  # --json on a pipe: nothing on stderr at all
    assert json.loads(piped.stdout)["transcript"] == json.loads(shown)["transcript"]
