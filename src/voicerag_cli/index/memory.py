"""An in-memory hnswlib index over a fixed set of passages, for evaluation corpora that
exist only for one run (e.g. one question's candidate passages)."""

from __future__ import annotations

import sqlite3
from typing import Any

import numpy as np

from voicerag_cli.errors import IndexError_
from voicerag_cli.index import lexical
from voicerag_cli.index.base import ensure_same_space
from voicerag_cli.index.hnsw_store import knn, new_hnsw, similarities
from voicerag_cli.models.base import EmbeddingSpace, Passage


class MemoryIndex:
    def __init__(self, name: str, space: EmbeddingSpace, m: int = 16, ef_construction: int = 200) -> None:
        self.name = name
        self.space = space
        self._m, self._ef_construction = m, ef_construction
        self._sources: list[str] = []
        self._texts: list[str] = []
        self._vectors: list[np.ndarray] = []
        self._hnsw: Any = None  # an hnswlib.Index (untyped), built on the first search
        self._terms = sqlite3.connect(":memory:", check_same_thread=False)
        self._terms.execute(lexical.SCHEMA)
        self._with_terms = 0  # texts whose terms are in `_terms`: made on the first lexical search

    def add(self, sources: list[str], texts: list[str], vectors: np.ndarray) -> None:
        self._sources += sources
        self._texts += texts
        self._vectors.append(np.asarray(vectors, dtype=np.float32))
        self._hnsw = None  # rebuilt on the next search

    def __len__(self) -> int:
        return len(self._texts)

    def check_space(self, space: EmbeddingSpace, role: str) -> None:
        ensure_same_space(self.name, self.space, space, role)

    def _index(self) -> object:
        if not self._texts:
            raise IndexError_(f"index {self.name!r} is empty")
        if self._hnsw is None:
            space = self.space
            self._hnsw = new_hnsw(space.dim, len(self._texts), self._m, self._ef_construction, space.metric)
            self._hnsw.add_items(np.concatenate(self._vectors), np.arange(len(self._texts)), num_threads=1)
        return self._hnsw

    def search(self, vector: np.ndarray, k: int, ef: int) -> list[Passage]:
        labels, scores = knn(self._index(), vector, min(k, len(self._texts)), ef)
        return self._passages(labels, scores)

    def lexical_search(self, text: str, vector: np.ndarray, n: int) -> list[tuple[Passage, float]] | None:
        if self._with_terms < len(self._texts):  # e2e-only runs never pay for the terms
            lexical.add(self._terms, enumerate(self._texts[self._with_terms :], start=self._with_terms))
            self._with_terms = len(self._texts)
        found = lexical.search(self._terms, text, n)
        ids = [i for i, _ in found]
        passages = self._passages(ids, similarities(self._index(), vector, ids))
        return [(p, bm25) for p, (_, bm25) in zip(passages, found, strict=True)]

    def _passages(self, ids: list[int], scores: list[float]) -> list[Passage]:
        return [
            Passage(chunk_id=i, source=self._sources[i], text=self._texts[i], score=s)
            for i, s in zip(ids, scores, strict=True)
        ]
