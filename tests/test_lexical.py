"""Lexical retrieval (index.lexical) on real SQLite FTS5 and hnswlib files: Chinese found through
pinyin when the transcript wrote other characters of the same sound, fused with the vectors by
the ask pipeline, kept in step with the chunks, and added to an index written before it."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from voicerag_cli.config import IndexConfig
from voicerag_cli.index import lexical
from voicerag_cli.index.builder import build_index
from voicerag_cli.index.hnsw_store import CHUNKS_DB, MANIFEST, IndexRoot
from voicerag_cli.index.memory import MemoryIndex
from voicerag_cli.pipeline.ask import AskPipeline
from voicerag_cli.registry import Registry

DOCS = {
    "temple.txt": "印控克什米尔地区一座寺庙发生踩踏事故，死亡人数升至十二人。",
    "tea.txt": "杭州西湖龙井茶是中国十大名茶之一，产于西湖周围的群山。",
    "rail.txt": "春运期间火车票提前十五天开售，旅客可以在网上购票。",
    "film.txt": "2021年中国电影市场总票房达到四百七十二亿元。",
    "chip.txt": "苹果公司M1芯片的首席设计师离开后加入了英特尔。",
    "rhine.txt": "The Rhine flows from the Swiss Alps through Germany to the North Sea.",
}
# Whisper's transcript of the temple question: 寺庙 (si miao) heard as 四秒, 事故 (shi gu) as 试过
HEARD = "印控克什米尔地区四秒踩踏试过死亡人数"


def test_chinese_is_pinyin_and_pairs_other_text_words() -> None:
    assert lexical.terms("寺庙踩踏 in Kashmir, 2021年!") == [
        *("si", "miao", "cai", "ta", "simiao", "miaocai", "caita"),
        *("in", "kashmir", "2021", "nian"),
    ]
    assert lexical.terms("四秒") == lexical.terms("寺庙")  # the homophone: same terms
    assert lexical.match_expression("?! ...") is None


def test_query_text_is_never_read_as_fts5_syntax() -> None:
    db = sqlite3.connect(":memory:")
    db.execute(lexical.SCHEMA)
    lexical.add(db, [(1, "rhine NEAR sea"), (2, "other text")])
    for text in ['"rhine" OR', "NEAR(rhine sea)", "rhine*", "-sea ^", 'a"b']:
        lexical.search(db, text, 5)  # raises sqlite3.OperationalError if parsed as syntax
    assert [i for i, _ in lexical.search(db, 'NEAR("rhine")', 5)] == [1]


def test_a_questions_function_words_do_not_rank_a_chatty_page_first() -> None:
    """In a small folder "I" and "do" are rare, so BM25 weighed them high and ranked a code of
    conduct first for a how-to question (the marshmallow docs trial): the query leaves them out."""
    db = sqlite3.connect(":memory:")
    db.execute(lexical.SCHEMA)
    chatty = "I do not know what I do. Do you? I think I do, and I can do what I should do."
    serialize = "Call dump on a schema to serialize an object into a dict of primitive types."
    lexical.add(db, [(1, chatty), (2, serialize), (3, "Fields map attribute names to types.")])
    assert [i for i, _ in lexical.search(db, "How do I serialize an object to a dictionary?", 5)] == [2]
    assert lexical.match_expression("How do I serialize it?") == '"serialize"'
    assert lexical.match_expression("What is it?") == '"what" OR "is" OR "it"'  # nothing else to ask with
    # pinyin syllables that spell English function words stay: 有 "you", 安 "an", 参 "can"
    assert (
        lexical.match_expression("有安全吗 can you")
        == '"you" OR "an" OR "quan" OR "ma" OR "youan" OR "anquan" OR "quanma"'
    )


def test_fusion_scales_each_side_and_weights_the_lexical_one() -> None:
    dense = {1: 0.9, 2: 0.8, 3: 0.7}
    found = {3: 12.0, 4: 2.0}
    assert lexical.fuse(dense, found, 0.0)[:3] == [1, 2, 3]
    assert lexical.fuse(dense, found, 0.7)[0] == 3  # 0.3 * 0 + 0.7 * 1 beats 0.3 * 1
    assert set(lexical.fuse(dense, found, 0.5)) == {1, 2, 3, 4}
    assert lexical.fuse(dense, {}, 0.5) == [1, 2, 3]


def _docs(folder: Path) -> Path:
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _terms_rows(root: IndexRoot, name: str) -> tuple[int, int]:
    folder = root.live_generation(name)
    assert folder is not None
    db = sqlite3.connect(f"file:{folder / CHUNKS_DB}?mode=ro", uri=True)
    try:
        chunks = db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        terms = db.execute(f"SELECT COUNT(*) FROM {lexical.TABLE}").fetchone()[0]
        return chunks, terms
    finally:
        db.close()


def _pipeline(registry: Registry, searcher: object, weight: float) -> AskPipeline:
    ask = dataclasses.replace(registry.settings.ask, lexical_weight=weight)
    registry.settings = dataclasses.replace(registry.settings, ask=ask)
    return AskPipeline(registry, searcher, k=3, ef_search=64)  # type: ignore[arg-type]


@pytest.fixture
def restore_settings(registry: Registry):  # type: ignore[no-untyped-def]
    before = registry.settings
    yield
    registry.settings = before


def test_a_homophone_transcript_finds_its_passage_through_pinyin(
    tmp_path: Path, registry: Registry, restore_settings: None
) -> None:
    root = IndexRoot(tmp_path / "indexes")
    docs = _docs(tmp_path / "docs")
    build_index(root, "zh", [docs], IndexConfig(), registry.text_embedder)
    assert _terms_rows(root, "zh") == (6, 6)
    reader = root.open("zh")
    try:
        pipeline = _pipeline(registry, reader, 0.7)
        watch = pipeline.stopwatch()
        query = pipeline.text_query(HEARD, watch)
        found = reader.lexical_search(HEARD, query.vector, 5)
        assert found is not None and found[0][0].source.endswith("temple.txt")
        # the lexical hit carries the score the vector search gives the same chunk
        dense = {p.chunk_id: p.score for p in reader.search(query.vector, 6, 64)}
        assert found[0][0].score == pytest.approx(dense[found[0][0].chunk_id], abs=1e-5)

        fused = pipeline.retrieve(query, watch)
        assert fused[0].source.endswith("temple.txt") and fused[0].lexical == pytest.approx(found[0][1])
        vectors_alone = _pipeline(registry, reader, 0.0).retrieve(query, watch)
        assert [p.chunk_id for p in vectors_alone] == list(dense)[:3]
        assert all(p.lexical is None for p in vectors_alone)
        english = pipeline.retrieve(pipeline.text_query("Where does the Rhine flow?", watch), watch)
        assert english[0].source.endswith("rhine.txt")
    finally:
        reader.close()

    (docs / "temple.txt").unlink()  # its terms go with its chunks
    build_index(root, "zh", [docs], IndexConfig(), registry.text_embedder)
    assert _terms_rows(root, "zh") == (5, 5)
    reader = root.open("zh")
    try:
        found = reader.lexical_search(HEARD, np.ones(reader.manifest.dim, np.float32), 5)
        assert found is not None and not any(p.source.endswith("temple.txt") for p, _ in found)
    finally:
        reader.close()


def test_an_index_written_before_terms_gains_them_on_its_next_run(
    tmp_path: Path, registry: Registry, restore_settings: None
) -> None:
    root = IndexRoot(tmp_path / "indexes")
    docs = _docs(tmp_path / "docs")
    build_index(root, "old", [docs], IndexConfig(), registry.text_embedder)
    live = root.live_generation("old")
    assert live is not None
    # what an index of the previous release looks like: no terms table, no "lexical" in the manifest
    db = sqlite3.connect(live / CHUNKS_DB)
    db.execute(f"DROP TABLE {lexical.TABLE}")
    db.commit()
    db.close()
    manifest = json.loads((live / MANIFEST).read_text(encoding="utf-8"))
    del manifest["extra"]["lexical"]
    (live / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")

    reader = root.open("old")
    try:
        assert reader.lexical_search(HEARD, np.ones(reader.manifest.dim, np.float32), 5) is None
        pipeline = _pipeline(registry, reader, 0.7)  # asks still work: by the vectors alone
        watch = pipeline.stopwatch()
        assert len(pipeline.retrieve(pipeline.text_query(HEARD, watch), watch)) == 3
    finally:
        reader.close()

    report = build_index(root, "old", [docs], IndexConfig(), registry.text_embedder)
    assert report.chunks_embedded == 0 and report.manifest is not None  # nothing re-embedded
    assert report.manifest.extra["lexical"] == lexical.TERMS_VERSION
    assert _terms_rows(root, "old") == (6, 6)
    reader = root.open("old")
    try:
        found = reader.lexical_search(HEARD, np.ones(reader.manifest.dim, np.float32), 1)
        assert found is not None and found[0][0].source.endswith("temple.txt")
    finally:
        reader.close()


def test_the_eval_memory_index_fuses_the_same_way(registry: Registry, restore_settings: None) -> None:
    embedder = registry.text_embedder()
    index = MemoryIndex("pooled", embedder.space)
    index.add(list(DOCS), list(DOCS.values()), embedder.embed_texts(list(DOCS.values())))
    pipeline = _pipeline(registry, index, 0.7)
    watch = pipeline.stopwatch()
    assert pipeline.retrieve(pipeline.text_query(HEARD, watch), watch)[0].source == "temple.txt"
