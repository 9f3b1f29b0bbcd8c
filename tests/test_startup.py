"""Start-up stays light: importing the CLI and printing help load no model stack (torch,
transformers, ...) and not even numpy, and answering a question (asr, e2e or typed) imports
neither torch nor transformers. Checked through sys.modules in a fresh interpreter; how long
start-up takes is measured by benchmarks/startup.py, not asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from vrtest import DemoIndex

HEAVY = (
    "torch",
    "transformers",
    "sentence_transformers",
    "huggingface_hub",
    "tokenizers",
    "safetensors",
    "faster_whisper",
    "ctranslate2",
    "onnxruntime",
    "hnswlib",
    "numpy",
    "scipy",
    "soundfile",
    "soxr",
    "sounddevice",
    "pypdf",
)

PROBE = """
import json, sys
argv = json.loads(sys.argv[1])
code = 0
import voicerag_cli.cli.app as app
if argv is not None:
    try:
        app.main(argv)
    except SystemExit as exc:
        code = exc.code or 0
heavy = sorted(name for name in json.loads(sys.argv[2]) if name in sys.modules)
sys.stderr.write("\\nPROBE " + json.dumps({"code": code, "heavy": heavy}) + "\\n")
"""


@pytest.mark.parametrize(
    "argv",
    [
        None,  # import only
        ["--help"],
        ["--version"],
        ["ask", "--help"],
        ["index", "--help"],
        ["chat", "--help"],
        ["eval", "--help"],
        ["models", "--help"],
        ["config", "--help"],
        ["config", "path"],
    ],
)
def test_no_heavy_imports(argv: list[str] | None) -> None:
    proc, heavy = probe(argv, HEAVY)
    assert heavy == [], f"{argv} imported {heavy}"
    if argv and argv[-1] == "--help":
        assert "Usage:" in proc.stdout


def probe(argv: list[str] | None, watched: tuple[str, ...]) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run `voicerag ARGV` in a fresh interpreter; which of `watched` it imported."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv), json.dumps(watched)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "100"},
    )
    result = json.loads(proc.stderr.rsplit("PROBE ", 1)[-1])
    assert result["code"] == 0, proc.stderr
    return proc, result["heavy"]


# onnxruntime is not here: it runs the reader (int8) on every answer with words, as the issue
# that brought the reader asked (numpy or onnxruntime at query time, no torch).
TORCH_STACK = ("torch", "transformers", "sentence_transformers", "sklearn", "scipy")


@pytest.mark.parametrize("mode", ["asr", "e2e", "text"])
def test_answering_imports_no_torch(mode: str, on_demo_index: DemoIndex, speech: Callable[..., Path]) -> None:
    """The query path runs on numpy (text embedder, speech head) and CTranslate2 (Whisper)."""
    question = "Who received a Nobel prize for decoding the honey bee dance?"
    argv = ["ask", "--text", question] if mode == "text" else ["ask", str(speech(question)), "--rag", mode]
    proc, heavy = probe([*argv, "--json"], (*TORCH_STACK, "faster_whisper", "ctranslate2"))
    top = json.loads(proc.stdout)["sources"][0]["source"]
    if mode != "e2e":  # e2e ranks this page lower on the demo index (test_ask.py says why)
        assert top.endswith("honeybees.md")
    expected_ct2 = [] if mode == "text" else ["ctranslate2", "faster_whisper"]
    assert heavy == expected_ct2, f"{mode}: imported {heavy}"
