"""The on-disk index: hnswlib vectors + SQLite chunk table + JSON manifest, stored as
immutable generations.

Layout under `<data dir>/indexes/`:

    <name>/CURRENT            the name of the live generation ("gen-000007"), swapped atomically
    <name>/gen-000007/        manifest.json, vectors.hnsw, chunks.sqlite (chunks, files and
                              the chunks' FTS5 terms: `index.lexical`)
    <name>/.staging-*/        a write in progress (deleted if found stale)
    .<name>.lock              writers hold an exclusive flock here

A writer copies the live generation into a staging folder, changes it, fsyncs it, renames it
to the next generation and only then replaces CURRENT. Killing the process at any point leaves
the previous generation live and intact. The generation before the live one is kept, so a
reader that opened it just before the swap can finish.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from voicerag_cli.errors import (
    REFUSED_ERRNOS,
    ConfigError,
    IndexError_,
    StorageError,
    VoiceragError,
    is_disk_full,
    os_reason,
)
from voicerag_cli.index import lexical, spoken
from voicerag_cli.index.base import Manifest, ensure_same_space, writer_lock
from voicerag_cli.index.chunking import Chunk
from voicerag_cli.models.base import EmbeddingSpace, Passage
from voicerag_cli.paths import validate_index_name
from voicerag_cli.structure import searchable_text
from voicerag_cli.structure.layout import dump_layout, load_layout

MANIFEST = "manifest.json"
VECTORS = "vectors.hnsw"
CHUNKS_DB = "chunks.sqlite"
CURRENT = "CURRENT"
MIN_CAPACITY = 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    key TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    indexed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    file_key TEXT NOT NULL REFERENCES files(key),
    source TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    layout TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS chunks_by_file ON chunks(file_key);
"""


def _has_layout(db: sqlite3.Connection) -> bool:
    return any(row[1] == "layout" for row in db.execute("PRAGMA table_info(chunks)"))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _leftovers(base: Path) -> Iterator[Path]:
    """What a killed writer leaves in an index folder: its staging folder, a CURRENT temp file."""
    yield from base.glob(".staging-*")
    yield from base.glob(f".{CURRENT}.*.tmp")


def new_hnsw(dim: int, capacity: int, m: int, ef_construction: int, metric: str = "cosine") -> Any:
    import hnswlib

    index = hnswlib.Index(space=metric, dim=dim)
    index.init_index(max_elements=capacity, ef_construction=ef_construction, M=m, random_seed=100)
    return index


def knn(index: Any, vector: np.ndarray, k: int, ef: int) -> tuple[list[int], list[float]]:
    """Top-k labels and scores (higher is nearer) from an hnswlib index holding at least k live
    items: cosine similarity, or minus the squared L2 distance for an "l2" index."""
    index.set_ef(max(ef, k))
    labels, distances = index.knn_query(vector.reshape(1, -1).astype(np.float32), k=k)
    if index.space == "l2":
        return labels[0].tolist(), (-distances[0]).tolist()
    return labels[0].tolist(), (1.0 - distances[0]).tolist()


def similarities(index: Any, vector: np.ndarray, ids: list[int]) -> list[float]:
    """The scores `knn` would give these stored items (found another way, e.g. lexically)."""
    if not ids:
        return []
    stored = np.asarray(index.get_items(ids), dtype=np.float32)
    query = vector.astype(np.float32).reshape(-1)
    if index.space == "l2":
        return (-((stored - query) ** 2).sum(1)).tolist()
    # hnswlib keeps cosine-space items normalized
    return (stored @ (query / max(float(np.linalg.norm(query)), 1e-12))).tolist()


def _item(index: Any, label: int) -> np.ndarray:
    """An item's stored vector; an empty array for an item marked deleted."""
    try:
        return np.asarray(index.get_items([label]), dtype=np.float32)
    except RuntimeError:  # "Label not found": marked deleted
        return np.empty(0, dtype=np.float32)


def _storage_failure(exc: BaseException | None, where: Path, data_dir: Path) -> VoiceragError | None:
    """The one-line error for an OS-level failure while writing an index, or None for any other
    exception: no space (or an I/O error) is a StorageError naming the index folder; a data dir
    that refuses writes (permission, read-only, name too long) is a ConfigError like the lock's."""
    if exc is None or isinstance(exc, VoiceragError):
        return None
    if is_disk_full(exc):
        reason = os_reason(exc) if isinstance(exc, OSError) else "no space left on device (SQLite: disk is full)"
        return StorageError(f"cannot write index to {where}: {reason}; the live generation is left as it was")
    refused = (isinstance(exc, OSError) and exc.errno in REFUSED_ERRNOS) or (
        isinstance(exc, sqlite3.OperationalError)
        and any(words in str(exc).lower() for words in ("readonly database", "unable to open database"))
    )
    if refused:
        reason = os_reason(exc) if isinstance(exc, OSError) else str(exc)
        return ConfigError(
            f"cannot write indexes to {data_dir} ({where}): {reason} "
            "(choose a writable folder with --data-dir / paths.data_dir)"
        )
    return None


class IndexRoot:
    """All indexes under one data dir (the `StoreRoot` of the embedded hnswlib store)."""

    kind = "hnswlib"
    keeps_terms = True
    keeps_spoken = True

    def __init__(self, root: Path) -> None:
        self.root = root
        for folder in (root.parent, root):
            try:
                unusable = folder.exists() and not folder.is_dir()
            except OSError as exc:  # a name too long, a folder we may not enter
                raise ConfigError(
                    f"cannot use data dir {folder}: {os_reason(exc)} (--data-dir / paths.data_dir)"
                ) from exc
            if unusable:
                raise ConfigError(f"data dir {folder} is not a folder (--data-dir / paths.data_dir)")

    def describe(self) -> str:
        return str(self.root)

    def location(self, name: str) -> str:
        return str(self.path(name))

    def writer(self, manifest: Manifest, rebuild: bool) -> IndexWriter:
        return IndexWriter(self, manifest, rebuild=rebuild)

    def path(self, name: str) -> Path:
        return self.root / validate_index_name(name)

    def live_generation(self, name: str) -> Path | None:
        pointer = self.path(name) / CURRENT
        try:
            generation = pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        folder = self.path(name) / generation
        return folder if (folder / MANIFEST).exists() else None

    def exists(self, name: str) -> bool:
        return self.live_generation(name) is not None

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".") and self.exists(p.name)
        )

    def manifest(self, name: str) -> Manifest:
        folder = self.live_generation(name)
        if folder is None:
            known = ", ".join(self.names()) or "none yet: run `voicerag index PATH`"
            raise IndexError_(f"unknown index {name!r} (known: {known})")
        return Manifest.read(folder / MANIFEST)

    def lock(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Exclusive writer lock; a second writer fails fast instead of waiting silently."""
        lock_path = self.root / f".{validate_index_name(name)}.lock"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            lock_path.open("a").close()
        except OSError as exc:  # /proc, a read-only mount, no permission, a file in the way
            raise ConfigError(
                f"cannot write indexes to {self.root}: {exc.strerror or exc} "
                "(choose a writable folder with --data-dir / paths.data_dir)"
            ) from exc
        return writer_lock(lock_path, name)

    def clean_leftovers(self, name: str) -> None:
        """Remove staging folders and pointer temp files of killed writers, when no writer is
        running (we take its lock without waiting); a reader that cannot write leaves them."""
        base = self.path(name)
        if not base.is_dir() or not any(_leftovers(base)):
            return
        try:
            with self.lock(name):
                for stale in _leftovers(base):
                    if stale.is_dir():
                        shutil.rmtree(stale, ignore_errors=True)
                    else:
                        stale.unlink(missing_ok=True)
        except (IndexError_, ConfigError):  # a writer holds the lock, or the folder is read-only
            return

    def drop(self, name: str) -> None:
        with self.lock(name):
            if not self.path(name).exists():
                raise IndexError_(f"unknown index {name!r}")
            # Rename first (atomic), so a crash mid-delete never leaves a half index under the name.
            trash = self.root / f".trash-{name}-{uuid.uuid4().hex[:8]}"
            self.path(name).rename(trash)
            shutil.rmtree(trash, ignore_errors=True)

    def open(self, name: str) -> IndexReader:
        self.manifest(name)  # raises a clear error for unknown names
        self.clean_leftovers(name)
        folder = self.live_generation(name)
        assert folder is not None
        return IndexReader(folder)


class IndexReader:
    """A read-only view of one generation."""

    def __init__(self, folder: Path) -> None:
        import hnswlib

        self.folder = folder
        self.manifest = Manifest.read(folder / MANIFEST)
        self.db = sqlite3.connect(f"file:{folder / CHUNKS_DB}?mode=ro", uri=True, check_same_thread=False)
        self.hnsw = hnswlib.Index(space=self.manifest.metric, dim=self.manifest.dim)
        if self.manifest.chunks:
            self.hnsw.load_index(str(folder / VECTORS), max_elements=0)
        self.name = self.manifest.name
        self.space = self.manifest.space
        # a generation written before the lexical terms has neither the key nor the table
        self.has_terms = self.manifest.extra.get("lexical") == lexical.TERMS_VERSION and lexical.has_table(self.db)
        self.has_layout = _has_layout(self.db)  # not in a generation written before layouts
        recipe = self.manifest.extra.get("spoken")
        self.spoken_recipe = recipe if isinstance(recipe, dict) and spoken.has_table(self.db) else None

    def close(self) -> None:
        self.db.close()

    def check_space(self, space: EmbeddingSpace, role: str) -> None:
        ensure_same_space(self.name, self.space, space, role)

    def search(self, vector: np.ndarray, k: int, ef: int) -> list[Passage]:
        if self.manifest.chunks == 0:
            raise IndexError_(f"index {self.manifest.name!r} is empty: index some documents first")
        labels, scores = knn(self.hnsw, vector, min(k, self.manifest.chunks), ef)
        return self._passages(labels, scores)

    def lexical_search(self, text: str, vector: np.ndarray, n: int) -> list[tuple[Passage, float]] | None:
        """The `n` best chunks for the text's terms with their BM25 scores, each passage scored
        as `search` scores it (the generator's threshold reads that); None for an index written
        before it had terms."""
        if not self.has_terms:
            return None
        found = dict(lexical.search(self.db, text, n))
        ids = list(found)
        return [(p, found[p.chunk_id]) for p in self._passages(ids, similarities(self.hnsw, vector, ids))]

    def spoken_vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        """The spoken vectors of those chunks that have one (`index.spoken`; see spoken_recipe)."""
        return spoken.fetch(self.db, ids) if self.spoken_recipe is not None and ids else {}

    def _passages(self, ids: list[int], scores: list[float]) -> list[Passage]:
        placeholders = ",".join("?" * len(ids))
        layout = "layout" if self.has_layout else "''"
        rows = self.db.execute(
            f'SELECT id, source, text, start, "end", {layout} FROM chunks WHERE id IN ({placeholders})', ids
        ).fetchall()
        by_id = {row[0]: row for row in rows}
        passages = []
        for i, s in zip(ids, scores, strict=True):
            if i not in by_id:
                continue
            _, source, text, start, end, stored = by_id[i]
            heading_path, blocks = load_layout(stored, len(text))
            passages.append(
                Passage(
                    chunk_id=i,
                    source=source,
                    text=text,
                    score=float(s),
                    start=start,
                    end=end,
                    heading_path=heading_path,
                    blocks=blocks,
                )
            )
        return passages

    def files(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, content_hash FROM files").fetchall())


class IndexWriter:
    """Builds the next generation of an index in a staging folder. Use as a context manager
    while holding `IndexRoot.lock`; `commit()` publishes it, leaving without commit discards it."""

    def __init__(self, root: IndexRoot, manifest: Manifest, rebuild: bool) -> None:
        self.root = root
        self.name = manifest.name
        self.base = root.path(self.name)
        self.staging = self.base / f".staging-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            self._start(manifest, rebuild)
        except BaseException as exc:
            self._discard()
            failure = _storage_failure(exc, self.base, self.root.root)
            if failure is not None:
                raise failure from exc
            raise

    def _start(self, manifest: Manifest, rebuild: bool) -> None:
        root = self.root
        self.base.mkdir(parents=True, exist_ok=True)
        for stale in _leftovers(self.base):  # left by a killed writer; we hold the lock
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
        self.staging.mkdir()
        live = root.live_generation(self.name)
        if live is not None:
            # Keep numbering past the live generation even on --rebuild: it must never be overwritten.
            manifest.generation = Manifest.read(live / MANIFEST).generation
        previous = None if rebuild else live
        self.changed = False
        old_terms = None
        if previous is not None:
            old = Manifest.read(previous / MANIFEST)
            old_terms = old.extra.get("lexical")
            if "spoken" in old.extra:  # the copied chunks' spoken vectors and how they were made
                manifest.extra["spoken"] = old.extra["spoken"]
            manifest.created_at = old.created_at
            manifest.next_id, manifest.capacity = old.next_id, old.capacity
            self._copy_db(previous / CHUNKS_DB)
            import hnswlib

            self.hnsw = hnswlib.Index(space=manifest.metric, dim=manifest.dim)
            if old.capacity:
                self.hnsw.load_index(str(previous / VECTORS), max_elements=old.capacity)
            else:
                self.hnsw = new_hnsw(
                    manifest.dim, MIN_CAPACITY, manifest.hnsw_m, manifest.hnsw_ef_construction, manifest.metric
                )
                manifest.capacity = MIN_CAPACITY
        else:
            manifest.capacity = MIN_CAPACITY
            self.hnsw = new_hnsw(
                manifest.dim, manifest.capacity, manifest.hnsw_m, manifest.hnsw_ef_construction, manifest.metric
            )
            self.changed = True  # a new or rebuilt index is always published
        self.manifest = manifest
        self.db = sqlite3.connect(self.staging / CHUNKS_DB)
        self.db.executescript(_SCHEMA)
        if not _has_layout(self.db):  # copied from a generation written before layouts
            self.db.execute("ALTER TABLE chunks ADD COLUMN layout TEXT NOT NULL DEFAULT ''")
        self.db.execute(spoken.SCHEMA)
        self._ensure_terms(old_terms)

    def _ensure_terms(self, old_terms: str | None) -> None:
        """The chunks' lexical terms, (re)made from the chunk texts when the copied generation
        (its manifest's `old_terms`) has none or older ones: an index written before them gains
        them on its next write."""
        if old_terms != lexical.TERMS_VERSION or not lexical.has_table(self.db):
            self.db.execute(f"DROP TABLE IF EXISTS {lexical.TABLE}")
            self.db.execute(lexical.SCHEMA)
            rows = self.db.execute("SELECT id, text, layout FROM chunks").fetchall()
            lexical.add(
                self.db, ((i, searchable_text(text, load_layout(layout, len(text))[0])) for i, text, layout in rows)
            )
            self.changed = True
        self.manifest.extra["lexical"] = lexical.TERMS_VERSION

    def _copy_db(self, source: Path) -> None:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        dst = sqlite3.connect(self.staging / CHUNKS_DB)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()

    def __enter__(self) -> IndexWriter:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        """Discard the staging folder (after a commit it is gone already); an OS-level failure
        of a write (disk full, read-only, no permission) becomes a one-line error naming the
        index folder."""
        self._discard()
        failure = _storage_failure(exc, self.base, self.root.root) if exc is not None else None
        if failure is not None:
            raise failure from exc

    def _discard(self) -> None:
        db: sqlite3.Connection | None = getattr(self, "db", None)
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()
        if self.staging.exists():
            shutil.rmtree(self.staging, ignore_errors=True)

    def file_hashes(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, content_hash FROM files").fetchall())

    def remove_file(self, key: str) -> int:
        ids = [row[0] for row in self.db.execute("SELECT id FROM chunks WHERE file_key = ?", (key,))]
        for chunk_id in ids:
            self.hnsw.mark_deleted(chunk_id)
        lexical.delete(self.db, ids)
        spoken.delete(self.db, ids)
        self.db.execute("DELETE FROM chunks WHERE file_key = ?", (key,))
        self.db.execute("DELETE FROM files WHERE key = ?", (key,))
        self.changed = True
        return len(ids)

    def add_file(self, key: str, content_hash: str, size: int) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO files (key, content_hash, size, indexed_at) VALUES (?, ?, ?, ?)",
            (key, content_hash, size, time.time()),
        )
        self.changed = True

    def add_chunks(self, file_key: str, chunks: list[Chunk], vectors: np.ndarray) -> None:
        if not chunks:
            return
        ids = np.arange(self.manifest.next_id, self.manifest.next_id + len(chunks), dtype=np.int64)
        needed = self.hnsw.get_current_count() + len(chunks)
        if needed > self.manifest.capacity:
            self.manifest.capacity = max(needed, self.manifest.capacity * 2)
            self.hnsw.resize_index(self.manifest.capacity)
        self.hnsw.add_items(vectors.astype(np.float32), ids)
        self.db.executemany(
            'INSERT INTO chunks (id, file_key, source, ordinal, start, "end", text, content_hash, layout) '
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    int(i),
                    file_key,
                    c.source,
                    c.ordinal,
                    c.start,
                    c.end,
                    c.text,
                    c.content_hash,
                    dump_layout(c.heading_path, c.blocks) if c.blocks else "",
                )
                for i, c in zip(ids, chunks, strict=True)
            ],
        )
        lexical.add(self.db, ((int(i), c.searchable_text) for i, c in zip(ids, chunks, strict=True)))
        self.manifest.next_id += len(chunks)
        self.changed = True

    # --- spoken-passage vectors (`index.spoken`) ----------------------------------------
    def spoken_missing(self) -> list[tuple[int, str]]:
        return spoken.missing(self.db)

    def add_spoken(self, ids: list[int], vectors: np.ndarray, recipe: dict[str, object]) -> None:
        spoken.add(self.db, ids, vectors)
        self.manifest.extra["spoken"] = recipe
        self.changed = True

    def drop_spoken(self) -> None:
        """Forget every spoken vector (they were made another way, or are no longer wanted)."""
        self.db.execute(f"DELETE FROM {spoken.TABLE}")
        self.manifest.extra.pop("spoken", None)
        self.changed = True

    def commit(self) -> Manifest:
        """Publish the staged generation atomically. Returns the live manifest."""
        if not self.changed:
            return self.manifest
        self.db.commit()
        m = self.manifest
        m.files = self.db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
        m.chunks = self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        m.generation += 1
        m.updated_at = time.time()
        self.db.close()
        # hnswlib's save_index() on a full disk writes a truncated file and raises nothing: every
        # file is checked before the generation can become live.
        self.hnsw.save_index(str(self.staging / VECTORS))
        (self.staging / MANIFEST).write_text(m.to_json(), encoding="utf-8")
        for path in self.staging.iterdir():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
        self._verify(m)
        final = self.base / f"gen-{m.generation:06d}"
        if final.exists():  # a leftover from a run killed between rename and CURRENT swap
            shutil.rmtree(final)
        self.staging.rename(final)
        try:
            _fsync_dir(self.base)
            _write_atomic(self.base / CURRENT, final.name)
        except BaseException:
            if self.root.live_generation(self.name) != final:  # not published: leave nothing behind
                shutil.rmtree(final, ignore_errors=True)
            raise
        self._prune(keep={final.name, f"gen-{m.generation - 1:06d}"})
        return m

    def _verify(self, m: Manifest) -> None:
        """Check the staged generation as a reader will open it: the manifest reads back as
        written, the vector file has at least the size its items need and reloads with the same
        items, the chunk database passes SQLite's quick check and holds the counted rows. A
        failure is a StorageError; CURRENT is not touched."""
        import hnswlib

        def refuse(what: str) -> StorageError:
            return StorageError(
                f"cannot write index {self.name!r} to {self.base}: {what} did not read back as written "
                "(disk full or failing?); the live generation is left as it was"
            )

        manifest_path, vectors_path = self.staging / MANIFEST, self.staging / VECTORS
        if manifest_path.read_text(encoding="utf-8") != m.to_json():
            raise refuse(MANIFEST)
        count = self.hnsw.element_count
        # hnswlib's layout: a 96-byte header, then per item its vector, label and level-0 links
        least = 96 + count * (4 * self.hnsw.dim + 8 + 4 + 4 * (2 * self.hnsw.M + 1))
        if vectors_path.stat().st_size < least:
            raise refuse(VECTORS)
        reloaded = hnswlib.Index(space=m.metric, dim=m.dim)
        try:
            reloaded.load_index(str(vectors_path), max_elements=0)
        except RuntimeError as exc:
            raise refuse(VECTORS) from exc
        labels = self.hnsw.get_ids_list()
        if reloaded.element_count != count or sorted(reloaded.get_ids_list()) != sorted(labels):
            raise refuse(VECTORS)
        for label in labels[:: max(1, len(labels) // 32)]:  # a sample: same vector, same deletion mark
            if not np.array_equal(_item(reloaded, label), _item(self.hnsw, label)):
                raise refuse(VECTORS)
        db = sqlite3.connect(f"file:{self.staging / CHUNKS_DB}?mode=ro", uri=True)
        try:
            ok = db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
            counted = (
                db.execute("SELECT COUNT(*) FROM files").fetchone()[0],
                db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0],
            )
        except sqlite3.DatabaseError as exc:
            raise refuse(CHUNKS_DB) from exc
        finally:
            db.close()
        if not ok or counted != (m.files, m.chunks):
            raise refuse(CHUNKS_DB)

    def _prune(self, keep: set[str]) -> None:
        for old in self.base.glob("gen-*"):
            if old.name not in keep:
                shutil.rmtree(old, ignore_errors=True)
