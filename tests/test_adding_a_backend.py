"""Adding a backend from another package is one module plus one entry point in group
`voicerag.backends` (docs/adding-a-backend.md): done here exactly that way. The module is
tests/fixtures/toy_backend/toybackends/hash_embedder.py, a real text embedder (hashed word
counts) whose `BACKEND` is its table row; a tiny installed distribution (a `*.dist-info` folder
with `entry_points.txt`, beside the package) declares it. Through the unchanged CLI the toy
backend is listed, configured through its own section, indexes documents and answers a
question; commands that name only built-in backends read no entry point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from voicerag_cli.errors import ExitCode
from vrtest import EXAMPLES, REPO, assert_error, run_cli

TOY_PACKAGE = REPO / "tests" / "fixtures" / "toy_backend" / "toybackends"
HERE = REPO / "src"  # this voicerag, unchanged
ENTRY_POINTS = "[voicerag.backends]\ntoy-hash = toybackends.hash_embedder:BACKEND\n"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a voicerag beside which the toy distribution is installed."""
    site = tmp_path_factory.mktemp("site-packages")
    shutil.copytree(TOY_PACKAGE, site / "toybackends", ignore=shutil.ignore_patterns("__pycache__"))
    dist_info = site / "toybackends-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: toybackends\nVersion: 0.1\n", encoding="utf-8")
    (dist_info / "entry_points.txt").write_text(ENTRY_POINTS, encoding="utf-8")
    return {"PYTHONPATH": os.pathsep.join([str(HERE), str(site)])}


def test_the_toy_backend_is_listed_once_configured(installed: dict[str, str]) -> None:
    listed = run_cli("models", "--json", env=installed | {"VOICERAG_MODELS__TEXT_EMBEDDER": "toy-hash"})
    assert listed.code == 0, listed
    [row] = [r for r in listed.json()["models"] if r["role"] == "text_embedder"]
    assert row["available_backends"][-1] == "toy-hash"
    assert row["backend"] == "toy-hash"
    shown = run_cli("config", "show", "--json", env=installed | {"VOICERAG_TOYHASH__DIM": "64"})
    assert shown.code == 0, shown
    assert shown.json()["settings"]["toyhash"] == {"dim": 64}
    assert shown.json()["settings"]["models"]["text_embedder"] == "minilm"  # an added row changes no default


def test_the_toy_backend_indexes_and_answers(installed: dict[str, str]) -> None:
    env = installed | {"VOICERAG_MODELS__TEXT_EMBEDDER": "toy-hash", "VOICERAG_TOYHASH__DIM": "512"}
    built = run_cli("index", EXAMPLES, "--json", env=env)
    assert built.code == 0, built
    listed = run_cli("index", "--list", "--json", env=env)
    [index] = listed.json()["indexes"]
    assert (index["space_id"], index["dim"]) == ("toy-hash-512", 512)

    asked = run_cli("ask", "--text", "Which planet has the tallest volcano?", "--json", env=env)
    assert asked.code == 0, asked
    result = asked.json()
    assert result["models"]["text_embedder"] == "toy-hash"
    assert result["sources"][0]["source"].endswith("solar_system.txt")
    assert "Olympus Mons" in result["answer"]


def test_the_toy_section_checks_itself(installed: dict[str, str]) -> None:
    bad = run_cli("config", "show", env=installed | {"VOICERAG_TOYHASH__DIM": "3"})
    assert_error(bad, ExitCode.CONFIG, "'toyhash.dim'")


def test_without_the_entry_point_there_is_no_such_backend() -> None:
    # the toy module on the path, but no distribution declaring it
    env = {
        "PYTHONPATH": os.pathsep.join([str(HERE), str(TOY_PACKAGE.parent)]),
        "VOICERAG_MODELS__TEXT_EMBEDDER": "toy-hash",
    }
    assert_error(run_cli("config", "show", env=env), ExitCode.CONFIG, "unknown backend 'toy-hash'")


PROBE = """
import json, sys
import voicerag_cli.backends as backends
import voicerag_cli.cli.app as app
try:
    app.main(json.loads(sys.argv[1]))
except SystemExit:
    pass
sys.stderr.write("\\nREAD " + json.dumps(backends.entry_points_read()) + "\\n")
"""


@pytest.mark.parametrize(
    "argv", [["--help"], ["models", "--json"], ["config", "show"], ["ask", "--help"], ["index", "--help"]]
)
def test_built_in_names_read_no_entry_point(installed: dict[str, str], argv: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv)],
        capture_output=True,
        text=True,
        env=os.environ | installed,
        timeout=120,
    )
    assert proc.stderr.rstrip().splitlines()[-1] == "READ false", proc.stderr
    configured = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(["config", "show"])],
        capture_output=True,
        text=True,
        env=os.environ | installed | {"VOICERAG_MODELS__TEXT_EMBEDDER": "toy-hash"},
        timeout=120,
    )
    assert configured.stderr.rstrip().splitlines()[-1] == "READ true", configured.stderr
