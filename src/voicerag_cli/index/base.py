"""The index store interface: what the builder writes through and what `ask` searches.

Two implementations: `store.IndexRoot` (hnswlib + SQLite generations under the data dir, the
default) and `milvus_store.MilvusRoot` (a Milvus server or a local milvus-lite folder).
`selection.open_store` picks one from the `index.store` setting.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np

    from voicerag_cli.index.chunking import Chunk
    from voicerag_cli.index.store import Manifest
    from voicerag_cli.models.base import EmbeddingSpace, Passage


class StoreReader(Protocol):
    """One published state of an index; satisfies the pipeline's `Searcher`."""

    name: str
    space: EmbeddingSpace
    manifest: Manifest

    def check_space(self, space: EmbeddingSpace, role: str) -> None: ...

    def search(self, vector: np.ndarray, k: int, ef: int) -> list[Passage]: ...

    def files(self) -> dict[str, str]:
        """Indexed file key -> content hash."""
        ...

    def close(self) -> None: ...


class StoreWriter(Protocol):
    """Stages the next state of an index. Nothing is visible to readers before `commit()`;
    leaving the context without commit discards the staged changes."""

    manifest: Manifest

    def __enter__(self) -> StoreWriter: ...

    def __exit__(self, *exc: object) -> None: ...

    def file_hashes(self) -> dict[str, str]: ...

    def remove_file(self, key: str) -> int:
        """Remove a file's record and its chunks; returns how many chunks went."""
        ...

    def add_file(self, key: str, content_hash: str, size: int) -> None: ...

    def add_chunks(self, file_key: str, chunks: list[Chunk], vectors: np.ndarray) -> None: ...

    def commit(self) -> Manifest:
        """Publish atomically; returns the live manifest."""
        ...


class StoreRoot(Protocol):
    """All indexes of one store location."""

    kind: str  # "hnswlib" or "milvus"

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
