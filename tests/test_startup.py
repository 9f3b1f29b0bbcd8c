"""Start-up stays light: importing the CLI and printing help load no model stack (torch,
transformers, ...) and not even numpy. Checked through sys.modules in a fresh interpreter;
how long start-up takes is measured by benchmarks/startup.py, not asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

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
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "100"},
    )
    probe = json.loads(proc.stderr.rsplit("PROBE ", 1)[-1])
    assert probe["code"] == 0, proc.stderr
    assert probe["heavy"] == [], f"{argv} imported {probe['heavy']}"
    if argv and argv[-1] == "--help":
        assert "Usage:" in proc.stdout
