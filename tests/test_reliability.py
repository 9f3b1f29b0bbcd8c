"""Nothing stale, nothing hung, no internal error (issue 38): files that change while they are
indexed, files that vanish, full and read-only disks, refused writes, hostile config and audio
files, huge documents. Real CLI processes, real files, real SQLite/hnswlib, real small file
systems (a tmpfs, else a loop-mounted ext4; skipped with the reason where neither can be made)."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voicerag_cli.errors import ExitCode, StorageError
from vrtest import DemoIndex, Isolated, assert_error, cli_command, run_cli, tree_hash

CANARY = "The lighthouse keeper on Skerryvore rock polished the great lens every morning at dawn."


# --- helpers ---------------------------------------------------------------------------------


def live_generation(index_dir: Path) -> Path:
    return index_dir / (index_dir / "CURRENT").read_text(encoding="utf-8").strip()


def stored(index_dir: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(file key -> recorded hash, file key -> its chunk texts in order) of the live generation."""
    db = sqlite3.connect(f"file:{live_generation(index_dir) / 'chunks.sqlite'}?mode=ro", uri=True)
    try:
        hashes = dict(db.execute("SELECT key, content_hash FROM files").fetchall())
        texts: dict[str, list[str]] = {}
        for key, text in db.execute("SELECT file_key, text FROM chunks ORDER BY file_key, ordinal"):
            texts.setdefault(key, []).append(text)
        return hashes, texts
    finally:
        db.close()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def live_state(index_dir: Path) -> dict[str, str]:
    """Hashes of CURRENT and the generation folders (what readers see)."""
    return {k: v for k, v in tree_hash(index_dir).items() if k == "CURRENT" or k.startswith("gen-")}


def without_privileges(*args: object) -> list[str]:
    """The CLI run as root without the capabilities that bypass file permissions: a chmod-0 file
    is then unreadable (EACCES), as it is for every other user."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to drop root's file-permission override")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *cli_command(*args)]


def run_unprivileged(*args: object, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    command = without_privileges(*args)
    if os.geteuid() != 0:
        command = cli_command(*args)
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def one_line_error(proc: subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("voicerag: error: "), proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), (fragment, lines[0])
    return lines[0]


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """small_fs(kib) -> the root of a freshly mounted file system of that size: a tmpfs, else an
    ext4 image on a loop device. Skips (with the reason) where neither can be mounted."""
    mounted: list[Path] = []

    def make(kib: int) -> Path:
        folder = tmp_path / f"fs{len(mounted)}"
        folder.mkdir()
        tried = []
        tmpfs = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={kib}k,mode=0755", "tmpfs", str(folder)],
            capture_output=True,
            text=True,
        )
        if tmpfs.returncode == 0:
            mounted.append(folder)
            return folder
        tried.append(f"tmpfs: {tmpfs.stderr.strip()}")
        image = tmp_path / f"fs{len(mounted)}.img"
        with image.open("wb") as handle:
            handle.truncate(max(kib, 1024) * 1024)
        made = subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], capture_output=True, text=True)
        if made.returncode == 0:
            loop = subprocess.run(["mount", "-o", "loop", str(image), str(folder)], capture_output=True, text=True)
            if loop.returncode == 0:
                mounted.append(folder)
                return folder
            tried.append(f"loop: {loop.stderr.strip()}")
        else:
            tried.append(f"mkfs.ext4: {made.stderr.strip()}")
        pytest.skip("cannot mount a small file system here: " + "; ".join(tried))

    yield make
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def fill(folder: Path, leave: int) -> Path:
    """Fill the file system of `folder` until `leave` bytes are free (to the page)."""
    filler = folder / f"filler-{time.monotonic_ns()}"
    free = shutil.disk_usage(folder).free
    with filler.open("wb") as handle:
        left = max(0, free - leave)
        while left > 0:
            try:
                written = handle.write(b"\0" * min(left, 1 << 20))
                handle.flush()
            except OSError:
                break
            left -= written
    assert shutil.disk_usage(folder).free <= leave + 8192
    return filler


def write_docs(folder: Path, count: int, sentences: int = 40) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        text = " ".join(
            f"Report {number} line {i} says the orchard beside river {i % 7} froze in winter {1900 + i}."
            for i in range(sentences)
        )
        (folder / f"bulk-{number:03d}.txt").write_text(text, encoding="utf-8")


# --- 1. index what was read ---------------------------------------------------------------------


VERSIONS = [
    "Version one says the ferry leaves the harbour at noon. " * 40,
    "Version two says the glacier retreats every summer. " * 90,
    "Version three says the comet returns every seventy six years. " * 15,
]


def test_a_file_rewritten_while_indexed_is_recorded_as_read_and_repaired(
    isolated_env: Isolated, tmp_path: Path
) -> None:
    """An editor saving over and over while `index` runs: each run records the hash of exactly
    the bytes its chunks came from (never one version's hash with another's chunks), and once
    the file settles the next run indexes what is in it (issue 38, item 1: 3 of 3 trials)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "canary.txt").write_text(CANARY, encoding="utf-8")
    target = docs / "notes.txt"
    target.write_text(VERSIONS[0], encoding="utf-8")
    index_dir = isolated_env.data_dir / "indexes" / "default"
    key = str(target.resolve())
    # what the file can hold at any moment: nothing, half a save (truncate, then two writes), a save
    states = {"", *VERSIONS, *(v[: len(v) // 2] for v in VERSIONS)}
    by_hash = {sha256(state.encode()): state for state in states}
    for trial in range(3):
        stop = threading.Event()

        def rewrite(stop: threading.Event = stop) -> None:
            turn = 0
            while not stop.is_set():
                turn += 1
                with target.open("w", encoding="utf-8") as handle:  # truncate, then write: as editors do
                    text = VERSIONS[turn % 2]
                    handle.write(text[: len(text) // 2])
                    handle.flush()
                    handle.write(text[len(text) // 2 :])
                time.sleep(0.0005)

        writer = threading.Thread(target=rewrite)
        writer.start()
        try:
            result = run_cli("index", docs, "--json")
        finally:
            stop.set()
            writer.join()
        assert result.code == 0, result
        hashes, texts = stored(index_dir)
        # whatever was read, the recorded hash is that of the bytes the recorded chunks came from
        content = by_hash[hashes[key]]
        assert all(text in content for text in texts.get(key, [])), (content[:80], texts.get(key, [""])[0][:80])
        assert bool(texts.get(key)) == bool(content.strip())
        # the file settles on a version none of the runs saw: the next run repairs the index
        target.write_text(VERSIONS[2], encoding="utf-8")
        again = run_cli("index", docs, "--json")
        assert again.code == 0 and again.json()["updated"] == 1, again
        hashes, texts = stored(index_dir)
        assert hashes[key] == sha256(VERSIONS[2].encode())
        assert all("comet returns" in t for t in texts[key]) and not any("ferry" in t for t in texts[key])
        settled = run_cli("index", docs, "--json")
        assert (settled.json()["unchanged"], settled.json()["updated"]) == (2, 0), settled
        target.write_text(VERSIONS[trial % 2], encoding="utf-8")


def test_hash_belongs_to_the_chunks_when_a_file_changes_between_scan_and_read(
    isolated_env: Isolated, tmp_path: Path, registry: object
) -> None:
    """The scan hashes every file first; a file rewritten after its scan and before it is read is
    recorded with the hash of the bytes read (so the next run sees no false "unchanged")."""
    from voicerag_cli.config import Settings
    from voicerag_cli.index.builder import build_index
    from voicerag_cli.index.hnsw_store import IndexRoot

    docs = tmp_path / "docs"
    docs.mkdir()
    target = docs / "notes.txt"
    target.write_text(VERSIONS[0], encoding="utf-8")
    (docs / "other.txt").write_text(CANARY, encoding="utf-8")
    root = IndexRoot(isolated_env.data_dir / "indexes")
    settings = Settings()

    def rewrite_after_scan(stage: str, done: int, total: int) -> None:
        if stage == "scan" and done == total:
            target.write_text(VERSIONS[1], encoding="utf-8")

    report = build_index(
        root,
        "default",
        [docs],
        settings.index,
        registry.text_embedder,
        progress=rewrite_after_scan,  # type: ignore[attr-defined]
    )
    assert sorted(Path(k).name for k in report.added) == ["notes.txt", "other.txt"]
    hashes, texts = stored(root.path("default"))
    key = str(target.resolve())
    assert hashes[key] == sha256(VERSIONS[1].encode())
    assert all("glacier" in t for t in texts[key])
    again = build_index(root, "default", [docs], settings.index, registry.text_embedder)  # type: ignore[attr-defined]
    assert (again.unchanged, again.updated, again.added) == (2, [], [])


def test_a_file_that_vanishes_or_turns_into_a_fifo_mid_run_is_skipped_with_a_note(
    isolated_env: Isolated, tmp_path: Path, registry: object
) -> None:
    from voicerag_cli.config import Settings
    from voicerag_cli.index.builder import build_index
    from voicerag_cli.index.hnsw_store import IndexRoot

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "keep.txt").write_text(CANARY, encoding="utf-8")
    (docs / "gone.txt").write_text("This file is deleted after the scan.", encoding="utf-8")
    (docs / "pipe.txt").write_text("This file becomes a named pipe after the scan.", encoding="utf-8")
    root = IndexRoot(isolated_env.data_dir / "indexes")

    def sabotage(stage: str, done: int, total: int) -> None:
        if stage == "scan" and done == total:
            (docs / "gone.txt").unlink()
            (docs / "pipe.txt").unlink()
            os.mkfifo(docs / "pipe.txt")  # reading it would wait for a writer forever

    started = time.monotonic()
    report = build_index(
        root,
        "default",
        [docs],
        Settings().index,
        registry.text_embedder,
        progress=sabotage,  # type: ignore[attr-defined]
    )
    assert time.monotonic() - started < 120
    assert [Path(k).name for k in report.added] == ["keep.txt"]
    assert any("gone.txt" in n and "No such file" in n for n in report.notes), report.notes
    assert any("pipe.txt" in n and "FIFO" in n for n in report.notes), report.notes
    hashes, _ = stored(root.path("default"))
    assert [Path(k).name for k in hashes] == ["keep.txt"]


def test_the_cli_names_a_vanished_file_in_skipped(isolated_env: Isolated, tmp_path: Path) -> None:
    """Through the CLI: a file removed while `index` runs is named in JSON `skipped`, exit 0,
    never exit 3 for the whole run. The file is removed as soon as the scan has passed it."""
    docs = tmp_path / "docs"
    write_docs(docs, 60, sentences=60)
    victim = docs / "bulk-059.txt"
    proc = subprocess.Popen(cli_command("index", docs, "--json"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    index_dir = isolated_env.data_dir / "indexes"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(index_dir.glob(".default.lock")) and proc.poll() is None:
        time.sleep(0.005)
    victim.unlink()
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()
    import json

    summary = json.loads(out)
    named = [n for n in summary["skipped"] if "bulk-059.txt" in n]
    # removed before it was scanned, it was never found; else it is named as skipped
    assert summary["files"] == 59 and (named == [] or "No such file" in named[0]), summary


def test_a_path_longer_than_path_max_is_named_in_skipped(isolated_env: Isolated, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "short.txt").write_text(CANARY, encoding="utf-8")
    fd = os.open(docs, os.O_RDONLY)
    depth = 0
    try:  # folders of 200-character names, made relative to each other (no path may be that long)
        while len(str(docs)) + depth * 201 < 4000:
            name = "d" * 200
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd, depth = inner, depth + 1
        handle = os.open("f" * 200 + ".txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(handle, b"A document buried too deep to be named by its path.")
        os.close(handle)
        os.mkdir("e" * 200, dir_fd=fd)  # a folder that cannot be listed by its path at all
        deeper = os.open("e" * 200, os.O_RDONLY, dir_fd=fd)
        handle = os.open("g" * 100 + ".txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=deeper)
        os.write(handle, b"Deeper still.")
        os.close(handle)
        os.close(deeper)
    finally:
        os.close(fd)
    result = run_cli("index", docs, "--json")
    assert result.code == 0, result
    summary = result.json()
    assert summary["files"] == 1
    too_long = [n for n in summary["skipped"] if "File name too long" in n]
    assert any("f" * 200 + ".txt" in n for n in too_long), summary["skipped"]
    assert any(n.rstrip().endswith("cannot list it: File name too long") and "e" * 200 in n for n in too_long)


# --- 2. full disks and refused writes -----------------------------------------------------------


@pytest.mark.parametrize("free_kib", [4, 64, 256, 1024])
def test_index_onto_a_full_disk_is_one_line_and_keeps_the_live_generation(
    isolated_env: Isolated, tmp_path: Path, small_fs: Callable[[int], Path], free_kib: int
) -> None:
    data = small_fs(16 * 1024) / "data"
    env = {"VOICERAG_DATA_DIR": str(data)}
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "canary.txt").write_text(CANARY, encoding="utf-8")
    first = run_cli("index", docs, "--json", env=env)
    assert first.code == 0, first
    index_dir = data / "indexes" / "default"
    before = live_state(index_dir)
    write_docs(docs / "bulk", 40)
    fill(data, free_kib * 1024)
    result = run_cli("index", docs, "--json", env=env)
    assert result.code == ExitCode.STORAGE or free_kib > 64, result  # 40 new files need more than 64 kB
    if result.code == 0:  # it fitted after all: then it is complete
        assert result.json()["added"] == 40, result
    else:
        message = assert_error(result, ExitCode.STORAGE, str(index_dir))
        assert "no space left" in message.lower() or "did not read back" in message
        assert live_state(index_dir) == before
    assert not list(index_dir.glob(".staging-*")) and not list(index_dir.glob(".CURRENT.*"))
    generations = sorted(p.name for p in index_dir.glob("gen-*"))
    assert generations[-1] == live_generation(index_dir).name  # no unpublished generation left
    asked = run_cli("ask", "--text", "Who polished the lens of the lighthouse?", "--json", env=env)
    assert asked.code == 0 and asked.json()["sources"][0]["text"] == CANARY, asked


def test_commit_refuses_a_vector_file_truncated_by_a_full_disk(
    isolated_env: Isolated, small_fs: Callable[[int], Path]
) -> None:
    """hnswlib's save_index() on a full disk writes a truncated file and raises nothing; the
    commit's check refuses the generation, so CURRENT keeps pointing at the intact one."""
    import hnswlib

    from voicerag_cli.index.base import Manifest
    from voicerag_cli.index.chunking import Chunk
    from voicerag_cli.index.hnsw_store import IndexReader, IndexRoot

    fs = small_fs(8 * 1024)
    # hnswlib itself, on this file system: the truncation is real and silent
    probe = hnswlib.Index(space="cosine", dim=64)
    probe.init_index(max_elements=2000, M=16, ef_construction=50)
    probe.add_items(np.random.default_rng(0).random((2000, 64), dtype=np.float32), np.arange(2000))
    filler = fill(fs, 64 * 1024)
    try:
        probe.save_index(str(fs / "probe.hnsw"))
    except RuntimeError:  # a later hnswlib may report it; the commit's check must hold either way
        pass
    else:  # hnswlib 0.8: no exception, and a truncated file that does not load
        assert (fs / "probe.hnsw").stat().st_size < 2000 * 64 * 4
        with pytest.raises(RuntimeError):
            hnswlib.Index(space="cosine", dim=64).load_index(str(fs / "probe.hnsw"))
    (fs / "probe.hnsw").unlink(missing_ok=True)
    filler.unlink()

    root = IndexRoot(fs / "indexes")
    rng = np.random.default_rng(1)

    def manifest() -> Manifest:
        return Manifest("default", "test/space", 64, 120, 30, 16, 50)

    def chunks(key: str, count: int) -> list[Chunk]:
        return [Chunk(key, i, 0, 10, f"chunk {i} of {key}") for i in range(count)]

    with root.lock("default"), root.writer(manifest(), rebuild=False) as writer:
        writer.add_file("/a.txt", "a" * 64, 10)
        writer.add_chunks("/a.txt", chunks("/a.txt", 10), rng.random((10, 64), dtype=np.float32))
        writer.commit()
    base = root.path("default")
    before = live_state(base)

    with root.lock("default"), pytest.raises(StorageError) as refused, root.writer(manifest(), False) as writer:
        if True:  # the block a full disk interrupts
            writer.add_file("/b.txt", "b" * 64, 10)
            writer.add_chunks("/b.txt", chunks("/b.txt", 3000), rng.random((3000, 64), dtype=np.float32))
            real = writer.hnsw

            class FullBeforeSave:  # the disk fills up right before the vectors are saved
                def __getattr__(self, name: str) -> object:
                    return getattr(real, name)

                def save_index(self, path: str) -> None:
                    # the disk is full while the vectors are saved (another program's temp file),
                    # and has room again for the manifest and CURRENT
                    filler = fill(fs, 16 * 1024)
                    real.save_index(path)
                    filler.unlink()

            writer.hnsw = FullBeforeSave()
            writer.commit()
    assert str(base) in str(refused.value)
    assert live_state(base) == before
    assert not list(base.glob(".staging-*")) and sorted(p.name for p in base.glob("gen-*")) == ["gen-000001"]
    reader = IndexReader(live_generation(base))
    try:
        assert reader.files() == {"/a.txt": "a" * 64}
    finally:
        reader.close()


def test_ask_out_onto_a_full_disk_leaves_no_partial_folder(
    on_demo_index: DemoIndex, small_fs: Callable[[int], Path]
) -> None:
    fs = small_fs(1024)
    fill(fs, 0)
    out = fs / "answer"
    result = run_cli("ask", "--text", "who decoded the honey bee dance?", "--out", out)
    assert_error(result, ExitCode.STORAGE, str(out), "no space left")
    assert not out.exists()
    assert not [p for p in fs.rglob("*") if not p.name.startswith("filler-")]


def test_chat_save_onto_a_full_disk_leaves_no_part_file(
    on_demo_index: DemoIndex, small_fs: Callable[[int], Path], speech: Callable[..., Path]
) -> None:
    question = speech("Who decoded the dance of the honey bee?")
    fs = small_fs(1024)
    fill(fs, 0)
    save = fs / "session"
    result = run_cli("chat", "--input", question, "--json", "--save", save)
    assert result.code == ExitCode.STORAGE, result
    assert result.stderr.splitlines()[-1].startswith("voicerag: error: cannot write to --save"), result
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert not list(fs.rglob("*.part"))


def test_a_read_only_data_dir_names_the_path(
    isolated_env: Isolated, tmp_path: Path, small_fs: Callable[[int], Path]
) -> None:
    fs = small_fs(16 * 1024)
    data = fs / "data"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "canary.txt").write_text(CANARY, encoding="utf-8")
    assert run_cli("index", docs, env={"VOICERAG_DATA_DIR": str(data)}).code == 0
    (docs / "more.txt").write_text("A second document arrives.", encoding="utf-8")
    remount = subprocess.run(["mount", "-o", "remount,ro", str(fs)], capture_output=True, text=True)
    if remount.returncode != 0:
        pytest.skip(f"cannot remount read-only: {remount.stderr.strip()}")
    result = run_cli("index", docs, env={"VOICERAG_DATA_DIR": str(data)})
    assert_error(result, ExitCode.CONFIG, str(data), "read-only file system")
    asked = run_cli("ask", "--text", "Who polished the lens?", "--json", env={"VOICERAG_DATA_DIR": str(data)})
    assert asked.code == 0 and asked.json()["sources"][0]["text"] == CANARY, asked


def test_permission_denied_while_writing_an_index(isolated_env: Isolated, tmp_path: Path) -> None:
    """The lock can be taken but the index folder refuses writes (EACCES): one line naming the
    folder, exit 6 like any unwritable data dir, nothing changed."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "canary.txt").write_text(CANARY, encoding="utf-8")
    assert run_cli("index", docs).code == 0
    (docs / "more.txt").write_text("A second document arrives.", encoding="utf-8")
    index_dir = isolated_env.data_dir / "indexes" / "default"
    before = live_state(index_dir)
    index_dir.chmod(0o555)
    try:
        proc = run_unprivileged("index", docs)
    finally:
        index_dir.chmod(0o755)
    one_line_error(proc, ExitCode.CONFIG, str(index_dir), "permission denied", "--data-dir")
    assert live_state(index_dir) == before


def test_names_too_long_for_the_file_system(guarded_demo: DemoIndex, tmp_path: Path) -> None:
    long_name = tmp_path / ("n" * 300)
    assert_error(run_cli("ask", "--text", "hi", "--out", long_name), ExitCode.INPUT, "--out", "file name too long")
    assert_error(run_cli("ask", long_name / "q.wav"), ExitCode.INPUT, "file name too long")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text(CANARY, encoding="utf-8")
    assert_error(run_cli("--data-dir", long_name, "index", docs), ExitCode.CONFIG, "file name too long")


@pytest.fixture
def guarded_demo(on_demo_index: DemoIndex) -> Iterator[DemoIndex]:
    before = tree_hash(on_demo_index.data_dir)
    yield on_demo_index
    assert tree_hash(on_demo_index.data_dir) == before, "a failing command changed stored index data"


# --- 3. hostile config ---------------------------------------------------------------------------


def hostile_config(kind: str, tmp_path: Path) -> Path:
    if kind == "fifo":
        path = tmp_path / "config.toml"
        os.mkfifo(path)
        return path
    if kind in ("zero", "urandom"):
        return Path(f"/dev/{kind}")
    path = tmp_path / f"{kind}.toml"
    if kind == "deep-array":
        path.write_text("[ask]\nk = " + "[" * 50_000 + "]" * 50_000 + "\n", encoding="utf-8")
    elif kind == "deep-inline-table":
        path.write_text("x = " + "{a = " * 20_000 + "1" + "}" * 20_000 + "\n", encoding="utf-8")
    elif kind == "dotted-key":
        path.write_text(".".join(f"k{i}" for i in range(50_000)) + " = 1\n", encoding="utf-8")
    elif kind == "huge":
        path.write_text("# padding\n" * 400_000 + "[ask]\nk = 3\n", encoding="utf-8")
    return path


CONFIG_KINDS = {
    "fifo": "a fifo",
    "zero": "a character device",
    "urandom": "a character device",
    "deep-array": "more than 64 deep",
    "deep-inline-table": "more than 64 deep",
    "dotted-key": "more than 64 parts",
    "huge": "larger than",
}


@pytest.mark.parametrize("via", ["--config", "VOICERAG_CONFIG"])
@pytest.mark.parametrize("kind", list(CONFIG_KINDS))
def test_hostile_config_files_are_config_errors(tmp_path: Path, kind: str, via: str) -> None:
    path = hostile_config(kind, tmp_path)
    args: list[object] = ["config", "show"]
    started = time.monotonic()
    if via == "--config":
        result = run_cli("--config", path, *args, timeout=60)
    else:
        result = run_cli(*args, env={"VOICERAG_CONFIG": str(path)}, timeout=60)
    assert_error(result, ExitCode.CONFIG, str(path), CONFIG_KINDS[kind])
    assert time.monotonic() - started < 30


def test_config_shape_limits_leave_ordinary_files_alone(tmp_path: Path) -> None:
    from voicerag_cli.config import read_config_file

    path = tmp_path / "ok.toml"
    path.write_text(
        'x.y.z = """\n[[[[\n"""\n[ask]\nk = 5  # "quoted [[[ brackets" in a comment\n'
        "[index]\nexclude = ['a.b.c.d.e.f.g', \"[{[{\"]\n"
        "[profiles.fast.ask]\nk = 2\n",
        encoding="utf-8",
    )
    data = read_config_file(path)
    assert data["ask"]["k"] == 5 and data["index"]["exclude"] == ["a.b.c.d.e.f.g", "[{[{"]
    assert data["x"]["y"]["z"] == "[[[[\n"
    assert run_cli("--config", os.devnull, "config", "show").code == 0  # /dev/null: an empty config


# --- 4. hostile audio: ask and chat --input refuse the same way, before any model ----------------


def audio_case(kind: str, tmp_path: Path) -> Path:
    if kind == "all-nan":
        path = tmp_path / "nan.wav"
        sf.write(str(path), np.full(16_000, np.nan, dtype=np.float32), 16_000, subtype="FLOAT")
        return path
    if kind == "one-hertz":
        clip = tmp_path / "ok.wav"
        sf.write(str(clip), (0.3 * np.sin(np.arange(16_000) / 3)).astype(np.float32), 16_000, subtype="PCM_16")
        data = bytearray(clip.read_bytes())
        data[24:28] = struct.pack("<I", 1)
        data[28:32] = struct.pack("<I", 2)
        path = tmp_path / "one-hertz.wav"
        path.write_bytes(bytes(data))
        return path
    if kind == "fifo":
        path = tmp_path / "pipe.wav"
        os.mkfifo(path)
        return path
    if kind == "device":
        return Path("/dev/zero")
    raise AssertionError(kind)


AUDIO_MESSAGES = {
    "all-nan": "nan or infinite samples",
    "one-hertz": "sample rate of 1 hz",
    "fifo": "got a fifo",
    "device": "got a character device",
}
NO_MODELS = {"VOICERAG_ASR__MODEL_PATH": "/nonexistent/asr", "VOICERAG_TEXT_EMBEDDER__MODEL_PATH": "/nonexistent/te"}


@pytest.mark.parametrize("kind", list(AUDIO_MESSAGES))
def test_chat_input_refuses_what_ask_refuses_with_the_same_message(
    guarded_demo: DemoIndex, tmp_path: Path, kind: str
) -> None:
    """Weights that do not exist: a command that loaded a model first would fail with exit 5."""
    path = audio_case(kind, tmp_path)
    asked = assert_error(run_cli("ask", path, env=NO_MODELS, timeout=60), ExitCode.INPUT, AUDIO_MESSAGES[kind])
    chatted = assert_error(
        run_cli("chat", "--input", path, "--json", env=NO_MODELS, timeout=60), ExitCode.INPUT, AUDIO_MESSAGES[kind]
    )
    assert asked == chatted and str(path) in asked


def test_unreadable_audio_is_an_input_error_for_ask_and_chat(guarded_demo: DemoIndex, tmp_path: Path) -> None:
    clip = tmp_path / "locked.wav"
    sf.write(str(clip), (0.3 * np.sin(np.arange(16_000) / 3)).astype(np.float32), 16_000)
    clip.chmod(0)
    asked = one_line_error(run_unprivileged("ask", clip), ExitCode.INPUT, "permission denied", str(clip))
    chatted = one_line_error(run_unprivileged("chat", "--input", clip, "--json"), ExitCode.INPUT, "permission denied")
    assert asked == chatted


# --- 5. size: documents stream, datasets are text ---------------------------------------------


@pytest.mark.slow
def test_a_200_mb_document_is_read_in_bounded_memory(isolated_env: Isolated, tmp_path: Path) -> None:
    """Peak RSS of `index`'s reading and chunking (everything before the embedder is made) for a
    200 MB text file of prose (Latin-1 text: one byte a character in a Python str)."""
    big = tmp_path / "docs" / "big.txt"
    big.parent.mkdir()
    sentence = "The river rose past the old mill wheel near the café bridge, said report number {}. "
    with big.open("w", encoding="utf-8") as handle:
        written = number = 0
        while written < 200_000_000:
            line = "".join(sentence.format(number + i) for i in range(100)) + "\n"
            handle.write(line)
            written += len(line.encode("utf-8"))
            number += 100
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from voicerag_cli.config import Settings\n"
        "from voicerag_cli.index.builder import build_index\n"
        "from voicerag_cli.index.hnsw_store import IndexRoot\n"
        "class Done(Exception): pass\n"
        "def embedder():\n"
        "    # VmHWM: this process's own peak; ru_maxrss also counts the parent's RSS at fork,\n"
        "    # which Linux carries across exec (a full test run's pytest holds several GB)\n"
        "    peak = next(l for l in open('/proc/self/status') if l.startswith('VmHWM:'))\n"
        "    raise Done(int(peak.split()[1]))\n"
        "try:\n"
        "    build_index(IndexRoot(Path(sys.argv[2])), 'big', [Path(sys.argv[1])], Settings().index, embedder)\n"
        "except Done as done:\n"
        "    print(done.args[0] // 1024)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(big.parent), str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr
    peak_mb = int(proc.stdout.strip())
    assert peak_mb < 600, f"reading a 200 MB file took {peak_mb} MB"


def test_streamed_pieces_give_file_offsets_and_numbered_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file read in pieces: every chunk's offsets point at its text in the file, ordinals run on."""
    from voicerag_cli.config import Settings
    from voicerag_cli.index import documents
    from voicerag_cli.index.builder import _read_once

    monkeypatch.setattr(documents, "STREAM_ABOVE", 1000)
    monkeypatch.setattr(documents, "PIECE_CHARS", 2000)
    path = tmp_path / "long.txt"
    text = "".join(f"Paragraph {i} tells of the ferry café number {i}.\n\n" for i in range(400))
    path.write_text(text, encoding="utf-8")
    source, chunks = _read_once(path, Settings().index, [])
    assert source.content_hash == sha256(path.read_bytes()) and source.size == path.stat().st_size
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert all(text[c.start : c.end] == c.text for c in chunks)
    assert "Paragraph 0 " in chunks[0].text and "Paragraph 399 " in chunks[-1].text


def test_eval_data_that_is_binary_is_an_input_error(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    for dataset in ("jsonl", "rgb-en", "hotpot"):
        assert_error(
            run_cli("eval", "--dataset", dataset, "--data", data, "--out", tmp_path / f"out-{dataset}"),
            ExitCode.INPUT,
            str(data),
            "not utf-8",
        )
    os.mkfifo(tmp_path / "pipe.jsonl")
    assert_error(
        run_cli("eval", "--dataset", "jsonl", "--data", tmp_path / "pipe.jsonl", "--out", tmp_path / "o", timeout=60),
        ExitCode.INPUT,
        "fifo",
    )
