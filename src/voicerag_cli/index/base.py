"""What every index store shares: the store interface (what the builder writes through and
what `ask` searches), the manifest, the writer lock, the embedding-space check, and the store
address (`index.store` / `--store`), parsed once per command.

Two implementations stand beside each other: `hnsw_store.IndexRoot` (hnswlib + SQLite
generations under the data dir, the default) and `milvus_store.MilvusRoot` (a Milvus server or
a local milvus-lite folder). `selection.open_store` picks one for a parsed address.

Store addresses:

    ""  or "hnswlib"                      the embedded hnswlib + SQLite store under the data dir
    milvus://[user:password@]host:port[/collection]
    milvuss://...                          the same over TLS
    milvus-lite:PATH.db                    a local milvus-lite folder, started in-process

A collection in a `milvus://` address names the index (it takes the place of `index.name`).
Nothing here imports numpy, hnswlib or pymilvus.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from voicerag_cli.config import redact_url
from voicerag_cli.errors import ConfigError, IndexError_
from voicerag_cli.models.base import EmbeddingSpace
from voicerag_cli.paths import validate_index_name

if TYPE_CHECKING:
    from types import TracebackType

    import numpy as np

    from voicerag_cli.index.chunking import Chunk
    from voicerag_cli.models.base import Passage

FORMAT_VERSION = 1


@contextlib.contextmanager
def writer_lock(lock_path: Path, name: str) -> Iterator[None]:
    """Hold an exclusive flock on `lock_path` for index `name`; a second writer fails fast (every store uses it)."""
    with lock_path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise IndexError_(f"index {name!r} is being written by another voicerag process") from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class Manifest:
    name: str
    space_id: str
    dim: int
    chunk_words: int
    overlap_words: int
    hnsw_m: int
    hnsw_ef_construction: int
    generation: int = 0
    files: int = 0
    chunks: int = 0
    capacity: int = 0
    next_id: int = 0
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    metric: str = "cosine"
    format: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the text language

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise IndexError_(f"index manifest {path} is unreadable: {exc}") from exc
        return cls.from_text(text, where=str(path.parent))

    @classmethod
    def from_text(cls, text: str, where: str) -> Manifest:
        """Parse a manifest's JSON; `where` names the index in error messages."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise IndexError_(f"index manifest of {where} is unreadable: {exc}") from exc
        if data.get("format") != FORMAT_VERSION:
            raise IndexError_(f"index at {where} has format {data.get('format')}; this voicerag reads {FORMAT_VERSION}")
        known = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in data.items() if key in known})

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True)

    @property
    def space(self) -> EmbeddingSpace:
        return EmbeddingSpace(self.space_id, self.dim, self.metric)


def ensure_same_space(index_name: str, index_space: EmbeddingSpace, space: EmbeddingSpace, role: str) -> None:
    if space != index_space:
        raise IndexError_(
            f"index {index_name!r} holds {index_space.space_id} vectors (dim {index_space.dim}) "
            f"but the {role} produces {space.space_id} (dim {space.dim}); re-index with that embedder "
            "or choose a matching backend"
        )


FORMS = "'hnswlib', 'milvus://host:port[/collection]' or 'milvus-lite:PATH.db'"


@dataclass(frozen=True)
class StoreSpec:
    kind: str  # "hnswlib", "milvus" or "milvus-lite"
    uri: str = ""  # what pymilvus connects to: http(s)://host:port, or the milvus-lite folder
    token: str = ""  # "user:password" for a server with authentication
    collection: str | None = None  # the index name, when the address names one
    text: str = ""  # as the user wrote it, without the password

    @property
    def is_milvus(self) -> bool:
        return self.kind != "hnswlib"


def parse_store(text: str, key: str = "index.store") -> StoreSpec:
    value = text.strip()
    if value in {"", "hnswlib"}:
        return StoreSpec("hnswlib", text="hnswlib")
    if value.startswith("milvus-lite:"):
        path = value[len("milvus-lite:") :]
        if not path.endswith(".db"):
            raise ConfigError(key=key, detail=f"a milvus-lite store is a path ending in .db, got {value!r}")
        resolved = str(Path(path).expanduser().resolve())
        return StoreSpec("milvus-lite", uri=resolved, text=f"milvus-lite:{resolved}")
    if value.startswith(("milvus://", "milvuss://")):
        return _parse_server(value, key)
    raise ConfigError(key=key, detail=f"unknown store {redact_url(value)!r}; use {FORMS}")


def _parse_server(value: str, key: str) -> StoreSpec:
    shown_value = redact_url(value)
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket: milvus://[::1:9
        raise ConfigError(key=key, detail=f"malformed address {shown_value!r} ({exc})") from exc
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(key=key, detail=f"bad port in {shown_value!r}") from exc
    if not hostname or port is None:
        raise ConfigError(key=key, detail="a Milvus address needs host and port, e.g. milvus://localhost:19530")
    collection = parts.path.strip("/") or None
    if collection is not None:
        if "/" in collection:
            raise ConfigError(key=key, detail=f"one collection name after host:port, got {parts.path!r}")
        validate_index_name(collection, key=key)
    scheme = "https" if parts.scheme == "milvuss" else "http"
    host = f"[{hostname}]" if ":" in hostname else hostname
    token = ""
    if parts.username is not None:
        token = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    shown = f"{parts.scheme}://{host}:{port}" + (f"/{collection}" if collection else "")
    return StoreSpec("milvus", uri=f"{scheme}://{host}:{port}", token=token, collection=collection, text=shown)


class StoreReader(Protocol):
    """One published state of an index; satisfies the pipeline's `Searcher`."""

    name: str
    space: EmbeddingSpace
    manifest: Manifest

    def check_space(self, space: EmbeddingSpace, role: str) -> None: ...

    def search(self, vector: np.ndarray, k: int, ef: int) -> list[Passage]: ...

    def lexical_search(self, text: str, vector: np.ndarray, n: int) -> list[tuple[Passage, float]] | None:
        """The `n` best chunks for the text's terms (`index.lexical`) with their BM25 scores,
        each passage scored as `search` would score it; None where the store keeps no terms."""
        ...

    def files(self) -> dict[str, str]:
        """Indexed file key -> content hash."""
        ...

    def close(self) -> None: ...


class StoreWriter(Protocol):
    """Stages the next state of an index. Nothing is visible to readers before `commit()`;
    leaving the context without commit discards the staged changes."""

    manifest: Manifest

    def __enter__(self) -> StoreWriter: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def file_hashes(self) -> dict[str, str]: ...

    def remove_file(self, key: str) -> int:
        """Remove a file's record and its chunks; returns how many chunks went."""
        ...

    def add_file(self, key: str, content_hash: str, size: int) -> None: ...

    def add_chunks(self, file_key: str, chunks: list[Chunk], vectors: np.ndarray) -> None: ...

    def commit(self) -> Manifest:
        """Publish atomically; returns the live manifest."""
        ...


class SpokenPassageEmbedder(Protocol):
    """Makes chunks' spoken-passage vectors (`index.spoken`): speaks and embeds their texts."""

    recipe: dict[str, object]  # how: recorded in the manifest, compared before vectors mix

    def embed_spoken(self, texts: list[str]) -> np.ndarray: ...


@runtime_checkable
class SpokenWriter(Protocol):
    """A writer whose store keeps spoken-passage vectors (hnswlib's)."""

    def spoken_missing(self) -> list[tuple[int, str]]: ...

    def add_spoken(self, ids: list[int], vectors: np.ndarray, recipe: dict[str, object]) -> None: ...

    def drop_spoken(self) -> None: ...


class StoreRoot(Protocol):
    """All indexes of one store location."""

    kind: str  # "hnswlib" or "milvus"
    keeps_terms: bool  # whether its indexes keep lexical terms (`index.lexical`)
    keeps_spoken: bool  # whether its indexes keep spoken-passage vectors (`index.spoken`)

    def describe(self) -> str:
        """Where the indexes live, for people (a folder or a Milvus URI)."""
        ...

    def location(self, name: str) -> str: ...

    def lock(self, name: str) -> AbstractContextManager[None]:
        """The writer lock of one index; a second writer fails fast."""
        ...

    def exists(self, name: str) -> bool: ...

    def names(self) -> list[str]: ...

    def manifest(self, name: str) -> Manifest: ...

    def drop(self, name: str) -> None: ...

    def open(self, name: str) -> StoreReader: ...

    def writer(self, manifest: Manifest, rebuild: bool) -> StoreWriter: ...
