"""Hostile and broken input (issue 15, "Input robustness"): every case ends in one clear line
with a documented exit code, or is skipped with a note while the rest is indexed; stored index
data is never changed by a failing command. Real CLI processes, real hnswlib/SQLite files."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from test_ask import BEE_QUESTION
from voicerag_cli.audio.io import resample
from voicerag_cli.errors import ExitCode
from vrtest import DemoIndex, Isolated, assert_error, pdf_file, run_cli, tree_hash


@pytest.fixture
def guarded(on_demo_index: DemoIndex) -> Iterator[DemoIndex]:
    """The demo index, checked to be unchanged after the test."""
    before = tree_hash(on_demo_index.data_dir)
    yield on_demo_index
    assert tree_hash(on_demo_index.data_dir) == before, "a failing command changed stored index data"


def live_rows(data_dir: Path, name: str, sql: str) -> list[tuple]:
    index = data_dir / "indexes" / name
    generation = (index / "CURRENT").read_text(encoding="utf-8").strip()
    db = sqlite3.connect(f"file:{index / generation / 'chunks.sqlite'}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def folder_with(tmp_path: Path, files: dict[str, str | bytes], name: str = "docs") -> Path:
    folder = tmp_path / name
    for relative, content in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return folder


def flate_bomb_pdf(expanded_bytes: int) -> bytes:
    """A one-page PDF whose content stream is ~100 kB compressed and `expanded_bytes` inflated."""
    stream = zlib.compress(b"BT /F1 12 Tf 72 720 Td (" + b" " * expanded_bytes + b") Tj ET", 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    return pdf_file(objects)


# --- documents that defeat parsers ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("deep.json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("deep.jsonl", '{"text": "fine"}\n' + "[" * 100_000 + "]" * 100_000 + "\n", "deep.jsonl:2: json nested"),
        ("bomb.pdf", flate_bomb_pdf(100_000_000), "cannot read pdf"),
    ],
    ids=["nested-json", "nested-jsonl", "pdf-bomb"],
)
def test_parser_defeating_documents_are_input_errors(
    guarded: DemoIndex, tmp_path: Path, name: str, content: str | bytes, fragment: str
) -> None:
    folder = folder_with(tmp_path, {"good.txt": "A perfectly fine document.", name: content})
    assert_error(run_cli("index", folder), ExitCode.INPUT, fragment, name)


def test_huge_integers_and_a_byte_order_mark_are_read(isolated_env: Isolated, tmp_path: Path) -> None:
    folder = folder_with(
        tmp_path,
        {
            "bigint.json": '{"text": "Numbers of 5000 digits are no text.", "n": ' + "9" * 5000 + "}",
            "bom.json": "\ufeff" + json.dumps({"text": "A byte-order mark starts this file."}),
            "bom.txt": "\ufeffWindows editors write a byte-order mark.",
        },
    )
    result = run_cli("index", folder, "--json")
    assert result.code == 0 and result.stderr == "", result
    assert result.json()["chunks"] == 3
    texts = sorted(row[0] for row in live_rows(isolated_env.data_dir, "default", "SELECT text FROM chunks"))
    assert texts == [
        "A byte-order mark starts this file.",
        "Numbers of 5000 digits are no text.",
        "Windows editors write a byte-order mark.",
    ]


@pytest.mark.slow
def test_run_on_single_line_is_chunked(isolated_env: Isolated, tmp_path: Path) -> None:
    words = [f"token{i % 997}" for i in range(12_000)]  # ~110 kB on one line, no full stop
    folder = folder_with(tmp_path, {"line.txt": " ".join(words)})
    result = run_cli("index", folder, "--json")
    assert result.code == 0, result
    lengths = [row[0] for row in live_rows(isolated_env.data_dir, "default", "SELECT length(text) FROM chunks")]
    assert len(lengths) >= 12_000 // 120 and max(lengths) <= 120 * 20 * 4, lengths[:5]


# --- files that cannot be read or named ------------------------------------------------------


def test_unreadable_file_is_skipped_with_a_note(isolated_env: Isolated, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, {"good.txt": "The lighthouse keeper lit the lamp at dusk."})
    bad = folder / "locked.txt"
    if os.geteuid() != 0:
        bad.write_text("secret", encoding="utf-8")
        bad.chmod(0)
        args: list[object] = []
    else:  # root reads any file: a file whose read fails with EIO stands in (the process's own memory)
        bad.symlink_to("/proc/self/mem")
        args = ["--follow-symlinks"]
    result = run_cli("index", folder, *args, "--json")
    assert result.code == 0, result
    summary = result.json()
    assert summary["files"] == 1 and summary["chunks"] == 1
    assert len(summary["skipped"]) == 1 and "cannot read" in summary["skipped"][0]
    plain = run_cli("index", folder, *args)  # nothing new: the note is shown again, the index unchanged
    assert plain.code == 0 and "note: skipped: cannot read" in plain.stderr, plain


def test_file_name_that_is_not_utf8_is_skipped(isolated_env: Isolated, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, {"good.txt": "The ferry leaves the harbour at noon."})
    with open(os.fsencode(folder) + b"/caf\xe9.txt", "wb") as handle:
        handle.write(b"A latin-1 file name.")
    result = run_cli("index", folder, "--json")
    assert result.code == 0, result
    summary = result.json()
    assert summary["files"] == 1 and summary["skipped"] == [
        f"skipped {folder}/caf\\xe9.txt: its name is not valid UTF-8"
    ]
    only = run_cli("index", os.fsdecode(os.fsencode(folder) + b"/caf\xe9.txt"))  # named on its own: nothing left
    assert only.code == ExitCode.INPUT and "voicerag: error:" in only.stderr, only


# --- where indexes live, how they are addressed ---------------------------------------------


@pytest.mark.parametrize("kind", ["a-file", "proc"])
def test_unusable_data_dir(guarded: DemoIndex, tmp_path: Path, kind: str) -> None:
    if kind == "a-file":
        target = tmp_path / "data-file"
        target.write_text("not a folder", encoding="utf-8")
        fragment = "is not a folder"
    else:
        target = Path("/proc")  # exists, cannot hold a folder: like a read-only mount
        fragment = "cannot write indexes"
    docs = folder_with(tmp_path, {"a.txt": "Some text to index."})
    assert_error(run_cli("--data-dir", target, "index", docs), ExitCode.CONFIG, fragment, "--data-dir")
    if kind == "a-file":
        assert_error(run_cli("--data-dir", target, "ask", "--text", "hi"), ExitCode.CONFIG, fragment)


def test_malformed_store_address_and_absurd_ef(guarded: DemoIndex) -> None:
    message = assert_error(
        run_cli("ask", "--text", "hi", env={"VOICERAG_INDEX__STORE": "milvus://[::1:9"}),
        ExitCode.CONFIG,
        "index.store",
        "malformed address",
    )
    assert "milvus://[::1:9" in message
    flagged = run_cli("ask", "--text", "hi", "--store", "milvus://[::1:9")
    assert flagged.code == ExitCode.USAGE and "Invalid value for '--store'" in flagged.stderr, flagged
    for value in ("999999999999", "-5"):
        assert_error(
            run_cli("ask", "--text", "hi", env={"VOICERAG_INDEX__HNSW_EF_SEARCH": value}),
            ExitCode.CONFIG,
            "index.hnsw_ef_search",
        )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("VOICERAG_OPENAI__TIMEOUT_S", "0"),
        ("VOICERAG_OPENAI__TIMEOUT_S", "nan"),
        ("VOICERAG_OPENAI__TEMPERATURE", "-1"),
        ("VOICERAG_OPENAI__TEMPERATURE", "50"),
        ("VOICERAG_ASK__MAX_AUDIO_S", "0"),
    ],
)
def test_out_of_range_settings(variable: str, value: str) -> None:
    key = variable.removeprefix("VOICERAG_").lower().replace("__", ".")
    assert_error(run_cli("config", "show", env={variable: value}), ExitCode.CONFIG, key)


def test_leftovers_of_a_killed_writer_are_cleaned_at_the_next_open(
    demo_index: DemoIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    shutil.copytree(demo_index.data_dir, data)
    monkeypatch.setenv("VOICERAG_DATA_DIR", str(data))
    index = data / "indexes" / demo_index.name
    staging = index / ".staging-4242-deadbeef"
    staging.mkdir()
    (staging / "chunks.sqlite").write_bytes(b"half written")
    pointer_tmp = index / ".CURRENT.0badc0de.tmp"
    pointer_tmp.write_text("gen-000099", encoding="utf-8")
    live = {k: v for k, v in tree_hash(index).items() if k.startswith("gen-") or k == "CURRENT"}

    result = run_cli("ask", "--text", "who decoded the honey bee dance?", "--json")
    assert result.code == 0, result
    assert not staging.exists() and not pointer_tmp.exists()
    assert {k: v for k, v in tree_hash(index).items() if k.startswith("gen-") or k == "CURRENT"} == live


# --- audio -------------------------------------------------------------------------------------


def test_question_audio_over_the_limit_is_refused_before_any_model(guarded: DemoIndex, tmp_path: Path) -> None:
    t = np.arange(16_000 * 61) / 16_000
    long_clip = tmp_path / "long.wav"
    sf.write(str(long_clip), (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16_000)
    assert_error(run_cli("ask", long_clip), ExitCode.INPUT, "61.0 s long", "at most 60 s", "ask.max_audio_s")
    short = tmp_path / "three.wav"
    sf.write(str(short), (0.3 * np.sin(2 * np.pi * 220 * t[: 16_000 * 3])).astype(np.float32), 16_000)
    assert_error(run_cli("ask", short, env={"VOICERAG_ASK__MAX_AUDIO_S": "2"}), ExitCode.INPUT, "at most 2 s")


def test_wav_header_claiming_one_hertz(guarded: DemoIndex, tmp_path: Path) -> None:
    clip = tmp_path / "ok.wav"
    sf.write(str(clip), (0.3 * np.sin(np.arange(16_000) / 3)).astype(np.float32), 16_000, subtype="PCM_16")
    data = bytearray(clip.read_bytes())
    data[24:28] = struct.pack("<I", 1)  # sample rate
    data[28:32] = struct.pack("<I", 2)  # byte rate
    damaged = tmp_path / "one-hertz.wav"
    damaged.write_bytes(bytes(data))
    assert_error(run_cli("ask", damaged), ExitCode.INPUT, "sample rate of 1 Hz")


def test_text_on_stdin_is_not_audio(guarded: DemoIndex) -> None:
    assert_error(run_cli("ask", "-", stdin="hello\n"), ExitCode.INPUT, "<stdin> holds text, not audio", "--text")


def test_float_audio_past_full_scale_is_scaled_not_overflowed(
    guarded: DemoIndex, speech: Callable[..., Path], tmp_path: Path
) -> None:
    """A float WAV may exceed [-1, 1]: at 8x gain the question is still answered, and a damaged
    file's 3e38 samples no longer overflow the recognizer's float32 features into NaN (numpy
    RuntimeWarnings with VOICERAG_DEBUG on, which keeps them visible)."""
    samples, rate = sf.read(str(speech(BEE_QUESTION)), dtype="float32")
    samples, rate = resample(samples, rate, 16_000), 16_000  # no resampler between file and features
    loud = tmp_path / "loud.wav"
    sf.write(str(loud), samples * 8.0, rate, subtype="FLOAT")
    spiked = tmp_path / "spiked.wav"
    samples[1000:1010] = 3e38
    sf.write(str(spiked), samples, rate, subtype="FLOAT")
    answered = run_cli("ask", loud, "--json", env={"VOICERAG_DEBUG": "1"})
    assert answered.code == 0, answered
    assert Path(answered.json()["sources"][0]["source"]).name == "honeybees.md"
    assert "RuntimeWarning" not in answered.stderr
    for mode in ("asr", "e2e"):
        debugged = run_cli("ask", spiked, "--rag", mode, "--json", env={"VOICERAG_DEBUG": "1"})
        assert "RuntimeWarning" not in debugged.stderr, debugged
        result = run_cli("ask", spiked, "--rag", mode, "--json")
        if result.code != 0:  # the speech is 1e-39 of the spike now: "no speech recognized" is fair
            assert_error(result, ExitCode.INPUT, "spiked.wav")


@pytest.mark.parametrize("argv", [[], ["--debug"]])
def test_library_warnings_reach_stderr_only_with_debug(argv: list[str]) -> None:
    """The CLI's filter on a real numpy RuntimeWarning (float32 overflow): silent by default,
    shown with --debug. The filter is by category and message, not wholesale: a warning of
    another kind (ours, or one a library starts to raise) still shows."""
    code = (
        "import warnings\n"
        "from voicerag_cli.cli.app import _quiet_libraries\n"
        f"_quiet_libraries({argv!r})\n"
        "import numpy as np\n"
        "np.float32(3e38) * np.float32(3e38)\n"
        "warnings.warn('an unexpected warning', UserWarning)\n"
        "warnings.warn('overflow encountered in a message that is no RuntimeWarning', UserWarning)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("VOICERAG_DEBUG", "PYTHONWARNINGS")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("RuntimeWarning: overflow") == (1 if argv else 0), result.stderr
    assert result.stderr.count("UserWarning:") == 2, result.stderr


def test_damaged_mp3_gives_one_line_and_no_decoder_noise(guarded: DemoIndex, tmp_path: Path) -> None:
    clip = tmp_path / "q.mp3"
    sf.write(str(clip), (0.3 * np.sin(np.arange(32_000) / 3)).astype(np.float32), 16_000, format="MP3")
    data = bytearray(clip.read_bytes())
    for position in range(400, len(data), 97):  # scatter garbage through the frames
        data[position] = 0xFF
    clip.write_bytes(bytes(data[: len(data) // 2]))
    result = run_cli("ask", clip, "--json")
    if result.code == 0:  # mpg123 may recover the audio: then the only stderr lines are ours
        assert all(not line.lower().startswith(("note", "warning", "[")) for line in result.stderr.splitlines())
        assert "mpg123" not in result.stderr.lower()
    else:
        assert_error(result, ExitCode.INPUT)


def test_a_damaged_but_readable_pdf_is_indexed_without_pypdf_noise(isolated_env: Isolated, tmp_path: Path) -> None:
    text = b"BT /F1 12 Tf 72 712 Td (Comets have icy nuclei and long tails.) Tj ET"
    pdf = pdf_file(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
            b" /Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )
    pointer = pdf.rindex(b"startxref\n") + len(b"startxref\n")
    folder = folder_with(tmp_path, {"comets.pdf": pdf[:pointer] + b"99" + pdf[pointer:]})  # a wrong xref offset
    # pypdf itself recovers and prints "incorrect startxref pointer" and more to stderr
    raw = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import pypdf; pypdf.PdfReader({str(folder / 'comets.pdf')!r}).pages[0].extract_text()",
        ],
        capture_output=True,
        text=True,
    )
    assert "startxref" in raw.stderr
    result = run_cli("index", folder)
    assert result.code == 0, result
    assert result.stderr.strip().splitlines() == [], result.stderr
    texts = [row[0] for row in live_rows(isolated_env.data_dir, "default", "SELECT text FROM chunks")]
    assert texts == ["Comets have icy nuclei and long tails."]


def test_play_without_an_output_device_fails_first(guarded: DemoIndex) -> None:
    import sounddevice as sd

    try:
        sd.query_devices(None, "output")
        pytest.skip("this machine has an audio output device")
    except (ValueError, sd.PortAudioError):
        pass
    message = assert_error(run_cli("ask", "--text", "hi", "--play"), ExitCode.BACKEND, "--play", "--out")
    assert "output device" in message


def test_help_shows_flags_without_a_type(guarded: DemoIndex) -> None:
    for command in ("ask", "index", "chat", "eval", "models"):
        result = run_cli(command, "--help", env={"COLUMNS": "100"})
        assert (result.code == 0 and "--json" in result.stdout) or command == "chat", result
        assert "<bool>" not in result.stdout, result


# --- what gets read ------------------------------------------------------------------------------


@pytest.mark.slow
def test_json_field_change_rereads_and_no_text_names_the_fields(isolated_env: Isolated, tmp_path: Path) -> None:
    records = [{"title": "Comets", "body": "A comet's tail always points away from the Sun."}]
    folder = folder_with(tmp_path, {"notes.jsonl": "\n".join(json.dumps(r) for r in records) + "\n"})
    message = assert_error(run_cli("index", folder), ExitCode.INPUT, "no text found", "title", "body", "--json-field")
    assert not (isolated_env.data_dir / "indexes" / "default" / "CURRENT").exists()

    first = run_cli("index", folder, "--json-field", "body", "--json")
    assert first.code == 0 and first.json()["chunks"] == 1, first
    same = run_cli("index", folder, "--json-field", "body", "--json")
    assert (same.json()["unchanged"], same.json()["generation"]) == (1, 1), same
    changed = run_cli("index", folder, "--json-field", "title", "--json")
    assert (changed.json()["updated"], changed.json()["generation"]) == (1, 2), changed
    texts = [row[0] for row in live_rows(isolated_env.data_dir, "default", "SELECT text FROM chunks")]
    assert texts == ["Comets"], message
    # a field no record has, on an index that has text: refused naming the fields, nothing dropped
    assert_error(run_cli("index", folder, "--json-field", "nope"), ExitCode.INPUT, "no text found", "title", "body")
    assert [row[0] for row in live_rows(isolated_env.data_dir, "default", "SELECT text FROM chunks")] == ["Comets"]
    (folder / "guide.md").write_text("Comets are icy bodies that orbit the Sun.\n")
    assert run_cli("index", folder, "--json-field", "title").code == 0
    before = live_rows(isolated_env.data_dir, "default", "SELECT text FROM chunks")
    assert_error(run_cli("index", folder, "--json-field", "nope"), ExitCode.INPUT, "no text found", "title", "body")
    assert live_rows(isolated_env.data_dir, "default", "SELECT text FROM chunks") == before
    assert sorted(before) == [("Comets",), ("Comets are icy bodies that orbit the Sun.",)]


def test_exclude_defaults_and_flag(isolated_env: Isolated, tmp_path: Path) -> None:
    folder = folder_with(
        tmp_path,
        {
            "guide.md": "Install the package, then run the tool.",
            "notes/faq.md": "Frequently asked questions live here.",
            "requirements.txt": "numpy>=1.26\nrequests==2.31\n",
            "docs-requirements.txt": "sphinx\n",
            "poetry.lock": "[[package]]\n",
            "_build/html/index.html": "<p>Generated copy of the guide.</p>",
            "build/lib/readme.txt": "Build output.",
        },
    )
    result = run_cli("index", folder, "--json")
    assert result.code == 0, result
    sources = sorted(row[0] for row in live_rows(isolated_env.data_dir, "default", "SELECT key FROM files"))
    resolved = folder.resolve()
    assert sources == [f"{resolved}/guide.md", f"{resolved}/notes/faq.md"]
    narrowed = run_cli("index", folder, "--exclude", "notes", "--json")
    assert narrowed.json()["removed"] == 1, narrowed
    assert [r[0] for r in live_rows(isolated_env.data_dir, "default", "SELECT key FROM files")] == [
        f"{resolved}/guide.md"
    ]


@pytest.mark.parametrize("suffix", [".flac", ".ogg", ".mp3", ".wav"])
def test_random_bytes_named_as_audio(guarded: DemoIndex, tmp_path: Path, suffix: str) -> None:
    clip = tmp_path / f"noise{suffix}"
    clip.write_bytes(np.random.default_rng(7).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    assert_error(run_cli("ask", clip), ExitCode.INPUT, str(clip))


def test_out_that_is_an_existing_file(guarded: DemoIndex, tmp_path: Path) -> None:
    taken = tmp_path / "answer.wav"
    taken.write_bytes(b"mine")
    assert_error(run_cli("ask", "--text", "who decoded the bee dance?", "--out", taken), ExitCode.INPUT, "--out")
    assert taken.read_bytes() == b"mine"
