"""The SONAR backends through the CLI, on tiny random-weight checkpoints with asset cards:
`voicerag index` with the SONAR text encoder, `voicerag ask --rag e2e` with the SONAR speech
encoder on espeak-ng WAVs, space-id checks against MiniLM indexes, `voicerag models`, and the
one-line errors for missing assets and unsupported languages.

The main flows run the real `python -m voicerag_cli` in subprocesses; the error cases call the
same entry point in-process (each subprocess costs seconds of torch import on a shared CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tiny_sonar import (
    TinyAssets,
    build_tiny_assets,
    espeak_wav,
    text_card,
    text_vocab_size,
    write_cards,
)
from voicerag_cli.structure import READER_VERSION

DOCS = {
    "paris.txt": "The Eiffel Tower stands in Paris, the capital of France. It was finished in 1889.",
    "everest.txt": "Mount Everest, on the border of Nepal and China, is the highest mountain on Earth.",
    "nile.md": "# Nile\n\nThe Nile flows north through eleven countries into the Mediterranean Sea.",
}
CHINESE_DOC = "埃菲尔铁塔位于法国首都巴黎，于一八八九年建成。"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass(frozen=True)
class Setup:
    tiny: TinyAssets
    docs: Path
    root: Path
    question: Path
    question_cmn: Path

    def env(self, data: str = "data", **extra: str) -> dict[str, str]:
        values = {
            "VOICERAG_DATA_DIR": str(self.root / data),
            "VOICERAG_CONFIG": os.devnull,
            "VOICERAG_CACHE_DIR": str(self.root / "cache"),
            "VOICERAG_PROFILE": "sonar",  # the built-in profile: SONAR text and speech encoders
            "VOICERAG_SONAR__ASSET_DIR": str(self.tiny.asset_dir),
        }
        values.update(extra)
        return values


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    root = tmp_path_factory.mktemp("sonar-cli")
    docs = root / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    question = espeak_wav("Where is the Eiffel Tower?", root / "q.wav")
    question_cmn = espeak_wav("埃菲尔铁塔在哪里？", root / "q_cmn.wav", voice="cmn")
    return Setup(build_tiny_assets(root / "assets"), docs, root, question, question_cmn)


def subprocess_cli(args: list[str], env: dict[str, str]) -> Run:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VOICERAG_")}
    result = subprocess.run(
        [sys.executable, "-m", "voicerag_cli", *args], env={**clean, **env}, capture_output=True, text=True
    )
    return Run(result.returncode, result.stdout, result.stderr)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """The console entry point in this process, with fresh global state and only `env` set."""
    from voicerag_cli.cli.app import main
    from voicerag_cli.cli.context import STATE

    def run(args: list[str], env: dict[str, str]) -> Run:
        for name in [n for n in os.environ if n.startswith("VOICERAG_")]:
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        STATE.__init__()  # type: ignore[misc]  # settings and registry are per process
        capsys.readouterr()
        try:
            main(args)
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return Run(code, out, err)

    return run


def manifest(data_dir: Path, name: str = "default") -> dict[str, Any]:
    folder = data_dir / "indexes" / name
    generation = (folder / "CURRENT").read_text(encoding="utf-8").strip()
    return json.loads((folder / generation / "manifest.json").read_text(encoding="utf-8"))


def one_error_line(run: Run) -> str:
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("voicerag: error: "), run.stderr
    return lines[0]


@pytest.mark.slow
def test_index_and_e2e_ask_through_the_cli(setup: Setup, cli: Callable[..., Run]) -> None:
    # The commands: `voicerag index docs --profile sonar`, `ask q.wav --rag e2e --profile sonar`.
    flag_only = setup.env(VOICERAG_PROFILE="")
    indexed = subprocess_cli(["index", str(setup.docs), "--json", "--profile", "sonar"], flag_only)
    assert indexed.code == 0, indexed.stderr
    summary = indexed.json()
    assert (summary["space_id"], summary["dim"], summary["chunks"]) == ("sonar/text_sonar_basic_encoder", 32, 3)
    assert manifest(setup.root / "data")["extra"] == {
        "text_langs": ["eng_Latn"],
        "text_encoder": "text_sonar_basic_encoder",
        "language": "en",
        "reader": {"json_text_field": "text", "structure": READER_VERSION},
        "lexical": "pinyin-words/1",  # the chunks' terms (index.lexical)
    }

    asked = subprocess_cli(
        ["ask", str(setup.question), "--rag", "e2e", "--json", "-k", "3", "--profile", "sonar"], flag_only
    )
    assert asked.code == 0, asked.stderr
    result = asked.json()
    assert result["rag"] == "e2e" and result["transcript"] is None
    assert result["models"]["speech_embedder"] == "sonar"
    assert sorted(Path(s["source"]).name for s in result["sources"]) == sorted(DOCS)
    assert all(-1.0 <= s["score"] <= 1.0 for s in result["sources"])

    # Same question, same checkpoint (now loaded in-process): the same ranking and scores.
    again = cli(["ask", str(setup.question), "--rag", "e2e", "--json", "-k", "3"], setup.env())
    assert again.code == 0, again.stderr
    assert [(s["chunk_id"], s["score"]) for s in again.json()["sources"]] == [
        (s["chunk_id"], s["score"]) for s in result["sources"]
    ]

    # Chinese documents join the index with --lang cmn; the manifest keeps both languages.
    (setup.docs / "zh.txt").write_text(CHINESE_DOC, encoding="utf-8")
    try:
        added = cli(["index", str(setup.docs), "--lang", "cmn", "--json"], setup.env())
    finally:
        (setup.docs / "zh.txt").unlink()
    assert added.code == 0, added.stderr
    assert added.json()["added"] == 1 and added.json()["unchanged"] == 3
    assert manifest(setup.root / "data")["extra"]["text_langs"] == ["eng_Latn", "zho_Hans"]

    # A Mandarin question through the Mandarin speech encoder searches the same index (one space).
    mandarin = cli(["ask", str(setup.question_cmn), "--rag", "e2e", "--lang", "cmn", "--json"], setup.env())
    assert mandarin.code == 0, mandarin.stderr
    assert len(mandarin.json()["sources"]) == 4


def test_spaces_must_match(setup: Setup, cli: Callable[..., Run]) -> None:
    minilm = {"VOICERAG_MODELS__TEXT_EMBEDDER": "minilm"}
    built = cli(["index", str(setup.docs), "--json"], setup.env(data="minilm-data", **minilm))
    assert built.code == 0, built.stderr
    assert manifest(setup.root / "minilm-data")["extra"] == {
        "language": "en",
        "reader": {"json_text_field": "text", "structure": READER_VERSION},
        "lexical": "pinyin-words/1",
    }
    refused = cli(["ask", str(setup.question), "--rag", "e2e"], setup.env(data="minilm-data", **minilm))
    assert refused.code == 4
    line = one_error_line(refused)
    assert "sentence-transformers/all-MiniLM-L6-v2" in line and "sonar/text_sonar_basic_encoder (dim 32)" in line

    sonar_built = cli(["index", str(setup.docs), "--json"], setup.env(data="sonar-data"))
    assert sonar_built.code == 0, sonar_built.stderr
    typed = cli(["ask", "--text", "Where is the Eiffel Tower?"], setup.env(data="sonar-data", **minilm))
    assert typed.code == 4 and "sonar/text_sonar_basic_encoder" in one_error_line(typed)


def test_models_reports_sonar_assets(setup: Setup, cli: Callable[..., Run]) -> None:
    run = cli(["models", "--json"], setup.env())
    assert run.code == 0, run.stderr
    rows = {row["role"]: row for row in run.json()["models"]}
    text, speech = rows["text_embedder"], rows["speech_embedder"]
    assert text["backend"] == "sonar" and text["present"] and text["size_bytes"] > 0
    assert str(setup.tiny.text_checkpoint) in text["weights"] and str(setup.tiny.spm) in text["weights"]
    assert speech["present"] and str(setup.tiny.speech_checkpoints["eng"]) in speech["weights"]
    assert "other languages present: cmn" in speech["weights"]

    offline = cli(["models", "--json"], setup.env(VOICERAG_SONAR__ASSET_DIR=""))
    rows = {row["role"]: row for row in offline.json()["models"]}
    assert not rows["text_embedder"]["present"] and not rows["speech_embedder"]["present"]
    assert "https://dl.fbaipublicfiles.com/SONAR/spenc.eng.pt" in rows["speech_embedder"]["weights"]


def test_missing_assets_and_languages_fail_with_one_line(setup: Setup, cli: Callable[..., Run], tmp_path: Path) -> None:
    assert cli(["index", str(setup.docs)], setup.env(data="errors")).code == 0
    ask = ["ask", str(setup.question), "--rag", "e2e"]
    absent = cli(ask, setup.env(data="errors", VOICERAG_SONAR__ASSET_DIR=str(tmp_path / "nowhere")))
    assert absent.code == 5 and "SONAR asset dir not found" in one_error_line(absent)

    no_card = cli([*ask, "--lang", "fra"], setup.env(data="errors"))  # only the built-in card: no file here
    assert no_card.code == 5 and "download = true" in one_error_line(no_card)

    card = text_card("files/deleted.pt", str(setup.tiny.spm), text_vocab_size(setup.tiny.spm))
    write_cards(tmp_path / "cards" / "text.yaml", [card])
    no_file = cli(
        ["index", str(setup.docs)], setup.env(data="other", VOICERAG_SONAR__ASSET_DIR=str(tmp_path / "cards"))
    )
    assert no_file.code == 5 and "deleted.pt" in one_error_line(no_file)

    unknown = cli([*ask, "--lang", "xx"], setup.env(data="errors"))
    assert unknown.code == 6 and "language 'xx'" in one_error_line(unknown)
    bad_text = cli(["index", str(setup.docs), "--lang", "xx"], setup.env(data="other"))
    assert bad_text.code == 6 and "unsupported SONAR language 'xx'" in one_error_line(bad_text)
    unsupported = cli(["index", str(setup.docs), "--lang", "deu"], setup.env(data="other"))
    assert unsupported.code == 6 and "does not support language 'deu_Latn'" in one_error_line(unsupported)
