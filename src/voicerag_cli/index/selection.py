"""Opening the store a parsed `index.store` address (index/base.py, `parse_store`) names: the
hnswlib store under the data dir, or Milvus (pymilvus is imported only then)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voicerag_cli.index.base import StoreRoot, StoreSpec


def open_store(spec: StoreSpec, indexes_dir: Path) -> StoreRoot:
    """The store root for `spec`; hnswlib indexes (and Milvus writer locks) live in `indexes_dir`."""
    if not spec.is_milvus:
        from voicerag_cli.index.hnsw_store import IndexRoot

        return IndexRoot(indexes_dir)
    from voicerag_cli.index.milvus_store import MilvusRoot

    return MilvusRoot(spec, lock_dir=indexes_dir)
