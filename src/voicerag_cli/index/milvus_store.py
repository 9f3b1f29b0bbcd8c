"""The Milvus store: the same indexes, manifests and incremental updates as the hnswlib store,
kept in a Milvus server (`milvus://host:port`) or a local milvus-lite folder.

Publishing is generation-based, like the hnswlib store's, but without copying: every chunk and
file row records the generation that added it (`added_gen`) and the one that removed it
(`removed_gen`, 0 while live). A writer for generation G+1 inserts rows with added_gen = G+1
and marks removed rows with removed_gen = G+1; readers search only rows visible at the
manifest's generation G, so nothing staged is seen. `commit()` flushes, then upserts the
index's one row in `voicerag_indexes` (manifest + collection names): a single-row write, the
atomic switch to G+1. A writer that dies leaves rows readers never see; the next writer (or
the writer's own exit without commit) deletes them and restores the rows it had marked.
`--rebuild` writes into new collections and switches the row to them; the old ones are
dropped by the next write, so a reader that opened them just before can finish.

Limits (see docs/milvus.md): the writer lock is a file lock on this machine, so two machines
writing one index at the same time are not kept apart; a chunk's text is at most 64 KiB.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from voicerag_cli.errors import BackendError, IndexError_, VoiceragError
from voicerag_cli.index import milvus_schema as ms
from voicerag_cli.index.base import Manifest, StoreSpec, ensure_same_space, writer_lock
from voicerag_cli.index.chunking import Chunk
from voicerag_cli.models.base import EmbeddingSpace, Passage
from voicerag_cli.paths import validate_index_name

_UPSERT_BATCH = 512


@contextlib.contextmanager
def milvus_errors(what: str) -> Iterator[None]:
    """Failures of the Milvus server or client become one-line backend errors (exit 7)."""
    try:
        yield
    except VoiceragError:
        raise
    except Exception as exc:
        raise BackendError(f"Milvus {what} failed: {exc}") from exc


class MilvusRoot:
    """All voicerag indexes in one Milvus database (the `StoreRoot` of the Milvus store)."""

    kind = "milvus"
    keeps_terms = False  # see MilvusReader.lexical_search
    keeps_spoken = False  # e2e on Milvus ranks by the text vectors alone

    def __init__(self, spec: StoreSpec, lock_dir: Path) -> None:
        self.spec = spec
        self.lock_dir = lock_dir
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            client = ms.connect(self.spec.uri, self.spec.token)
            with milvus_errors(f"setup at {self.describe()}"):
                if not client.has_collection(ms.META):
                    ms.create_meta(client)
                ms.load(client, ms.META)
            self._client = client
        return self._client

    def describe(self) -> str:
        return self.spec.text.rsplit("/", 1)[0] if self.spec.collection else self.spec.text

    def location(self, name: str) -> str:
        return f"{self.describe()} (index {name}, collections {ms.collection_base(name)}_*)"

    def row(self, name: str) -> dict[str, Any] | None:
        validate_index_name(name)
        with milvus_errors("query"):
            rows = self.client.query(
                ms.META,
                filter=f"name == {ms.literal(name)}",
                output_fields=["name", "manifest", "chunks", "files", "retired"],
            )
        return rows[0] if rows else None

    def publish(self, name: str, manifest: Manifest, chunks: str, files: str, retired: list[str]) -> None:
        row = {
            "name": name,
            "manifest": manifest.to_json(),
            "chunks": chunks,
            "files": files,
            "retired": json.dumps(retired),
            "pad": ms.PAD,
        }
        with milvus_errors("publish"):
            self.client.upsert(ms.META, [row])

    def lock(self, name: str) -> contextlib.AbstractContextManager[None]:
        """This machine's writer lock for one index (Milvus itself has no lock to take)."""
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        where = hashlib.sha1(self.describe().encode()).hexdigest()[:12]
        return writer_lock(self.lock_dir / f".milvus-{where}-{validate_index_name(name)}.lock", name)

    def exists(self, name: str) -> bool:
        return self.row(name) is not None

    def names(self) -> list[str]:
        with milvus_errors("query"):
            rows = ms.query_all(self.client, ms.META, 'name != ""', ["name"])
        return sorted(row["name"] for row in rows)

    def manifest(self, name: str) -> Manifest:
        row = self.row(name)
        if row is None:
            known = ", ".join(self.names()) or "none yet: run `voicerag index PATH`"
            raise IndexError_(f"unknown index {name!r} in {self.describe()} (known: {known})")
        return Manifest.from_text(row["manifest"], where=self.location(name))

    def drop(self, name: str) -> None:
        with self.lock(name):
            row = self.row(name)
            if row is None:
                raise IndexError_(f"unknown index {name!r} in {self.describe()}")
            with milvus_errors("drop"):
                # Unpublish first (one row), so a crash mid-drop never leaves a half index under the name.
                self.client.delete(ms.META, filter=f"name == {ms.literal(name)}")
                for collection in [row["chunks"], row["files"], *json.loads(row["retired"])]:
                    if self.client.has_collection(collection):
                        self.client.drop_collection(collection)

    def open(self, name: str) -> MilvusReader:
        manifest = self.manifest(name)
        row = self.row(name)
        assert row is not None
        with milvus_errors("load"):
            for collection in (row["chunks"], row["files"]):
                ms.load(self.client, collection)
        return MilvusReader(self.client, manifest, row["chunks"], row["files"])

    def writer(self, manifest: Manifest, rebuild: bool) -> MilvusWriter:
        if manifest.metric != "cosine":
            raise IndexError_(
                f"the Milvus store indexes by cosine only; index {manifest.name!r} uses {manifest.metric} "
                "(its text embedder's metric setting): use the built-in store or the cosine metric"
            )
        return MilvusWriter(self, manifest, rebuild=rebuild)


class MilvusReader:
    """The index as published at one generation."""

    def __init__(self, client: Any, manifest: Manifest, chunks: str, files: str) -> None:
        self.client = client
        self.manifest = manifest
        self.name = manifest.name
        self.space = manifest.space
        self.chunks, self.files_collection = chunks, files
        self.visible = ms.visible_at(manifest.generation)

    def close(self) -> None:
        """The connection belongs to the `MilvusRoot`; nothing to release per reader."""

    def check_space(self, space: EmbeddingSpace, role: str) -> None:
        ensure_same_space(self.name, self.space, space, role)

    def search(self, vector: np.ndarray, k: int, ef: int) -> list[Passage]:
        if self.manifest.chunks == 0:
            raise IndexError_(f"index {self.name!r} is empty: index some documents first")
        limit = min(k, self.manifest.chunks)
        with milvus_errors("search"):
            hits = self.client.search(
                self.chunks,
                data=[np.asarray(vector, dtype=np.float32).reshape(-1).tolist()],
                limit=limit,
                filter=self.visible,
                search_params={"metric_type": "COSINE", "params": {"ef": max(ef, limit)}},
                output_fields=["source", "text", "start", "end"],
            )[0]
        return [
            Passage(
                chunk_id=int(hit["id"]),
                source=hit["entity"]["source"],
                text=hit["entity"]["text"],
                score=float(hit["distance"]),
                start=int(hit["entity"]["start"]),
                end=int(hit["entity"]["end"]),
            )
            for hit in hits
        ]

    def lexical_search(self, text: str, vector: np.ndarray, n: int) -> list[tuple[Passage, float]] | None:
        """None: Milvus's own full-text search cannot read Chinese as pinyin (`index.lexical`),
        so a Milvus index ranks by its vectors alone."""
        return None

    def files(self) -> dict[str, str]:
        with milvus_errors("query"):
            rows = ms.query_all(self.client, self.files_collection, self.visible, ["key", "content_hash"])
        return {row["key"]: row["content_hash"] for row in rows}


class MilvusWriter:
    """Stages generation G+1 of an index in its collections; see the module docstring."""

    def __init__(self, root: MilvusRoot, manifest: Manifest, rebuild: bool) -> None:
        self.root = root
        self.client = root.client
        self.name = manifest.name
        row = root.row(self.name)
        live = None if row is None else Manifest.from_text(row["manifest"], where=root.location(self.name))
        self.live_generation = 0 if live is None else live.generation
        self.gen = self.live_generation + 1
        manifest.generation = self.live_generation
        self.manifest = manifest
        self.committed = False
        with milvus_errors("write setup"):
            self._drop_leftovers(row)
            if row is not None and live is not None and not rebuild:
                self.chunks, self.files, self.retired = row["chunks"], row["files"], []
                for collection in (self.chunks, self.files):
                    ms.load(self.client, collection)
                manifest.created_at, manifest.next_id, manifest.capacity = live.created_at, live.next_id, 0
                self._undo_staged()
                self._collect_garbage()
                self.fresh, self.changed = False, False
            else:
                self.chunks = ms.chunks_collection(self.name, self.gen)
                self.files = ms.files_collection(self.name, self.gen)
                self.retired = [] if row is None else [row["chunks"], row["files"]]
                manifest.next_id, manifest.capacity = 0, 0
                ms.create_chunks(self.client, self.chunks, manifest.dim, manifest.hnsw_m, manifest.hnsw_ef_construction)
                ms.create_files(self.client, self.files)
                self.fresh, self.changed = True, True  # a new or rebuilt index is always published

    # --- recovery -----------------------------------------------------------------------
    def _drop_leftovers(self, row: dict[str, Any] | None) -> None:
        """Collections retired by an earlier --rebuild, and ones a killed --rebuild created."""
        keep = set() if row is None else {row["chunks"], row["files"]}
        retired = [] if row is None else json.loads(row["retired"])
        own = re.compile(rf"^{re.escape(ms.collection_base(self.name))}_[cf]\d{{6}}$")
        for collection in self.client.list_collections():
            if collection not in keep and (collection in retired or own.match(collection)):
                self.client.drop_collection(collection)
        if retired and row is not None:
            self.root.publish(
                self.name, Manifest.from_text(row["manifest"], self.name), row["chunks"], row["files"], []
            )

    def _undo_staged(self) -> None:
        """Forget what a writer of a later generation left unpublished (killed, or discarded)."""
        for collection in (self.chunks, self.files):
            self.client.delete(collection, filter=f"added_gen > {self.live_generation}")
            self._set_removed(collection, f"removed_gen > {self.live_generation}", 0)

    def _collect_garbage(self) -> None:
        """Rows removed before the live generation are invisible to its readers and the previous
        generation's: delete them for good."""
        for collection in (self.chunks, self.files):
            self.client.delete(collection, filter=f"removed_gen > 0 and removed_gen < {self.live_generation}")

    def _set_removed(self, collection: str, expr: str, removed_gen: int) -> int:
        """Rewrite matching rows with another `removed_gen` (Milvus updates by upsert)."""
        rows = ms.query_all(self.client, collection, expr, ["*"])
        for start in range(0, len(rows), _UPSERT_BATCH):
            batch = rows[start : start + _UPSERT_BATCH]
            for r in batch:
                r["removed_gen"] = removed_gen
            self.client.upsert(collection, batch)
        return len(rows)

    # --- the writer operations ---------------------------------------------------------------
    def __enter__(self) -> MilvusWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.committed:
            return
        with contextlib.suppress(Exception):  # best effort: the next writer cleans up anyway
            if self.fresh:
                for collection in (self.chunks, self.files):
                    self.client.drop_collection(collection)
            else:
                self._undo_staged()

    def file_hashes(self) -> dict[str, str]:
        with milvus_errors("query"):
            rows = ms.query_all(self.client, self.files, "removed_gen == 0", ["key", "content_hash"])
        return {row["key"]: row["content_hash"] for row in rows}

    def _remove_rows(self, collection: str, expr: str) -> int:
        """Staged rows go at once; published ones are marked removed in this generation."""
        live = f"({expr}) and removed_gen == 0"
        staged = ms.count(self.client, collection, f"{live} and added_gen == {self.gen}")
        if staged:
            self.client.delete(collection, filter=f"{live} and added_gen == {self.gen}")
        return staged + self._set_removed(collection, f"{live} and added_gen < {self.gen}", self.gen)

    def remove_file(self, key: str) -> int:
        with milvus_errors("write"):
            removed = self._remove_rows(self.chunks, f"file_key == {ms.literal(key)}")
            self._remove_rows(self.files, f"key == {ms.literal(key)}")
        self.changed = True
        return removed

    def add_file(self, key: str, content_hash: str, size: int) -> None:
        _check_bytes(key, ms.KEY_MAX, f"file path {key[:80]}...")
        row = {
            "row": f"{self.gen}|{key}",
            "key": key,
            "content_hash": content_hash,
            "size": size,
            "indexed_at": time.time(),
            "added_gen": self.gen,
            "removed_gen": 0,
            "pad": ms.PAD,
        }
        with milvus_errors("write"):
            self._remove_rows(self.files, f"key == {ms.literal(key)}")  # replaces, like the SQLite table
            self.client.upsert(self.files, [row])
        self.changed = True

    def add_chunks(self, file_key: str, chunks: list[Chunk], vectors: np.ndarray) -> None:
        if not chunks:
            return
        for chunk in chunks:
            _check_bytes(chunk.text, ms.TEXT_MAX, f"chunk {chunk.ordinal} of {chunk.source}")
            _check_bytes(chunk.source, ms.KEY_MAX, f"source name {chunk.source[:80]}...")
        first = self.manifest.next_id
        rows = [
            {
                "id": first + i,
                "vector": vector,
                "file_key": file_key,
                "source": c.source,
                "ordinal": c.ordinal,
                "start": c.start,
                "end": c.end,
                "text": c.text,
                "content_hash": c.content_hash,
                "added_gen": self.gen,
                "removed_gen": 0,
            }
            for i, (c, vector) in enumerate(zip(chunks, np.asarray(vectors, dtype=np.float32).tolist(), strict=True))
        ]
        with milvus_errors("insert"):
            self.client.insert(self.chunks, rows)
        self.manifest.next_id += len(chunks)
        self.changed = True

    def commit(self) -> Manifest:
        """Flush the staged rows, then publish generation G+1 with one upsert."""
        if not self.changed:
            return self.manifest
        m = self.manifest
        visible = ms.visible_at(self.gen)
        with milvus_errors("commit"):
            for collection in (self.chunks, self.files):
                self.client.flush(collection)
            m.files = ms.count(self.client, self.files, visible)
            m.chunks = ms.count(self.client, self.chunks, visible)
            m.generation = self.gen
            m.updated_at = time.time()
            self.root.publish(self.name, m, self.chunks, self.files, self.retired)
        self.committed = True
        return m


def _check_bytes(text: str, limit: int, what: str) -> None:
    size = len(text.encode("utf-8"))
    if size > limit:
        raise IndexError_(
            f"{what} is {size} bytes; the Milvus store keeps at most {limit} per field "
            "(lower index.chunk_words, or use the hnswlib store)"
        )
