"""Parity with Meta's own SONAR code (sonar-space 0.5.0 on fairseq2 0.8.1), where it is installed.

sonar-space cannot be installed beside this project's torch 2.13 (fairseq2n 0.8.1 pins
torch==2.9.1), so these tests run in a separate virtual environment (README, "SONAR"):

    python3 -m venv /tmp/sonar-venv && /tmp/sonar-venv/bin/pip install sonar-space==0.5.0 \\
        sentencepiece pyyaml soundfile soxr pytest
    PYTHONPATH=src /tmp/sonar-venv/bin/python -m pytest -q tests/test_sonar_parity.py

Tiny random-weight encoders are built with SONAR's own factories and configs, run through SONAR's
own pipelines (tokenizer, fbank features, batching), saved in the published checkpoint layouts and
loaded by voicerag's implementation from asset cards; the embeddings must agree.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sonar_assets import (
    SENTENCES,
    SPEECH_DIMS,
    SPEECH_ENCODER_DIMS,
    TEXT_DIMS,
    TINY_LANGS,
    espeak_wav,
    randomize_,
    speech_cards,
    text_card,
    text_vocab_size,
    to_fairseq_speech_layout,
    train_spm,
    write_cards,
)

try:
    import fairseq2  # noqa: F401
    import sonar  # noqa: F401

    SKIP_REASON = ""
except Exception as exc:  # ImportError, or fairseq2n failing to load against another torch
    SKIP_REASON = (
        f"sonar-space/fairseq2 not importable with torch {torch.__version__} ({type(exc).__name__}: {exc}); "
        "fairseq2n 0.8.1 pins torch==2.9.1, so these parity tests run only in a separate venv (README, 'SONAR')"
    )

pytestmark = pytest.mark.skipif(bool(SKIP_REASON), reason=SKIP_REASON or "-")


def _settings(asset_dir: Path, cache: Path, lang: str) -> Any:
    from voicerag_cli.config import Settings

    settings = Settings()
    settings.sonar.asset_dir = str(asset_dir)
    settings.sonar.lang = lang
    settings.paths.cache_dir = str(cache)
    return settings


@pytest.fixture(scope="module")
def spm_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_spm(tmp_path_factory.mktemp("spm"))


def test_tokenizer_ids_match_fairseq2(spm_path: Path) -> None:
    from fairseq2.models.nllb.tokenizer import NllbTokenizerConfig, load_nllb_tokenizer

    from voicerag_cli.models.sonar.tokenizer import NllbTokenizer

    official = load_nllb_tokenizer(spm_path, NllbTokenizerConfig(langs=TINY_LANGS, default_lang=TINY_LANGS[0]))
    mine = NllbTokenizer(spm_path, TINY_LANGS)
    assert mine.vocab_size == official.vocab_info.size
    assert (mine.pad_idx, mine.eos_idx) == (official.vocab_info.pad_idx, official.vocab_info.eos_idx)
    for lang in TINY_LANGS:
        encoder = official.create_encoder(lang=lang, mode="source")
        for text in [*SENTENCES, "unseen words: Zürich 東京 42"]:
            assert mine.encode(text, lang) == encoder(text).tolist(), (lang, text)


def _official_text_model(vocab_size: int) -> Any:
    from fairseq2.data.tokenizers import VocabularyInfo
    from sonar.models.sonar_text.config import SonarTextEncoderConfig
    from sonar.models.sonar_text.factory import SonarTextEncoderFactory

    config = SonarTextEncoderConfig(
        model_dim=TEXT_DIMS["model_dim"],
        max_seq_len=512,
        vocab_info=VocabularyInfo(size=vocab_size, unk_idx=1, bos_idx=2, eos_idx=3, pad_idx=1),
        num_encoder_layers=TEXT_DIMS["num_encoder_layers"],
        num_decoder_layers=TEXT_DIMS["num_encoder_layers"],
        num_encoder_attn_heads=TEXT_DIMS["num_encoder_attn_heads"],
        num_decoder_attn_heads=TEXT_DIMS["num_encoder_attn_heads"],
        ffn_inner_dim=TEXT_DIMS["ffn_inner_dim"],
        pooling="mean",
        _from_fairseq=True,
    )
    model = SonarTextEncoderFactory(config).create_model()
    randomize_(model, seed=11)
    return model.eval()


def test_text_embeddings_match_sonar(spm_path: Path, tmp_path: Path) -> None:
    from fairseq2.models.nllb.tokenizer import NllbTokenizerConfig, load_nllb_tokenizer
    from sonar.inference_pipelines.text import TextToEmbeddingModelPipeline

    from voicerag_cli.models.sonar.embedders import create_text_embedder

    vocab = text_vocab_size(spm_path)
    model = _official_text_model(vocab)
    torch.save({"model": model.state_dict()}, tmp_path / "text.pt")
    write_cards(tmp_path / "cards" / "text.yaml", [text_card(str(tmp_path / "text.pt"), str(spm_path), vocab)])
    tokenizer = load_nllb_tokenizer(spm_path, NllbTokenizerConfig(langs=TINY_LANGS, default_lang=TINY_LANGS[0]))
    pipeline = TextToEmbeddingModelPipeline(encoder=model, tokenizer=tokenizer)
    texts = [*SENTENCES, " ".join(SENTENCES * 12)]  # the last one is truncated to 514 tokens by both
    for lang, code in [("eng", "eng_Latn"), ("cmn", "zho_Hans")]:
        official = pipeline.predict(texts, source_lang=code, batch_size=3).numpy()
        embedder = create_text_embedder(_settings(tmp_path / "cards", tmp_path / "cache", lang), None)
        assert len(embedder.tokenizer.encode(texts[-1], code)) > embedder.model.config.max_positions == 514
        mine = embedder.embed_texts(texts, batch_size=4)  # other batches: other padding
        expected = official / np.linalg.norm(official, axis=1, keepdims=True)
        np.testing.assert_allclose(mine, expected, atol=2e-5)


def _official_speech_model() -> tuple[Any, Any]:
    from fairseq2.models.transformer import TransformerNormOrder
    from fairseq2.models.w2vbert import W2VBertConfig
    from sonar.models.sonar_speech.config import SonarSpeechEncoderConfig
    from sonar.models.sonar_speech.factory import SonarSpeechEncoderFactory

    encoder = dataclasses.replace(W2VBertConfig().w2v2_config.encoder_config, **SPEECH_ENCODER_DIMS)
    config = SonarSpeechEncoderConfig(
        w2v2_encoder_config=encoder,
        final_dropout_p=0.1,
        model_dim=SPEECH_DIMS["model_dim"],
        max_seq_len=1024,
        pad_idx=1,
        bos_idx=2,
        num_decoder_layers=SPEECH_DIMS["num_decoder_layers"],
        num_decoder_attn_heads=SPEECH_DIMS["num_decoder_attn_heads"],
        decoder_norm_order=TransformerNormOrder.POST,
        ffn_inner_dim=SPEECH_DIMS["ffn_inner_dim"],
        dropout_p=0.1,
    )
    model = SonarSpeechEncoderFactory(config).create_model()
    randomize_(model, seed=12)
    return model.eval(), config


def test_speech_checkpoint_layout_matches_sonar_converter() -> None:
    from sonar.models.sonar_speech.checkpoint import _convert_sonar_speech_checkpoint

    from voicerag_cli.models.sonar.checkpoint import convert_speech_keys

    model, config = _official_speech_model()
    fairseq_layout = to_fairseq_speech_layout(model.state_dict())
    official = _convert_sonar_speech_checkpoint({"model": dict(fairseq_layout)}, config)
    assert set(official) == set(model.state_dict())  # our fairseq layout is what SONAR reads
    assert set(convert_speech_keys(dict(fairseq_layout))) == set(official)


def test_speech_embeddings_match_sonar(tmp_path: Path) -> None:
    import soundfile as sf
    import soxr
    from fairseq2.data.audio import WaveformToFbankConverter
    from sonar.inference_pipelines.speech import SpeechToEmbeddingModelPipeline

    from voicerag_cli.models.sonar.embedders import create_speech_embedder

    model, _ = _official_speech_model()
    torch.save({"model": to_fairseq_speech_layout(model.state_dict())}, tmp_path / "spenc.pt")
    write_cards(tmp_path / "cards" / "speech.yaml", speech_cards({"eng": str(tmp_path / "spenc.pt")}))
    embedder = create_speech_embedder(_settings(tmp_path / "cards", tmp_path / "cache", "eng"), None)

    converter = WaveformToFbankConverter(num_mel_bins=80, waveform_scale=2**15, channel_last=True, standardize=True)
    pipeline = SpeechToEmbeddingModelPipeline(encoder=model)
    frame_counts = set()
    for i, text in enumerate(["Where is the Eiffel Tower?", "How high is Mount Everest?"]):
        samples, rate = sf.read(espeak_wav(text, tmp_path / f"q{i}.wav"), dtype="float32")
        samples = soxr.resample(samples, rate, 16_000, quality="HQ").astype(np.float32)
        waveform = torch.from_numpy(samples)[None]  # SONAR takes (channels, time) at 16 kHz

        official_fbank = converter({"waveform": waveform.T, "sample_rate": 16_000.0})["fbank"].numpy()
        frame_counts.add(len(official_fbank) % 2)
        np.testing.assert_allclose(embedder.features(samples, 16_000), official_fbank, atol=1e-3)

        # The encoder alone, on identical features: equal up to float rounding.
        with torch.inference_mode():
            mine_raw = embedder.model(torch.from_numpy(official_fbank)[None], torch.tensor([len(official_fbank)]))
        official = pipeline.predict([waveform]).numpy()
        np.testing.assert_allclose(mine_raw.numpy(), official, rtol=1e-4, atol=1e-5)

        # End to end (our features): the same direction.
        expected = official[0] / np.linalg.norm(official[0])
        np.testing.assert_allclose(embedder.embed_speech(samples, 16_000), expected, atol=1e-4)
    assert frame_counts == {0, 1}  # an odd frame count exercises SONAR's padding to pairs
