"""Indexing: build, incremental updates (skip / replace / remove / add), capacity growth past
the initial HNSW size, --rebuild, --list, --drop, all document types, space and chunking
mismatches, the writer lock. Real hnswlib and SQLite files in temporary data dirs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from test_documents import minimal_pdf
from voicerag_cli.config import IndexConfig, Settings
from voicerag_cli.errors import ExitCode, IndexError_, InputError
from voicerag_cli.index.builder import build_index
from voicerag_cli.index.hnsw_store import CHUNKS_DB, CURRENT, MIN_CAPACITY, IndexRoot
from voicerag_cli.registry import Registry
from vrtest import Isolated, assert_error, run_cli, tree_hash

TOPICS = {
    "volcano.txt": "Olympus Mons on Mars is the tallest volcano in the solar system. It is about 22 kilometres high.",
    "bread.txt": "Sourdough bread rises because wild yeast and lactic acid bacteria ferment the dough slowly.",
    "chess.txt": "Chess openings like the Sicilian Defence begin with the moves e4 and c5 for black.",
}
NEW_BREAD = "Bread dough made with baker's yeast needs about two hours to double in size at room temperature."
INDEX_JSON_KEYS = {  # docs/indexing.md and docs/scripting.md: `index --json`
    "index",
    "path",
    "added",
    "updated",
    "removed",
    "unchanged",
    "empty_files",
    "skipped",
    "chunks_embedded",
    "chunks_spoken",
    "files",
    "chunks",
    "space_id",
    "dim",
    "generation",
    "seconds",
}
GLACIER = "Glaciers carve U-shaped valleys as they slowly grind rock beneath thousands of tonnes of ice."


def write_topics(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, text in TOPICS.items():
        paths[name] = folder / name
        paths[name].write_text(text, encoding="utf-8")
    return paths


def index_root(data_dir: Path) -> IndexRoot:
    return IndexRoot(data_dir / "indexes")


def db_rows(root: IndexRoot, name: str, sql: str) -> list[tuple]:
    folder = root.live_generation(name)
    assert folder is not None
    db = sqlite3.connect(f"file:{folder / CHUNKS_DB}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def search_all(root: IndexRoot, name: str, registry: Registry, query: str) -> list[tuple[int, str, str]]:
    """Every live chunk, ranked for `query`: (chunk_id, source, text). Also checks that the HNSW
    index and the SQLite table hold exactly the same chunk ids."""
    reader = root.open(name)
    try:
        vector = registry.text_embedder().embed_texts([query])[0]
        passages = reader.search(vector, k=reader.manifest.chunks, ef=max(128, reader.manifest.chunks))
    finally:
        reader.close()
    ids = {row[0] for row in db_rows(root, name, "SELECT id FROM chunks")}
    assert {p.chunk_id for p in passages} == ids, "HNSW and SQLite disagree about the live chunks"
    return [(p.chunk_id, p.source, p.text) for p in passages]


@pytest.mark.slow
def test_build_incremental_update_rebuild(isolated_env: Isolated, tmp_path: Path, registry: Registry) -> None:
    docs = tmp_path / "docs"
    paths = write_topics(docs)
    root = index_root(isolated_env.data_dir)

    first = run_cli("index", docs, "--json")
    assert first.code == 0, first
    summary = first.json()
    assert set(summary) == INDEX_JSON_KEYS
    assert (summary["added"], summary["updated"], summary["removed"], summary["unchanged"]) == (3, 0, 0, 0)
    assert (summary["files"], summary["chunks"], summary["generation"]) == (3, 3, 1)
    assert (summary["space_id"], summary["dim"]) == ("sentence-transformers/all-MiniLM-L6-v2", 384)
    assert summary["path"] == str(root.path("default"))
    assert (root.path("default") / CURRENT).read_text(encoding="utf-8").strip() == "gen-000001"
    assert {p.name for p in (root.path("default") / "gen-000001").iterdir()} == {
        "manifest.json",
        "vectors.hnsw",
        "chunks.sqlite",
    }
    top = search_all(root, "default", registry, "which volcano is the tallest?")
    assert top[0][1] == str(paths["volcano.txt"].resolve())

    # Unchanged files are skipped by hash, without even constructing the embedder: a broken
    # embedder path would fail with exit 5 if it were loaded.
    before = tree_hash(root.path("default"))
    unchanged = run_cli("index", docs, "--json", env={"VOICERAG_TEXT_EMBEDDER__MODEL_PATH": str(tmp_path / "none")})
    assert unchanged.code == 0, unchanged
    assert (unchanged.json()["unchanged"], unchanged.json()["chunks_embedded"]) == (3, 0)
    assert unchanged.json()["generation"] == 1
    assert tree_hash(root.path("default")) == before

    # change one file, delete one, add one
    old_bread_ids = [row[0] for row in db_rows(root, "default", "SELECT id FROM chunks WHERE text LIKE '%Sourdough%'")]
    assert len(old_bread_ids) == 1
    paths["bread.txt"].write_text(NEW_BREAD, encoding="utf-8")
    paths["chess.txt"].unlink()
    (docs / "glacier.md").write_text(GLACIER, encoding="utf-8")
    second = run_cli("index", docs, "--json")
    assert second.code == 0, second
    summary = second.json()
    assert (summary["added"], summary["updated"], summary["removed"], summary["unchanged"]) == (1, 1, 1, 1)
    assert (summary["files"], summary["chunks"], summary["generation"], summary["chunks_embedded"]) == (3, 3, 2, 2)

    files = dict(db_rows(root, "default", "SELECT key, content_hash FROM files"))
    assert set(files) == {str(p.resolve()) for p in [paths["volcano.txt"], paths["bread.txt"], docs / "glacier.md"]}
    texts = [row[0] for row in db_rows(root, "default", "SELECT text FROM chunks")]
    assert not any("Sourdough" in t or "Sicilian" in t for t in texts)  # old chunks gone from SQLite
    ranked = search_all(root, "default", registry, "sourdough wild yeast lactic acid bacteria")
    assert old_bread_ids[0] not in {chunk_id for chunk_id, _, _ in ranked}  # ...and from the vectors
    assert not any("Sourdough" in text for _, _, text in ranked)
    assert ranked[0][2] == NEW_BREAD  # the replacement is what the bread question finds now
    assert search_all(root, "default", registry, "how do glaciers shape valleys")[0][2] == GLACIER
    assert not any("Sicilian" in text for _, _, text in search_all(root, "default", registry, "chess opening e4 c5"))

    # Indexing another folder adds to the index; the first folder's files stay.
    extra = tmp_path / "more"
    extra.mkdir()
    (extra / "tea.txt").write_text("Green tea leaves are steamed or pan-fired to stop oxidation.", encoding="utf-8")
    third = run_cli("index", extra, "--json")
    assert third.code == 0, third
    assert (third.json()["files"], third.json()["added"], third.json()["removed"]) == (4, 1, 0)
    # generations: the live one and the one before it are kept, older ones pruned
    assert sorted(p.name for p in root.path("default").glob("gen-*")) == ["gen-000002", "gen-000003"]

    # A different chunking is refused (before anything is written) ...
    before = tree_hash(root.path("default"))
    assert_error(run_cli("index", docs, "--chunk-words", "60"), ExitCode.INDEX, "chunk_words=120", "--rebuild")
    assert tree_hash(root.path("default")) == before
    # ... and accepted with --rebuild, which starts over from exactly the given folder
    rebuilt = run_cli("index", docs, "--chunk-words", "60", "--overlap-words", "10", "--rebuild", "--json")
    assert rebuilt.code == 0, rebuilt
    summary = rebuilt.json()
    assert (summary["added"], summary["files"], summary["chunks"], summary["generation"]) == (3, 3, 3, 4)
    manifest = root.manifest("default")
    assert (manifest.chunk_words, manifest.overlap_words, manifest.next_id) == (60, 10, 3)
    assert not any("tea" in key for (key,) in db_rows(root, "default", "SELECT key FROM files"))


def test_index_every_document_type(isolated_env: Isolated, tmp_path: Path, registry: Registry) -> None:
    docs = tmp_path / "mixed"
    docs.mkdir()
    (docs / "notes.md").write_text("# Notes\n\nThe Danube flows through ten countries.", encoding="utf-8")
    (docs / "page.html").write_text(
        "<html><head><title>t</title></head><body><p>The Amazon carries the most water of any river.</p>"
        "<script>ignored()</script></body></html>",
        encoding="utf-8",
    )
    (docs / "facts.json").write_text(json.dumps({"text": "The Nile was long called the longest river."}), "utf-8")
    (docs / "records.jsonl").write_text(
        json.dumps({"text": "The Mekong crosses six countries."})
        + "\n"
        + json.dumps({"text": "The Volga is the longest river in Europe."})
        + "\n",
        encoding="utf-8",
    )
    (docs / "scan.pdf").write_bytes(minimal_pdf(["The Mississippi drains much of North America."]))
    (docs / "empty.txt").write_text("", encoding="utf-8")
    (docs / "skip.csv").write_text("not,indexed\n", encoding="utf-8")

    result = run_cli("index", docs, "--name", "rivers", "--json")
    assert result.code == 0, result
    summary = result.json()
    assert (summary["index"], summary["files"], summary["chunks"]) == ("rivers", 6, 6)
    assert summary["empty_files"] == [str((docs / "empty.txt").resolve())]

    root = index_root(isolated_env.data_dir)
    sources = {row[0] for row in db_rows(root, "rivers", "SELECT source FROM chunks")}
    resolved = docs.resolve()
    assert sources == {
        f"{resolved}/notes.md",
        f"{resolved}/page.html",
        f"{resolved}/facts.json",
        f"{resolved}/records.jsonl#L1",
        f"{resolved}/records.jsonl#L2",
        f"{resolved}/scan.pdf#page=1",
    }
    for query, expected in [
        ("Which river drains North America?", f"{resolved}/scan.pdf#page=1"),
        ("Which river carries the most water?", f"{resolved}/page.html"),
        ("longest river in Europe", f"{resolved}/records.jsonl#L2"),
    ]:
        assert search_all(root, "rivers", registry, query)[0][1] == expected
    html_text = db_rows(root, "rivers", f"SELECT text FROM chunks WHERE source = '{resolved}/page.html'")[0][0]
    assert "ignored" not in html_text and "<p>" not in html_text


@pytest.mark.slow
def test_list_and_drop(isolated_env: Isolated, tmp_path: Path, registry: Registry) -> None:
    empty = run_cli("index", "--list", "--json")
    assert empty.code == 0, empty
    assert empty.json() == {"root": str(isolated_env.data_dir / "indexes"), "indexes": []}

    docs = tmp_path / "docs"
    write_topics(docs)
    root = index_root(isolated_env.data_dir)
    for name in ("alpha", "beta"):  # built in-process (the CLI build is covered above)
        build_index(root, name, [docs / "volcano.txt", docs / "bread.txt"], IndexConfig(), registry.text_embedder)
    listed = run_cli("index", "--list", "--json")
    assert listed.code == 0, listed
    rows = listed.json()["indexes"]
    assert all(set(row) == {"name", "files", "chunks", "space_id", "dim", "updated_at"} for row in rows)
    assert [(r["name"], r["files"], r["chunks"], r["dim"]) for r in rows] == [("alpha", 2, 2, 384), ("beta", 2, 2, 384)]
    table = run_cli("index", "--list")
    assert table.code == 0 and "alpha" in table.stdout and "beta" in table.stdout, table

    dropped = run_cli("index", "--drop", "alpha", "--json")
    assert (dropped.code, dropped.stdout.strip()) == (0, '{"dropped": "alpha"}'), dropped
    assert not (isolated_env.data_dir / "indexes" / "alpha").exists()
    assert [r["name"] for r in run_cli("index", "--list", "--json").json()["indexes"]] == ["beta"]
    assert not list((isolated_env.data_dir / "indexes").glob(".trash-*"))

    before = tree_hash(isolated_env.data_dir / "indexes" / "beta")
    assert_error(run_cli("index", "--drop", "alpha"), ExitCode.INDEX, "unknown index 'alpha'")
    assert_error(run_cli("index", "--drop", "../beta"), ExitCode.INDEX, "invalid index name")
    assert tree_hash(isolated_env.data_dir / "indexes" / "beta") == before


@pytest.mark.slow
def test_capacity_grows_past_the_initial_hnsw_size(tmp_path: Path, registry: Registry) -> None:
    """Two incremental runs of short JSONL records: the second pushes the index past
    MIN_CAPACITY elements, so the loaded HNSW index must be resized; every record stays findable."""
    root = IndexRoot(tmp_path / "indexes")
    config = IndexConfig()
    docs = tmp_path / "records"
    docs.mkdir()
    colours = ["red", "green", "blue", "amber", "violet", "teal", "ochre", "silver"]

    def write_records(path: Path, first: int, count: int) -> None:
        lines = [
            json.dumps({"text": f"Part {i} of the catalogue is a {colours[i % 8]} widget numbered {i * 7 + 3}."})
            for i in range(first, first + count)
        ]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    write_records(docs / "a.jsonl", 0, 700)
    report = build_index(root, "big", [docs], config, registry.text_embedder)
    assert report.manifest is not None
    assert (report.manifest.chunks, report.manifest.capacity) == (700, MIN_CAPACITY)

    write_records(docs / "b.jsonl", 700, 500)
    report = build_index(root, "big", [docs], config, registry.text_embedder)
    manifest = report.manifest
    assert manifest is not None
    assert (report.chunks_embedded, report.unchanged, manifest.chunks) == (500, 1, 1200)
    assert manifest.capacity >= 1200 > MIN_CAPACITY

    reader = root.open("big")
    try:
        ids = np.arange(1200)
        vectors = np.asarray(reader.hnsw.get_items(ids), dtype=np.float32)
        reader.hnsw.set_ef(200)
        labels, _ = reader.hnsw.knn_query(vectors, k=1)
        assert (labels[:, 0] == ids).all(), "some records are not found by their own vector"
        # and by text, through the public search: a record from the second (post-resize) batch
        query = registry.text_embedder().embed_texts(["Part 1111 of the catalogue is a silver widget numbered 7780."])
        assert reader.search(query[0], k=1, ef=128)[0].source.endswith("b.jsonl#L412")
    finally:
        reader.close()
    assert len(db_rows(root, "big", "SELECT id FROM chunks")) == 1200


def test_another_embedding_space_is_refused(tmp_path: Path, registry: Registry) -> None:
    root = IndexRoot(tmp_path / "indexes")
    docs = tmp_path / "docs"
    write_topics(docs)
    build_index(root, "spaces", [docs], IndexConfig(), registry.text_embedder)
    before = tree_hash(root.path("spaces"))

    settings = Settings().updated({"text_embedder.space_id": "my-org/other-space"})
    other = Registry(settings)
    (docs / "new.txt").write_text("A new file needs embedding with the other model.", encoding="utf-8")
    with pytest.raises(IndexError_, match=r"holds sentence-transformers/all-MiniLM-L6-v2 vectors.*my-org/other-space"):
        build_index(root, "spaces", [docs], IndexConfig(), other.text_embedder)
    assert tree_hash(root.path("spaces")) == before
    assert not list(root.path("spaces").glob(".staging-*"))

    reader = root.open("spaces")
    try:
        with pytest.raises(IndexError_, match="my-org/other-space"):
            reader.check_space(other.text_embedder().space, "text embedder")
    finally:
        reader.close()


def test_a_folder_without_text_makes_no_index(tmp_path: Path, registry: Registry) -> None:
    root = IndexRoot(tmp_path / "indexes")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "blank.md").write_text("  \n\n  ", encoding="utf-8")
    with pytest.raises(InputError, match="no text found in 1 file"):
        build_index(root, "hollow", [docs], IndexConfig(), registry.text_embedder)
    with pytest.raises(IndexError_):
        root.open("hollow")


def test_second_writer_fails_fast(isolated_env: Isolated, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write_topics(docs)
    root = index_root(isolated_env.data_dir)
    with root.lock("default"):
        result = run_cli("index", docs)
    assert_error(result, ExitCode.INDEX, "being written by another voicerag process")
    assert not root.exists("default")
