"""GLM-4-Voice speech tokenizer: a tiny random-weight checkpoint in the public layout, loaded
through the real loader, fed real espeak-ng speech."""

from __future__ import annotations

import io
import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file, save_file

from tiny_glm4voice import write_speech_tokenizer
from voicerag_cli.errors import ModelError
from voicerag_cli.models.glm4voice.speech_tokenizer import SpeechTokenizer, SpeechTokenizerConfig

TINY = SpeechTokenizerConfig(
    d_model=32,
    encoder_layers=4,
    encoder_attention_heads=2,
    encoder_ffn_dim=64,
    max_source_positions=1500,
    pooling_position=2,
    quantize_position=2,
    quantize_vocab_size=64,
)


def espeak(text: str) -> tuple[np.ndarray, int]:
    result = subprocess.run(["espeak-ng", "--stdout", text], capture_output=True, check=True)
    samples, rate = sf.read(io.BytesIO(result.stdout), dtype="float32")
    return samples, rate


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_speech_tokenizer(tmp_path_factory.mktemp("tok"), TINY)


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir: Path) -> SpeechTokenizer:
    return SpeechTokenizer.load(tokenizer_dir)


def test_token_rate_is_12_5_per_second(tokenizer: SpeechTokenizer) -> None:
    assert tokenizer.samples_per_token == 1280  # 160-sample hop x conv stride 2 x pooling 4
    assert tokenizer.tokens_per_second == 12.5
    rng = np.random.default_rng(0)
    for seconds in (0.5, 1.0, 2.0, 3.3):
        audio = (0.1 * rng.standard_normal(int(seconds * 16_000))).astype(np.float32)
        assert len(tokenizer.tokenize(audio, 16_000)) == math.ceil(seconds * 12.5)


def test_long_audio_is_split_in_30_second_windows(tokenizer: SpeechTokenizer) -> None:
    audio = (0.1 * np.random.default_rng(1).standard_normal(31 * 16_000)).astype(np.float32)
    assert len(tokenizer.tokenize(audio, 16_000)) == 375 + 13


def test_real_speech_is_tokenized_deterministically_at_any_rate(tokenizer: SpeechTokenizer) -> None:
    samples, rate = espeak("When was the safety bicycle introduced?")
    assert rate == 22_050
    first = tokenizer.tokenize(samples, rate)
    assert first == tokenizer.tokenize(samples, rate)
    assert len(first) == math.ceil(len(samples) / rate * 16_000 / 1280)
    assert all(0 <= t < TINY.quantize_vocab_size for t in first)
    assert len(set(first)) > 3  # the codebook is actually searched, not a constant


def test_block_causal_encoder_ignores_audio_beyond_the_block(tokenizer: SpeechTokenizer) -> None:
    """With causal convolutions and block-causal attention (200 frames = 4 s), the tokens of the
    first 4 s do not change when more audio follows: the property streaming input relies on."""
    rng = np.random.default_rng(2)
    audio = (0.1 * rng.standard_normal(6 * 16_000)).astype(np.float32)
    head = tokenizer.tokenize(audio[: 4 * 16_000], 16_000)
    assert tokenizer.tokenize(audio, 16_000)[: len(head)] == head


def test_checkpoint_keys_load_strictly(tokenizer_dir: Path, tmp_path: Path) -> None:
    state = load_file(str(tokenizer_dir / "model.safetensors"))
    for name in ("model.encoder.codebook.weight", "model.encoder.layers.1.self_attn.k_proj.weight"):
        broken = tmp_path / name.split(".")[2]
        broken.mkdir()
        for extra in ("config.json", "preprocessor_config.json"):
            (broken / extra).write_bytes((tokenizer_dir / extra).read_bytes())
        save_file({k: v for k, v in state.items() if k != name}, str(broken / "model.safetensors"))
        with pytest.raises(ModelError, match="1 missing"):
            SpeechTokenizer.load(broken)
    wider = tmp_path / "wider"
    wider.mkdir()
    config = json.loads((tokenizer_dir / "config.json").read_text())
    (wider / "config.json").write_text(json.dumps(config | {"quantize_vocab_size": 65}))
    for name in ("model.safetensors", "preprocessor_config.json"):
        (wider / name).write_bytes((tokenizer_dir / name).read_bytes())
    with pytest.raises(ModelError, match="wrong shape"):
        SpeechTokenizer.load(wider)


def test_missing_files_are_clean_errors(tokenizer_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="folder not found"):
        SpeechTokenizer.load(tmp_path / "absent")
    with pytest.raises(ModelError, match="tokenizer_path"):
        SpeechTokenizer.load("")
    for missing in ("config.json", "preprocessor_config.json", "model.safetensors"):
        partial = tmp_path / missing.replace(".", "_")
        partial.mkdir()
        for name in ("config.json", "preprocessor_config.json", "model.safetensors"):
            if name != missing:
                (partial / name).write_bytes((tokenizer_dir / name).read_bytes())
        with pytest.raises(ModelError, match=r"missing|no model"):
            SpeechTokenizer.load(partial)


def _copy_side_files(source: Path, target: Path) -> None:
    target.mkdir()
    for extra in ("config.json", "preprocessor_config.json"):
        (target / extra).write_bytes((source / extra).read_bytes())


@pytest.mark.parametrize("prefix", ["", "encoder."])
def test_bare_and_model_prefixed_encoder_layouts_give_the_same_tokens(
    tokenizer: SpeechTokenizer, tokenizer_dir: Path, tmp_path: Path, prefix: str
) -> None:
    """A `WhisperVQEncoder.save_pretrained` folder (bare keys, what the upstream demo's
    `WhisperVQEncoder.from_pretrained` reads) and a `WhisperVQModel` one (`encoder.`) load as the
    full model's `model.encoder.` layout does, and tokenize identically."""
    state = load_file(str(tokenizer_dir / "model.safetensors"))
    renamed = {prefix + k.removeprefix("model.encoder."): v for k, v in state.items() if k.startswith("model.encoder.")}
    folder = tmp_path / f"layout{prefix or '_bare'}"
    _copy_side_files(tokenizer_dir, folder)
    save_file(renamed, str(folder / "model.safetensors"))
    audio = (0.1 * np.random.default_rng(3).standard_normal(2 * 16_000)).astype(np.float32)
    assert SpeechTokenizer.load(folder).tokenize(audio, 16_000) == tokenizer.tokenize(audio, 16_000)


def test_checkpoint_without_an_encoder_is_a_clean_error(tokenizer_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "noencoder"
    _copy_side_files(tokenizer_dir, folder)
    save_file({"decoder.weight": torch.zeros(2)}, str(folder / "model.safetensors"))
    with pytest.raises(ModelError, match=r"no encoder conv1\.weight"):
        SpeechTokenizer.load(folder)
