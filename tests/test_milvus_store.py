"""The Milvus store against a real engine: milvus-lite, started by these tests (in-process for
`milvus-lite:PATH.db`, and as a `milvus-lite server` process on 127.0.0.1 for `milvus://`).

Covers add, replace, delete, search, reopen, staged writes left by a failed or killed writer,
rebuild, drop, manifest checks, the writer lock, the CLI (`index`/`ask --store`), and parity of
the top-k with the hnswlib store on the same data."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from voicerag_cli.config import IndexConfig
from voicerag_cli.errors import BackendError, IndexError_
from voicerag_cli.index.base import Manifest, parse_store
from voicerag_cli.index.builder import build_index
from voicerag_cli.index.chunking import Chunk
from voicerag_cli.index.hnsw_store import IndexRoot
from voicerag_cli.index.selection import open_store
from voicerag_cli.models.base import EmbeddingSpace

if TYPE_CHECKING:
    from voicerag_cli.index.milvus_store import MilvusRoot
    from voicerag_cli.registry import Registry

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "docs"


def _milvus_lite_problem() -> str | None:
    """Why milvus-lite cannot run here, or None."""
    try:
        import milvus_lite  # noqa: F401
        import pymilvus
    except ImportError as exc:
        return f"pymilvus/milvus-lite not installed ({exc}): pip install -e '.[milvus]'"
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        try:
            client = pymilvus.MilvusClient(str(Path(tmp) / "probe.db"))
            client.list_collections()
            client.close()
        except Exception as exc:
            return f"milvus-lite does not start on this machine: {exc}"
        finally:
            from milvus_lite import server_manager_instance

            server_manager_instance.release_server(str(Path(tmp) / "probe.db"))
    return None


_PROBLEM = _milvus_lite_problem()
pytestmark = pytest.mark.skipif(_PROBLEM is not None, reason=_PROBLEM or "")


def lite_root(path: Path, locks: Path) -> MilvusRoot:
    root = open_store(parse_store(f"milvus-lite:{path}"), locks)
    assert root.kind == "milvus"
    return root  # type: ignore[return-value]


def release(path: Path) -> None:
    """Stop the in-process milvus-lite server of `path`, so the next client reopens it from disk."""
    from milvus_lite import server_manager_instance

    server_manager_instance.release_server(str(path))


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    shutil.copytree(EXAMPLES, folder)
    return folder


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(milvus-lite folder, lock dir), released after the test."""
    path = tmp_path / "idx.db"
    yield path, tmp_path / "locks"
    release(path)


def ask_vector(registry: Registry, text: str) -> np.ndarray:
    return np.asarray(registry.text_embedder().embed_texts([text])[0])


def no_embedder() -> Any:
    raise AssertionError("nothing needed embedding, yet the embedder was constructed")


@pytest.mark.slow
def test_add_search_replace_delete_and_reopen(
    docs: Path, lite: tuple[Path, Path], registry: Registry, tmp_path: Path
) -> None:
    path, locks = lite
    config = IndexConfig()
    root = lite_root(path, locks)
    report = build_index(root, "default", [docs], config, registry.text_embedder)
    m = report.manifest
    assert m is not None and (m.files, m.generation, m.dim) == (4, 1, 384)
    assert m.space_id == registry.text_embedder().space.space_id and m.chunks == report.chunks_embedded > 0
    assert root.names() == ["default"] and root.manifest("default").chunks == m.chunks

    reader = root.open("default")
    bikes = reader.search(ask_vector(registry, "who built the running machine and where?"), 3, 128)
    assert Path(bikes[0].source).name == "bicycles.md" and "Drais" in bikes[0].text
    assert 0 < bikes[0].score <= 1 and bikes[0].score >= bikes[-1].score
    assert set(reader.files()) == {str(p.resolve()) for p in docs.iterdir()}

    # unchanged: nothing embedded, nothing published
    again = build_index(root, "default", [docs], config, no_embedder)
    assert again.unchanged == 4 and again.manifest is not None and again.manifest.generation == 1

    # replace one file, delete another
    (docs / "bicycles.md").write_text("Penguins live in Antarctica. Emperor penguins dive below 500 metres.\n")
    (docs / "rhine.html").unlink()
    update = build_index(root, "default", [docs], config, registry.text_embedder)
    assert [Path(k).name for k in update.updated] == ["bicycles.md"]
    assert [Path(k).name for k in update.removed] == ["rhine.html"]
    assert update.manifest is not None and (update.manifest.generation, update.manifest.files) == (2, 3)

    fresh = root.open("default")
    hits = fresh.search(ask_vector(registry, "who built the running machine and where?"), 10, 128)
    assert len(hits) == update.manifest.chunks
    assert not any("Drais" in h.text or "rhine" in h.source for h in hits)
    penguins = fresh.search(ask_vector(registry, "how deep do emperor penguins dive?"), 1, 128)[0]
    assert "penguins" in penguins.text and penguins.chunk_id >= m.next_id  # new ids for new chunks
    # a reader opened before the update still sees its generation
    assert "Drais" in reader.search(ask_vector(registry, "who built the running machine?"), 1, 128)[0].text

    # reopen from disk: a new server over the same folder
    published = root.manifest("default").to_json()
    release(path)
    reopened = lite_root(path, locks)
    assert reopened.manifest("default").to_json() == published
    again_hits = reopened.open("default").search(ask_vector(registry, "how deep do emperor penguins dive?"), 3, 128)
    assert again_hits[0].chunk_id == penguins.chunk_id and again_hits[0].text == penguins.text


@pytest.mark.slow
def test_failed_and_killed_writers_leave_the_published_index(
    docs: Path, lite: tuple[Path, Path], registry: Registry
) -> None:
    path, locks = lite
    root = lite_root(path, locks)
    first = build_index(root, "default", [docs], IndexConfig(), registry.text_embedder).manifest
    assert first is not None
    query = ask_vector(registry, "what does the waggle dance tell other bees?")
    before = [(p.chunk_id, p.text) for p in root.open("default").search(query, 5, 128)]
    honeybees = str((docs / "honeybees.md").resolve())
    vectors = np.asarray(registry.text_embedder().embed_texts(["staged text"]), dtype=np.float32)
    staged = [Chunk("staged.md", 0, 0, 11, "staged text")]

    # 1. an exception inside the writer: leaving without commit discards the staged rows
    with pytest.raises(RuntimeError), root.writer(Manifest(**json.loads(first.to_json())), rebuild=False) as writer:
        assert writer.remove_file(honeybees) > 0
        writer.add_file("staged.md", "h", 11)
        writer.add_chunks("staged.md", staged, vectors)
        raise RuntimeError("boom")
    assert [(p.chunk_id, p.text) for p in root.open("default").search(query, 5, 128)] == before

    # 2. a killed writer: staged rows stay in Milvus (no cleanup ran); readers never see them
    killed = root.writer(Manifest(**json.loads(first.to_json())), rebuild=False)
    killed.remove_file(honeybees)
    killed.add_file("staged.md", "h", 11)
    killed.add_chunks("staged.md", staged, vectors)
    killed.client.flush(killed.chunks)
    release(path)  # the process is gone; a new one opens the folder
    root = lite_root(path, locks)
    reader = root.open("default")
    assert [(p.chunk_id, p.text) for p in reader.search(query, 5, 128)] == before
    assert "staged.md" not in reader.files() and honeybees in reader.files()
    assert root.manifest("default").generation == first.generation

    # the next write cleans up and publishes a consistent generation
    (docs / "notes.txt").write_text("The queen bee lays up to two thousand eggs a day.\n")
    update = build_index(root, "default", [docs], IndexConfig(), registry.text_embedder)
    assert update.manifest is not None and update.manifest.generation == first.generation + 1
    files = root.open("default").files()
    assert "staged.md" not in files and honeybees in files and len(files) == 5
    assert update.manifest.chunks == first.chunks + 1


@pytest.mark.slow
def test_manifest_checks_rebuild_drop_and_lock(docs: Path, lite: tuple[Path, Path], registry: Registry) -> None:
    path, locks = lite
    root = lite_root(path, locks)
    build_index(root, "papers", [docs], IndexConfig(), registry.text_embedder)
    reader = root.open("papers")
    with pytest.raises(IndexError_, match="dim 512"):
        reader.check_space(EmbeddingSpace("other-model", 512), "text embedder")
    reader.check_space(registry.text_embedder().space, "text embedder")

    with pytest.raises(IndexError_, match="rebuild"):  # chunking changed
        build_index(root, "papers", [docs], IndexConfig(chunk_words=60, overlap_words=10), no_embedder)

    class OtherSpace:
        space = EmbeddingSpace("other-model", 384)

        def embed_texts(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
            raise AssertionError("must not embed into a mismatching index")

    (docs / "new.txt").write_text("Something new to embed.\n")
    with pytest.raises(IndexError_, match="other-model"):
        build_index(root, "papers", [docs], IndexConfig(), OtherSpace)  # type: ignore[arg-type,return-value]

    with root.lock("papers"), pytest.raises(IndexError_, match="another voicerag process"):
        build_index(root, "papers", [docs], IndexConfig(), no_embedder)

    old = set(root.client.list_collections())
    rebuilt = build_index(
        root, "papers", [docs], IndexConfig(chunk_words=60, overlap_words=10), registry.text_embedder, rebuild=True
    )
    assert rebuilt.manifest is not None and rebuilt.manifest.generation == 2 and rebuilt.manifest.chunk_words == 60
    after = set(root.client.list_collections())
    assert old <= after  # the previous collections stay until the next write
    (docs / "new.txt").write_text("Something changed.\n")
    build_index(root, "papers", [docs], IndexConfig(chunk_words=60, overlap_words=10), registry.text_embedder)
    assert not (old - {"voicerag_indexes"}) & set(root.client.list_collections())

    root.drop("papers")
    assert root.names() == [] and root.client.list_collections() == ["voicerag_indexes"]
    with pytest.raises(IndexError_, match="unknown index"):
        root.open("papers")


def _synthetic_chunks(n: int, dim: int, seed: int) -> tuple[list[Chunk], np.ndarray]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim)).astype(np.float32) * (1.0 + np.arange(dim)) ** -0.7
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [Chunk(f"doc{i // 50}.txt", i % 50, 0, 9, f"chunk {i}") for i in range(n)]
    return chunks, vectors


def _fill(root: Any, chunks: list[Chunk], vectors: np.ndarray) -> None:
    manifest = Manifest("parity", "synthetic", vectors.shape[1], 120, 30, 16, 200)
    with root.lock("parity"), root.writer(manifest, rebuild=False) as writer:
        for start in range(0, len(chunks), 50):
            key = chunks[start].source
            writer.add_file(key, f"hash{start}", 1)
            writer.add_chunks(key, chunks[start : start + 50], vectors[start : start + 50])
        writer.commit()


@pytest.mark.slow
def test_same_top_k_as_the_hnswlib_store(tmp_path: Path, lite: tuple[Path, Path]) -> None:
    """2,000 vectors through both stores' writers and readers: the same chunk ids in the top 5
    (up to ANN misses), the same scores, and both agree with exact search."""
    chunks, vectors = _synthetic_chunks(2000, 384, seed=7)
    hnsw_root = IndexRoot(tmp_path / "indexes")
    milvus_root = lite_root(*lite)
    _fill(hnsw_root, chunks, vectors)
    _fill(milvus_root, chunks, vectors)
    a, b = hnsw_root.open("parity"), milvus_root.open("parity")
    assert a.manifest.chunks == b.manifest.chunks == 2000 and a.files() == b.files()

    _, query_vectors = _synthetic_chunks(100, 384, seed=8)
    overlap, exact_a, exact_b = [], [], []
    for vector in query_vectors:
        top_a, top_b = a.search(vector, 5, 128), b.search(vector, 5, 128)
        exact = set(np.argsort(-(vectors @ vector))[:5].tolist())
        ids_a, ids_b = [p.chunk_id for p in top_a], [p.chunk_id for p in top_b]
        overlap.append(len(set(ids_a) & set(ids_b)) / 5)
        exact_a.append(len(set(ids_a) & exact) / 5)
        exact_b.append(len(set(ids_b) & exact) / 5)
        for p in top_a:
            same = next((q for q in top_b if q.chunk_id == p.chunk_id), None)
            if same is not None:
                assert same.score == pytest.approx(p.score, abs=1e-4) and same.text == p.text
    assert np.mean(overlap) >= 0.95, np.mean(overlap)
    assert np.mean(exact_a) >= 0.95 and np.mean(exact_b) >= 0.95, (np.mean(exact_a), np.mean(exact_b))


@pytest.mark.slow
def test_real_documents_rank_the_same_in_both_stores(
    docs: Path, tmp_path: Path, lite: tuple[Path, Path], registry: Registry
) -> None:
    hnsw_root = IndexRoot(tmp_path / "indexes")
    milvus_root = lite_root(*lite)
    for root in (hnsw_root, milvus_root):
        build_index(root, "default", [docs], IndexConfig(chunk_words=40, overlap_words=10), registry.text_embedder)
    a, b = hnsw_root.open("default"), milvus_root.open("default")
    assert a.files() == b.files() and a.manifest.chunks == b.manifest.chunks
    for question in [
        "who built the running machine?",
        "how do bees tell each other where flowers are?",
        "which lake does the Rhine flow through?",
        "what is the largest planet?",
    ]:
        vector = ask_vector(registry, question)
        top_a, top_b = a.search(vector, 5, 128), b.search(vector, 5, 128)
        assert [p.chunk_id for p in top_a] == [p.chunk_id for p in top_b], question
        assert [p.score for p in top_a] == pytest.approx([p.score for p in top_b], abs=1e-4)


# --- the CLI, as a user runs it ---------------------------------------------------------------


def cli(*args: object, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voicerag_cli", *(str(a) for a in args)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    return {"VOICERAG_DATA_DIR": str(tmp_path / "data"), "VOICERAG_CONFIG": os.devnull}


@pytest.mark.slow
def test_cli_index_and_ask_with_milvus_lite(
    docs: Path, tmp_path: Path, cli_env: dict[str, str], speech: Callable[..., Path]
) -> None:
    store = f"milvus-lite:{tmp_path / 'idx.db'}"
    done = cli("index", docs, "--store", store, "--json", env=cli_env)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["files"] == 4 and summary["chunks"] > 0 and "milvus-lite:" in summary["path"]
    assert not (tmp_path / "data" / "indexes" / "default").exists()  # nothing went to the hnswlib store

    question = speech("Who built the running machine, and in which city?")
    asked = cli("ask", question, "--store", store, "--json", env=cli_env)
    assert asked.returncode == 0, asked.stderr
    result = json.loads(asked.stdout)
    assert "running machine" in result["transcript"].lower()
    assert Path(result["sources"][0]["source"]).name == "bicycles.md" and "Drais" in result["answer"]
    assert "search" in result["timings_ms"]

    # the config key selects the store too (what `chat` uses); --list reads it
    listed = cli("index", "--list", "--json", env={**cli_env, "VOICERAG_INDEX__STORE": store})
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)["indexes"]
    assert [(r["name"], r["chunks"]) for r in rows] == [("default", summary["chunks"])]
    missing = cli("ask", "--text", "anything", "--store", store, "--index", "nope", env=cli_env)
    assert missing.returncode == 4 and "unknown index 'nope'" in missing.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def milvus_server(tmp_path: Path) -> Iterator[str]:
    """A `milvus-lite server` process on 127.0.0.1 (the gRPC protocol a Milvus cluster speaks)."""
    import pymilvus

    port = _free_port()
    exe = shutil.which("milvus-lite")
    command = [exe] if exe else [sys.executable, "-m", "milvus_lite"]
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [*command, "server", "--data-dir", str(tmp_path / "server-data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                pymilvus.MilvusClient(uri=f"http://127.0.0.1:{port}", timeout=5).list_collections()
                break
            except Exception:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"milvus-lite server did not start: {(tmp_path / 'server.log').read_text()}")
                time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.mark.slow
def test_cli_with_a_milvus_server_address(docs: Path, cli_env: dict[str, str], milvus_server: str) -> None:
    store = f"milvus://{milvus_server}/papers"
    done = cli("index", docs, "--store", store, "--json", env=cli_env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["index"] == "papers"  # the collection names the index
    asked = cli("ask", "--text", "which planet has the tallest volcano?", "--store", store, "--json", env=cli_env)
    assert asked.returncode == 0, asked.stderr
    assert Path(json.loads(asked.stdout)["sources"][0]["source"]).name == "solar_system.txt"
    listed = cli("index", "--list", "--store", f"milvus://{milvus_server}", "--json", env=cli_env)
    assert [r["name"] for r in json.loads(listed.stdout)["indexes"]] == ["papers"]
    clash = cli("ask", "--text", "x", "--store", store, "--index", "other", env=cli_env)
    assert clash.returncode == 6 and "conflicts" in clash.stderr


def test_unreachable_server_is_a_one_line_backend_error(tmp_path: Path) -> None:
    root = open_store(parse_store(f"milvus://127.0.0.1:{_free_port()}"), tmp_path / "locks")
    with pytest.raises(BackendError, match="Milvus"):
        root.names()


@pytest.mark.slow
def test_a_milvus_lite_folder_in_use_by_another_process(tmp_path: Path, cli_env: dict[str, str]) -> None:
    path = tmp_path / "busy.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, pymilvus; pymilvus.MilvusClient(sys.argv[1]).list_collections(); print('up', flush=True); "
            "sys.stdin.read()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "up"
        busy = cli("index", "--list", "--store", f"milvus-lite:{path}", env=cli_env)
        assert busy.returncode == 7, busy.stderr
        assert busy.stderr.count("\n") == 1 and "one process at a time" in busy.stderr, busy.stderr
    finally:
        holder.communicate("", timeout=60)
