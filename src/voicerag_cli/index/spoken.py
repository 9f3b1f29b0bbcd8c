"""Spoken-passage vectors beside the text vectors: each chunk's first words spoken by the TTS and
embedded by the speech embedder, for e2e questions to be compared speech with speech.

The distilled speech head lands in the text embedder's space with errors of its own; a passage
spoken by espeak-ng goes through the same head and picks up similar ones, so an e2e question
fused with both vectors finds what it misses against the text alone (benchmarks/
e2e_spoken_passages.py: RGB-en pooled Hit@5 0.66 -> 0.72, HotpotQA 0.74 -> 0.82, real LibriSpeech
speech finding its own transcript R@1 0.53 -> 0.84). Stored in the generation's `chunks.sqlite`,
so written, fsynced and swapped with everything else; the manifest's `extra["spoken"]` records
how they were made (`recipe`), and vectors made otherwise are never mixed with a question.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

import numpy as np

TABLE = "chunk_spoken"
SCHEMA = f"CREATE TABLE IF NOT EXISTS {TABLE} (id INTEGER PRIMARY KEY, vector BLOB NOT NULL)"
POOL = 50  # e2e candidates (by the text vectors) rescored with their spoken vectors


@runtime_checkable
class SpokenSearcher(Protocol):
    """A reader that may hold spoken vectors: `spoken_recipe` None when it holds none."""

    spoken_recipe: dict[str, object] | None

    def spoken_vectors(self, ids: list[int]) -> dict[int, np.ndarray]: ...


def has_table(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (TABLE,)).fetchone() is not None


def add(db: sqlite3.Connection, ids: Iterable[int], vectors: np.ndarray) -> None:
    rows = ((int(i), np.asarray(v, dtype=np.float32).tobytes()) for i, v in zip(ids, vectors, strict=True))
    db.executemany(f"INSERT OR REPLACE INTO {TABLE} (id, vector) VALUES (?, ?)", rows)


def delete(db: sqlite3.Connection, ids: list[int]) -> None:
    db.executemany(f"DELETE FROM {TABLE} WHERE id = ?", ((i,) for i in ids))


def missing(db: sqlite3.Connection) -> list[tuple[int, str]]:
    """(chunk id, text) of the chunks that have no spoken vector yet, in id order."""
    return db.execute(f"SELECT id, text FROM chunks WHERE id NOT IN (SELECT id FROM {TABLE}) ORDER BY id").fetchall()


def fetch(db: sqlite3.Connection, ids: list[int]) -> dict[int, np.ndarray]:
    placeholders = ",".join("?" * len(ids))
    rows = db.execute(f"SELECT id, vector FROM {TABLE} WHERE id IN ({placeholders})", ids).fetchall()
    return {int(i): np.frombuffer(blob, dtype=np.float32) for i, blob in rows}


def rescore(scores: dict[int, float], spoken: dict[int, float], weight: float) -> list[int]:
    """Ids best first by `(1 - weight) * text score + weight * spoken score`; a chunk without a
    spoken vector keeps its text score."""
    fused = {i: (1 - weight) * s + weight * spoken[i] if i in spoken else s for i, s in scores.items()}
    order = {i: k for k, i in enumerate(scores)}
    return sorted(fused, key=lambda i: (-fused[i], order[i]))
