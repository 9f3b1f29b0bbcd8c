"""The default text embedder (`minilm`) runs all-MiniLM-L6-v2 in numpy, without torch; its
vectors must equal sentence-transformers' (the `sentence-transformers` backend) so that an index
built by either is searched by the other. Checked on real texts: the demo documents, RGB
passages in English and Chinese, and a passage longer than the 256-token limit."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from voicerag_cli.config import Settings
from voicerag_cli.models.bert_weights import weights_file
from voicerag_cli.models.numpy_sentence_embedder import NumpySentenceEmbedder, create, unsupported_reason
from voicerag_cli.models.sentence_embedder import SentenceEmbedder, model_folder
from voicerag_cli.registry import Registry
from vrtest import EXAMPLES, SHARED, run_cli

TOLERANCE = 1e-4


def real_texts() -> list[str]:
    texts = [p.read_text(encoding="utf-8") for p in sorted(EXAMPLES.iterdir()) if p.suffix in {".md", ".txt"}]
    texts += ["who invented the safety bicycle?", "Rhine", "", "   ", "日本の首都は東京です。", "e.g. v1.2.3 -> 4.5"]
    rgb = SHARED / "data" / "rgb"
    for name in ("en_fact.json", "zh_refine.json"):
        if (rgb / name).is_file():
            with (rgb / name).open(encoding="utf-8") as handle:
                for _, line in zip(range(6), handle, strict=False):
                    record = json.loads(line)
                    texts += [record["query"], *record["positive"][:2]]
    return [*texts, " ".join(texts)]  # the last runs past the 256-token limit, ../shared or not


@pytest.fixture(scope="module")
def torch_embedder() -> SentenceEmbedder:
    return SentenceEmbedder(*model_folder(Settings()))


@pytest.mark.slow
def test_default_backend_is_numpy_and_matches_sentence_transformers(torch_embedder: SentenceEmbedder) -> None:
    embedder = Registry(Settings()).text_embedder()
    assert isinstance(embedder, NumpySentenceEmbedder)
    assert embedder.space == torch_embedder.space
    texts = real_texts()
    # Whole documents run past the 256-token limit: truncation is exercised.
    assert max(len(embedder.token_ids([t])[0]) for t in texts) == embedder.max_tokens
    ours = embedder.embed_texts(texts, batch_size=8)
    theirs = torch_embedder.embed_texts(texts, batch_size=8)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape == (len(texts), 384)
    assert np.abs(ours - theirs).max() < TOLERANCE
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    # A text's vector does not depend on its batch neighbours (padding is masked out).
    alone = np.stack([embedder.embed_texts([t])[0] for t in texts[:6]])
    assert np.abs(alone - ours[:6]).max() < TOLERANCE


@pytest.mark.slow
def test_index_built_with_torch_is_searched_by_the_numpy_query_path(tmp_path: Path) -> None:
    """Indexing vectors (sentence-transformers backend, through the CLI, stored in hnswlib)
    equal the default query path's vectors for the same chunk texts."""
    docs = tmp_path / "docs"
    shutil.copytree(EXAMPLES, docs)
    built = run_cli("index", docs, "--json", env={"VOICERAG_MODELS__TEXT_EMBEDDER": "sentence-transformers"})
    assert built.code == 0, built
    folder = Path(built.json()["path"])
    generation = folder / (folder / "CURRENT").read_text().strip()
    import hnswlib

    from voicerag_cli.structure import searchable_text
    from voicerag_cli.structure.layout import load_layout

    with sqlite3.connect(generation / "chunks.sqlite") as db:
        rows = db.execute("SELECT id, text, layout FROM chunks ORDER BY id").fetchall()
    assert len(rows) == built.json()["chunks"] > 3
    stored = hnswlib.Index(space="cosine", dim=384)
    stored.load_index(str(generation / "vectors.hnsw"))
    indexed = np.asarray(stored.get_items([i for i, _, _ in rows]), dtype=np.float32)
    # what was embedded: each chunk's text led by its innermost headings
    embedded = [searchable_text(text, load_layout(layout, len(text))[0]) for _, text, layout in rows]
    query = Registry(Settings()).text_embedder().embed_texts(embedded)
    assert np.abs(indexed - query).max() < TOLERANCE

    # The CLI with the default (numpy) backend answers from that index.
    asked = run_cli("ask", "--text", "Who received a Nobel prize for decoding the honey bee dance?", "--json")
    assert asked.code == 0, asked
    top = asked.json()["sources"][0]
    assert Path(top["source"]).name == "honeybees.md"
    assert asked.json()["models"]["text_embedder"] == "minilm"


def copy_model(tmp_path: Path) -> Path:
    source, _ = model_folder(Settings())
    target = tmp_path / "model"
    shutil.copytree(source, target)
    return target


def test_only_plain_mean_pooled_bert_folders_run_in_numpy(tmp_path: Path) -> None:
    folder = copy_model(tmp_path)
    assert unsupported_reason(folder) is None
    pooling = folder / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    pooling.write_text(json.dumps({**config, "pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}))
    assert "pooling" in (unsupported_reason(folder) or "")
    pooling.write_text(json.dumps(config))
    modules = json.loads((folder / "modules.json").read_text())
    dense = {"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"}
    (folder / "modules.json").write_text(json.dumps([*modules, dense]))
    assert "Dense" in (unsupported_reason(folder) or "")
    (folder / "modules.json").write_text(json.dumps(modules))
    weights = weights_file(folder)
    assert weights is not None
    weights.unlink()
    assert "model.safetensors" in (unsupported_reason(folder) or "")


def test_other_folders_fall_back_to_sentence_transformers(tmp_path: Path, torch_embedder: SentenceEmbedder) -> None:
    """A CLS-pooled model folder is run by sentence-transformers, in the folder's own space."""
    folder = copy_model(tmp_path)
    pooling = folder / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    pooling.write_text(json.dumps({**config, "pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}))
    embedder = create(Settings().updated({"text_embedder.model_path": str(folder)}), None)
    assert isinstance(embedder, SentenceEmbedder)
    assert embedder.space.space_id == "sentence-transformers/model"
    texts = ["who invented the safety bicycle?", "The Rhine flows into the North Sea."]
    cls_vectors = embedder.embed_texts(texts)
    mean_vectors = torch_embedder.embed_texts(texts)
    assert np.abs(cls_vectors - mean_vectors).max() > 0.01  # really CLS pooling, not the numpy path
