"""Spoken-passage vectors (`index.spoken`, `index.spoken_passages`): made at index time by real
espeak-ng and the bundled distilled speech head, kept in the generation's SQLite beside the real
hnswlib vectors, and used by e2e questions spoken by espeak-ng."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from voicerag_cli.audio.io import read_audio
from voicerag_cli.config import IndexConfig, load_settings
from voicerag_cli.errors import ConfigError
from voicerag_cli.index import spoken
from voicerag_cli.index.builder import build_index
from voicerag_cli.index.hnsw_store import CHUNKS_DB, IndexRoot
from voicerag_cli.pipeline.ask import AskPipeline
from voicerag_cli.pipeline.spoken_passages import SpokenPassages
from voicerag_cli.registry import Registry

DOCS = Path(__file__).resolve().parents[1] / "examples" / "docs"


def test_rescoring_fuses_both_similarities_and_keeps_the_text_score_without_a_spoken_one() -> None:
    order = spoken.rescore({1: 0.5, 2: 0.4, 3: 0.45}, {1: 0.0, 2: 0.9}, weight=0.5)
    assert order == [2, 3, 1]  # 2: 0.65, 3: 0.45 (no spoken vector), 1: 0.25
    assert spoken.rescore({1: 0.5, 2: 0.4}, {2: 0.9}, weight=0.0) == [1, 2]


def test_the_weight_is_checked() -> None:
    with pytest.raises(ConfigError, match="spoken_weight"):
        load_settings(None, environ={}, overrides={"ask.spoken_weight": 1.5})
    assert not load_settings(None, environ={}).index.spoken_passages


class Counting(SpokenPassages):
    def __init__(self, registry: Registry, version: str = "") -> None:
        super().__init__(registry)
        self.spoken: list[str] = []
        if version:
            self.recipe = {**self.recipe, "format": version}

    def embed_spoken(self, texts: list[str]) -> np.ndarray:
        self.spoken += texts
        return super().embed_spoken(texts)


def _rows(root: IndexRoot, name: str) -> int:
    live = root.live_generation(name)
    assert live is not None
    db = sqlite3.connect(live / CHUNKS_DB)
    try:
        return int(db.execute(f"SELECT COUNT(*) FROM {spoken.TABLE}").fetchone()[0])
    finally:
        db.close()


def test_index_time_vectors_follow_the_chunks_and_serve_e2e(
    tmp_path: Path, registry: Registry, speech: Callable[..., Path]
) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(DOCS, docs)
    extra = docs / "extra.txt"
    root = IndexRoot(tmp_path / "indexes")
    speaker = Counting(registry)
    first = build_index(root, "s", [docs], IndexConfig(), registry.text_embedder, spoken_factory=lambda: speaker)
    assert first.manifest is not None and first.chunks_spoken == first.manifest.chunks > 0
    assert _rows(root, "s") == first.manifest.chunks and first.manifest.extra["spoken"] == speaker.recipe

    # e2e: the spoken question against text and spoken vectors
    clip = read_audio(speech("How long is the river Rhine?"))
    reader = root.open("s")
    try:
        pipeline = AskPipeline(registry, reader, k=3, ef_search=64)
        result = pipeline.ask_audio(clip, "e2e")
        text_only = pipeline.searcher.search(pipeline.speech_query(clip, pipeline.stopwatch()).vector, 3, 64)
    finally:
        reader.close()
    assert "rhine" in result.sources[0].source and result.sources[0].spoken is not None
    assert all(p.spoken is None for p in text_only)
    assert result.to_json()["sources"][0]["spoken"] == round(result.sources[0].spoken, 4)

    # nothing changed: no new generation, nothing spoken
    again = build_index(root, "s", [docs], IndexConfig(), _no_embedder, spoken_factory=lambda: Counting(registry))
    assert again.manifest is not None and again.manifest.generation == first.manifest.generation
    assert again.chunks_spoken == 0

    # a new file: only its chunks are spoken
    extra.write_text("The Danube flows through ten countries into the Black Sea.", encoding="utf-8")
    newer = Counting(registry)
    added = build_index(root, "s", [docs], IndexConfig(), registry.text_embedder, spoken_factory=lambda: newer)
    assert added.chunks_spoken == 1 and newer.spoken == [extra.read_text(encoding="utf-8")]
    # a removed file takes its spoken vectors along
    extra.unlink()
    build_index(root, "s", [docs], IndexConfig(), _no_embedder, spoken_factory=lambda: Counting(registry))
    assert _rows(root, "s") == first.manifest.chunks

    # made another way (a new head, another voice): all spoken again, the text vectors untouched
    remade = build_index(
        root, "s", [docs], IndexConfig(), _no_embedder, spoken_factory=lambda: Counting(registry, "other/1")
    )
    assert remade.chunks_spoken == first.manifest.chunks and remade.chunks_embedded == 0
    reader = root.open("s")
    try:  # vectors made otherwise than this speech embedder would make them are not used
        assert reader.spoken_recipe is not None and reader.spoken_recipe["format"] == "other/1"
        assert all(
            p.spoken is None for p in AskPipeline(registry, reader, k=3, ef_search=64).ask_audio(clip, "e2e").sources
        )
    finally:
        reader.close()

    # switched off: dropped on the next run
    off = build_index(root, "s", [docs], IndexConfig(), _no_embedder)
    assert off.manifest is not None and "spoken" not in off.manifest.extra and _rows(root, "s") == 0


def _no_embedder() -> object:
    raise AssertionError("nothing needed the text embedder")
