"""The speech bridge (head -> MiniLM's own BERT layers): the numpy inference against the torch
module it is trained as, and a head saved by the training pipeline in parts, merged and loaded
by the real backend with the bundled Whisper front-end and espeak-ng speech."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voicerag_cli.config import Settings
from voicerag_cli.models.base import EmbeddingSpace
from voicerag_cli.models.bert_numpy import NumpyBert
from voicerag_cli.models.bert_weights import read_float32
from voicerag_cli.models.distilled.bridge import NumpySpeechBridge
from voicerag_cli.models.distilled.head import BRIDGE_FORMAT, HeadFile, read_head_file
from voicerag_cli.models.sentence_embedder import MINILM_SPACE_ID, minilm_weights

torch = pytest.importorskip("torch")

MINILM_DIR = Path(minilm_weights(Settings()).location)


def _minilm() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    tensors = {k.removeprefix("bert."): v for k, v in read_float32(MINILM_DIR).items()}
    return tensors, json.loads((MINILM_DIR / "config.json").read_text(encoding="utf-8"))


def _bridge(tune_bert: bool, seed: int = 0) -> Any:
    from training.speech.bridge import BridgeConfig, SpeechBridge

    torch.manual_seed(seed)
    model = SpeechBridge(BridgeConfig(layers=2, tune_bert=tune_bert), *_minilm()).eval()
    if tune_bert:  # stand-in for fine-tuning: the shipped layers must be the ones that run
        with torch.no_grad():
            for parameter in model.bert.parameters():
                parameter.add_(0.02 * torch.randn_like(parameter))
    return model


@pytest.mark.parametrize(("frames", "tune_bert"), [(37, True), (181, False), (248, True)])
def test_numpy_bridge_equals_the_torch_bridge(frames: int, tune_bert: bool) -> None:
    model = _bridge(tune_bert, seed=frames)
    states = np.random.default_rng(frames).standard_normal((frames, 384)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(states)[None], torch.ones(1, frames, dtype=torch.bool), pooled=False)[0]
    tensors = {k: v.float().numpy() for k, v in model.export_tensors().items()}
    assert any(k.startswith("bert.") for k in tensors) == tune_bert
    head = HeadFile(tensors, {"config": json.dumps(model.cfg.to_dict())})
    got = NumpySpeechBridge(head, NumpyBert(MINILM_DIR))(states)
    assert got.dtype == np.float32 and got.shape == (384,)
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-5)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_head_saved_in_parts_merges_and_runs_in_the_backend(tmp_path: Path) -> None:
    from training.speech.__main__ import main as pipeline
    from training.speech.espeak import speak
    from training.speech.export import save_head
    from training.speech.voices import EVAL_VOICES, Voice

    from voicerag_cli.models.distilled.backend import DistilledSpeechEmbedder, create

    model = _bridge(tune_bert=True)
    out, limit = tmp_path / "h.safetensors", 15 * 2**20
    save_head(model, out, {"dev": {"r1": 0.0}}, bridge=True, part_bytes=limit)
    parts = sorted(tmp_path.glob("h*.safetensors"))
    assert len(parts) >= 2 and all(p.stat().st_size <= limit + 2**20 for p in parts)
    merged = tmp_path / "merged.safetensors"
    assert pipeline(["merge", "--head", str(out), "--out", str(merged)]) == 0
    head = read_head_file(merged)
    assert head.metadata["format"] == BRIDGE_FORMAT and "parts" not in head.metadata
    assert set(head.tensors) == set(model.export_tensors())

    frontend = create(Settings(), None).frontend  # the bundled CTranslate2 Whisper tiny.en, int8
    embedder = DistilledSpeechEmbedder(frontend, merged, EmbeddingSpace(MINILM_SPACE_ID, 384), MINILM_DIR)
    audio = speak("Who wrote the novel Pride and Prejudice?", Voice(EVAL_VOICES[1], 160, 50))
    vector = embedder.embed_speech(audio, 16_000)
    assert vector.shape == (384,) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4
    states = frontend(audio)
    with torch.no_grad():
        expected = model(torch.from_numpy(states)[None], torch.ones(1, len(states), dtype=torch.bool), pooled=False)
    # the file holds float16 weights: the vector matches the float32 module to float16 precision
    assert float(vector @ expected[0].numpy()) > 0.999
