"""The `sonar` text and speech embedder backends: cards -> files -> strict load -> embeddings.

Both return float32 vectors in the space named by `space_id`. By default (`sonar.metric =
"cosine"`) they are L2-normalized and searched by cosine: SONAR's vectors vary in norm with
sentence length and language, and cosine compares directions only, as the rest of voicerag's
spaces do. `sonar.metric = "l2"` keeps SONAR's raw vectors and searches by Euclidean distance,
the reference RAG system's metric.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from voicerag_cli.errors import ConfigError, InputError, ModelError
from voicerag_cli.models.base import EmbeddingSpace
from voicerag_cli.models.sonar import fbank
from voicerag_cli.models.sonar.assets import AssetStore, Card
from voicerag_cli.models.sonar.checkpoint import convert_speech_keys, load_strict, read_state_dict
from voicerag_cli.models.sonar.configs import SPEECH_FAMILY, TEXT_FAMILY, speech_config, text_config
from voicerag_cli.models.sonar.selection import (
    SPEECH_CARD_PREFIX,
    card_langs,
    embedding_space,
    resolved_text_lang,
    speech_card_name,
)
from voicerag_cli.models.sonar.settings import SonarConfig
from voicerag_cli.models.sonar.speech_model import SonarSpeechEncoder
from voicerag_cli.models.sonar.text_model import SonarTextEncoder
from voicerag_cli.models.sonar.tokenizer import NllbTokenizer

if TYPE_CHECKING:
    from voicerag_cli.config import Settings
    from voicerag_cli.models.base import Roles


def _output(vectors: torch.Tensor, space: EmbeddingSpace) -> np.ndarray:
    if space.metric == "l2":
        return vectors.float().numpy().astype(np.float32)
    return torch.nn.functional.normalize(vectors.float(), dim=-1).numpy().astype(np.float32)


def _check_family(card: Card, family: str) -> None:
    if card.get("model_family") != family:
        raise ModelError(
            f"SONAR asset card {card.name!r} ({card.origin}) has model_family {card.get('model_family')!r}, "
            f"expected {family!r}"
        )


def _build(cls: type[torch.nn.Module], config: Any, checkpoint: Path, convert: Any = None) -> Any:
    # Built on the meta device and filled by assignment: no time or memory spent on random init.
    with torch.device("meta"):
        model = cls(config)
    state = read_state_dict(checkpoint)
    load_strict(model, convert(state) if convert else state, checkpoint)
    return model


class SonarTextEmbedder:
    def __init__(self, model: SonarTextEncoder, tokenizer: NllbTokenizer, lang: str, space: EmbeddingSpace) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.lang = lang
        self.space = space

    def embed_texts(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.space.dim), dtype=np.float32)
        limit = self.model.config.max_positions  # SONAR truncates, dropping the tail (and </s>)
        encoded = [self.tokenizer.encode(text, self.lang)[:limit] for text in texts]
        # Similar lengths share a batch (as SONAR's pipeline sorts): less padding, same vectors.
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        out = torch.empty(len(encoded), self.space.dim)
        with torch.inference_mode():
            for start in range(0, len(order), max(1, batch_size)):
                chunk = order[start : start + batch_size]
                lengths = torch.tensor([len(encoded[i]) for i in chunk])
                tokens = torch.full((len(chunk), int(lengths.max())), self.tokenizer.pad_idx, dtype=torch.long)
                for row, i in enumerate(chunk):
                    tokens[row, : len(encoded[i])] = torch.tensor(encoded[i])
                out[chunk] = self.model(tokens, lengths)
        return _output(out, self.space)


class SonarSpeechEmbedder:
    def __init__(self, model: SonarSpeechEncoder, space: EmbeddingSpace) -> None:
        self.model = model
        self.space = space

    def features(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """SONAR's input: standardized 80-d log-mel frames of the 16 kHz mono signal."""
        samples = np.asarray(audio, dtype=np.float32)
        if samples.ndim == 2:
            samples = samples.mean(axis=1)
        if sample_rate != fbank.SAMPLE_RATE:
            from voicerag_cli.audio.io import resample

            samples = resample(samples, sample_rate, fbank.SAMPLE_RATE)
        seconds = samples.size / fbank.SAMPLE_RATE
        encoder = self.model.config.w2v2_encoder_config
        frames = fbank.num_frames(samples.size)
        if frames // encoder.fbank_stride > encoder.max_seq_len:
            # The relative position table bounds the stacked-frame count; SONAR fails there too.
            limit = encoder.max_seq_len * encoder.fbank_stride / 100
            raise InputError(
                f"the question is {seconds:.1f} s long; SONAR's speech encoder takes at most {limit:.0f} s"
            )
        if frames < max(2, encoder.fbank_stride):
            raise InputError(f"the question is too short for SONAR's speech encoder ({seconds * 1000:.0f} ms)")
        features = fbank.standardize(fbank.log_mel_fbank(samples))
        if not np.isfinite(features).all():
            raise InputError("the question audio has a constant (silent) frequency band: no speech features")
        return features

    def embed_speech(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        features = torch.from_numpy(self.features(audio, sample_rate))[None]
        with torch.inference_mode():
            vector = self.model(features, torch.tensor([features.size(1)]))
        return _output(vector, self.space)[0]


def create_text_embedder(settings: Settings, registry: Roles) -> SonarTextEmbedder:
    store = AssetStore.from_settings(settings)
    card = store.card(settings.section(SonarConfig).text_encoder)
    _check_family(card, TEXT_FAMILY)
    if card.get("tokenizer_family", "nllb") != "nllb":
        raise ModelError(f"SONAR asset card {card.name!r}: tokenizer_family must be 'nllb'")
    langs = card_langs(card)
    lang = resolved_text_lang(settings)
    if lang not in langs:
        raise ConfigError(f"the SONAR text encoder {card.name!r} does not support language {lang!r} (--lang)")
    config = text_config(str(card.require("model_arch")), card.get("model_config"), f"SONAR card {card.name!r}")
    tokenizer = NllbTokenizer(store.file(card, "tokenizer"), langs)
    if tokenizer.vocab_size != config.vocab_info.size:
        raise ModelError(
            f"SONAR card {card.name!r}: the tokenizer has {tokenizer.vocab_size} tokens with its languages, "
            f"the model's vocabulary {config.vocab_info.size}"
        )
    model = _build(SonarTextEncoder, config, store.file(card, "checkpoint"))
    return SonarTextEmbedder(model, tokenizer, lang, embedding_space(settings, config.model_dim))


def create_speech_embedder(settings: Settings, registry: Roles) -> SonarSpeechEmbedder:
    store = AssetStore.from_settings(settings)
    name = speech_card_name(settings)
    sonar = settings.section(SonarConfig)
    if not sonar.speech_encoder and name not in store.names():
        codes = sorted(n.removeprefix(SPEECH_CARD_PREFIX) for n in store.names() if n.startswith(SPEECH_CARD_PREFIX))
        raise ConfigError(
            f"no SONAR speech encoder for language {sonar.lang!r} (--lang); SONAR has: "
            f"{', '.join(c for c in codes if c != 'base')}"
        )
    card = store.card(name)
    _check_family(card, SPEECH_FAMILY)
    config = speech_config(str(card.require("model_arch")), card.get("model_config"), f"SONAR card {card.name!r}")
    model = _build(SonarSpeechEncoder, config, store.file(card, "checkpoint"), convert_speech_keys)
    return SonarSpeechEmbedder(model, embedding_space(settings, config.model_dim))
