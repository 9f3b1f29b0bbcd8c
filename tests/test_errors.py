"""Every user-caused failure: the documented exit code, exactly one `voicerag: error:` line on
stderr, no traceback (unless --debug), and the stored index left byte for byte as it was."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voicerag_cli.errors import ExitCode
from vrtest import ERROR_PREFIX, DemoIndex, assert_error, run_cli, tree_hash


@pytest.fixture
def guarded(on_demo_index: DemoIndex) -> Iterator[DemoIndex]:
    """The demo index, checked to be unchanged (and without staging leftovers) after the test."""
    before = tree_hash(on_demo_index.data_dir)
    yield on_demo_index
    assert tree_hash(on_demo_index.data_dir) == before, "a failing command changed stored index data"
    assert not list(on_demo_index.path.glob(".staging-*"))


def write_wav(path: Path, samples: np.ndarray, rate: int = 16_000, subtype: str = "PCM_16") -> Path:
    sf.write(str(path), samples, rate, subtype=subtype)
    return path


def tone(seconds: float, rate: int = 16_000, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def bad_audio(kind: str, tmp_path: Path) -> tuple[Path, str]:
    """(path, a fragment the error message must contain) for each kind of unusable audio."""
    if kind == "missing":
        return tmp_path / "nope.wav", "audio file not found"
    if kind == "directory":
        (tmp_path / "folder.wav").mkdir()
        return tmp_path / "folder.wav", "got a directory"
    if kind == "text-named-wav":
        path = tmp_path / "notes.wav"
        path.write_text("this is plain text, not RIFF audio\n" * 20, encoding="utf-8")
        return path, "holds text, not audio"
    if kind == "zero-bytes":
        path = tmp_path / "empty.wav"
        path.write_bytes(b"")
        return path, "0 bytes"
    if kind == "silent":
        return write_wav(tmp_path / "silent.wav", np.zeros(32_000, dtype=np.float32)), "silent"
    if kind == "too-short":
        return write_wav(tmp_path / "short.wav", tone(0.05)), "too short"
    if kind == "nan":
        samples = tone(1.0)
        samples[100:200] = np.nan
        return write_wav(tmp_path / "nan.wav", samples, subtype="FLOAT"), "nan"
    if kind == "header-only":
        return write_wav(tmp_path / "header.wav", np.zeros(0, dtype=np.float32)), "no samples"
    raise AssertionError(kind)


AUDIO_KINDS = ["missing", "directory", "text-named-wav", "zero-bytes", "silent", "too-short", "nan", "header-only"]


@pytest.mark.parametrize("kind", AUDIO_KINDS)
def test_unusable_audio_file(guarded: DemoIndex, tmp_path: Path, kind: str) -> None:
    path, fragment = bad_audio(kind, tmp_path)
    message = assert_error(run_cli("ask", path, "--json"), ExitCode.INPUT, fragment)
    assert str(path) in message


@pytest.mark.parametrize("kind", ["zero-bytes", "text-named-wav", "silent"])
def test_unusable_audio_on_stdin(guarded: DemoIndex, tmp_path: Path, kind: str) -> None:
    path, fragment = bad_audio(kind, tmp_path)
    message = assert_error(run_cli("ask", "-", stdin=path.read_bytes()), ExitCode.INPUT)
    assert "stdin" in message
    assert fragment in message or "no audio on stdin" in message


def test_empty_question_text(guarded: DemoIndex) -> None:
    assert_error(run_cli("ask", "--text", "   "), ExitCode.INPUT, "question text is empty")


def test_unknown_index(guarded: DemoIndex, speech: Callable[..., Path]) -> None:
    assert_error(run_cli("ask", "--text", "hello there", "--index", "nope"), ExitCode.INDEX, "unknown index 'nope'")
    message = assert_error(run_cli("ask", speech("Hello there."), "-i", "nope"), ExitCode.INDEX, "unknown index")
    assert "default" in message  # the known indexes are listed
    flagged = run_cli("ask", "--text", "hi", "--index", "../etc")  # a flag's bad value: a usage error
    assert flagged.code == ExitCode.USAGE and "invalid index name" in flagged.stderr, flagged
    assert_error(
        run_cli("ask", "--text", "hi", env={"VOICERAG_INDEX__NAME": "../etc"}), ExitCode.CONFIG, "invalid index name"
    )


def test_no_documents_in_folder(guarded: DemoIndex, tmp_path: Path) -> None:
    folder = tmp_path / "nothing"
    folder.mkdir()
    (folder / ".hidden.md").write_text("hidden files are skipped", encoding="utf-8")
    (folder / "picture.png").write_bytes(b"\x89PNG\r\n")
    assert_error(run_cli("index", folder), ExitCode.INPUT, "no documents found", str(folder))
    assert_error(run_cli("index", tmp_path / "absent"), ExitCode.INPUT, "path not found")


def test_unsupported_file_type(guarded: DemoIndex, tmp_path: Path) -> None:
    sheet = tmp_path / "table.xlsx"
    sheet.write_bytes(b"PK\x03\x04")
    assert_error(run_cli("index", sheet), ExitCode.INPUT, "unsupported file type .xlsx", str(sheet))


def test_broken_document_is_an_input_error(guarded: DemoIndex, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "good.txt").write_text("A perfectly fine document.", encoding="utf-8")
    (folder / "bad.jsonl").write_text('{"text": "fine"}\n{broken\n', encoding="utf-8")
    assert_error(run_cli("index", folder), ExitCode.INPUT, "bad.jsonl:2", "invalid json")


def test_missing_text_embedder_weights(guarded: DemoIndex, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    env = {"VOICERAG_TEXT_EMBEDDER__MODEL_PATH": str(missing)}
    assert_error(run_cli("ask", "--text", "who decoded the bee dance?", env=env), ExitCode.MODEL, str(missing))
    # indexing something new needs the embedder: refused before anything is written
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "new.txt").write_text("A new document to embed.", encoding="utf-8")
    assert_error(run_cli("index", folder, env=env), ExitCode.MODEL, "text embedder weights not found")


def test_missing_asr_weights(guarded: DemoIndex, tmp_path: Path, speech: Callable[..., Path]) -> None:
    missing = tmp_path / "no-whisper"
    env = {"VOICERAG_ASR__MODEL_PATH": str(missing)}
    assert_error(
        run_cli("ask", speech("Hello there."), env=env), ExitCode.MODEL, "whisper weights not found", str(missing)
    )


def test_unwritable_out_dir(guarded: DemoIndex, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    assert_error(run_cli("ask", "--text", "hi", "--out", blocker / "sub"), ExitCode.INPUT, "cannot write to --out")


def test_debug_shows_the_traceback(guarded: DemoIndex, tmp_path: Path) -> None:
    for result in (
        run_cli("--debug", "ask", tmp_path / "nope.wav"),
        run_cli("ask", tmp_path / "nope.wav", env={"VOICERAG_DEBUG": "1"}),
    ):
        assert result.code == ExitCode.INPUT, result
        assert "Traceback (most recent call last)" in result.stderr
        assert "InputError" in result.stderr
        assert result.stderr.splitlines()[-1].startswith(ERROR_PREFIX + "audio file not found")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["ask"], "give exactly one of AUDIO"),
        (["ask", "q.wav", "--text", "hi"], "give exactly one of AUDIO"),
        (["ask", "--bogus"], "No such option"),
        (["ask", "-k", "many", "--text", "hi"], "Invalid value for '-k'"),
        (["nosuch"], "No such command"),
        (["index"], "give at least one file or folder"),
    ],
)
def test_usage_errors_exit_2(guarded: DemoIndex, args: list[str], fragment: str) -> None:
    result = run_cli(*args)
    assert result.code == ExitCode.USAGE, result
    assert fragment in result.stderr, result
    assert "Usage:" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_help_and_version(guarded: DemoIndex) -> None:
    version = run_cli("--version")
    assert version.code == 0 and version.stdout.startswith("voicerag "), version
    for args in (["--help"], ["ask", "--help"], ["index", "--help"], ["config", "--help"]):
        result = run_cli(*args)
        assert result.code == 0 and "Usage:" in result.stdout and result.stderr == "", result
    bare = run_cli()  # no command: the help, as a usage error
    assert bare.code == ExitCode.USAGE and "Usage:" in bare.stderr + bare.stdout, bare


def test_index_of_another_embedding_space(guarded: DemoIndex) -> None:
    env = {"VOICERAG_TEXT_EMBEDDER__SPACE_ID": "my-org/other-space"}
    assert_error(
        run_cli("ask", "--text", "who decoded the bee dance?", env=env),
        ExitCode.INDEX,
        "sentence-transformers/all-MiniLM-L6-v2",
        "my-org/other-space",
    )
