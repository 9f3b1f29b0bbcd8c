"""Adding a backend is one module plus one row in the backend table (docs/adding-a-backend.md):
done here exactly that way. The module is tests/fixtures/toy_backend/toybackends/hash_embedder.py,
a real text embedder (hashed word counts) in a package of its own on PYTHONPATH; the row is added
to backends.py of a copy of this package. Through the CLI of that copy the toy backend is listed,
configured through its own section, indexes documents and answers a question."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import voicerag_cli
from voicerag_cli.errors import ExitCode
from vrtest import EXAMPLES, REPO, assert_error, run_cli

TOY_PACKAGE = REPO / "tests" / "fixtures" / "toy_backend"
# The one row, as a contributor would add it to BACKENDS in backends.py.
ROW = """    BackendSpec(
        "text_embedder",
        "toy-hash",
        "toybackends.hash_embedder:create",
        "toybackends.hash_embedder:weights",
        "hashed word counts (a toy, docs/adding-a-backend.md)",
        section="toyhash",
        config="toybackends.hash_embedder:ToyHashConfig",
    ),
"""


@pytest.fixture(scope="module")
def with_row(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment that runs a copy of voicerag whose table has the toy row."""
    src = tmp_path_factory.mktemp("with-row") / "src"
    package = src / "voicerag_cli"
    shutil.copytree(Path(voicerag_cli.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    table = package / "backends.py"
    text = table.read_text(encoding="utf-8")
    start = text.index("BACKENDS: tuple[BackendSpec, ...] = (")
    end = text.index("\n)\n", start) + 1  # the table's closing parenthesis
    table.write_text(text[:end] + ROW + text[end:], encoding="utf-8")
    return {"PYTHONPATH": os.pathsep.join([str(src), str(TOY_PACKAGE)])}


def test_the_copy_runs_and_lists_the_toy_backend(with_row: dict[str, str]) -> None:
    listed = run_cli("models", "--json", env=with_row)
    assert listed.code == 0, listed
    [row] = [r for r in listed.json()["models"] if r["role"] == "text_embedder"]
    assert row["available_backends"][-1] == "toy-hash"
    assert row["backend"] == "minilm"  # a new row changes no default
    shown = run_cli("config", "show", "--json", env=with_row | {"VOICERAG_TOYHASH__DIM": "64"})
    assert shown.code == 0, shown
    assert shown.json()["settings"]["toyhash"] == {"dim": 64}


def test_the_toy_backend_indexes_and_answers(with_row: dict[str, str]) -> None:
    env = with_row | {"VOICERAG_MODELS__TEXT_EMBEDDER": "toy-hash", "VOICERAG_TOYHASH__DIM": "512"}
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


def test_the_toy_section_checks_itself(with_row: dict[str, str]) -> None:
    bad = run_cli("config", "show", env=with_row | {"VOICERAG_TOYHASH__DIM": "3"})
    assert_error(bad, ExitCode.CONFIG, "'toyhash.dim'")


def test_without_the_row_there_is_no_such_backend() -> None:
    here = Path(voicerag_cli.__file__).parents[1]  # this voicerag, unchanged, with the toy module on the path
    env = {"PYTHONPATH": os.pathsep.join([str(here), str(TOY_PACKAGE)]), "VOICERAG_MODELS__TEXT_EMBEDDER": "toy-hash"}
    assert_error(run_cli("config", "show", env=env), ExitCode.CONFIG, "unknown backend 'toy-hash'")
