"""SONAR parity with Meta's own code (sonar-space 0.5.0 on fairseq2 0.8.1), on every run.

sonar-space cannot be installed beside this project's torch (fairseq2n 0.8.1 pins torch==2.9.1),
so scripts/make_sonar_fixtures.py ran it once in a scratch environment and wrote
tests/fixtures/parity/sonar/: tiny random-weight encoders built by SONAR's hubs from the cards in
cards/ (fairseq2 parsed those very files), saved in the published layouts and read back by
SONAR's `load_model`; a SentencePiece model; espeak-ng clips; and what SONAR computed: token ids,
text embeddings (`TextToEmbeddingModelPipeline`), fbank features and speech embeddings
(`SpeechToEmbeddingModelPipeline`). Here the same cards and files go through voicerag's real
loaders (`create_text_embedder`, `create_speech_embedder`) and must give the same numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from voicerag_cli.errors import ModelError
from voicerag_cli.models.sonar.assets import AssetStore
from voicerag_cli.models.sonar.checkpoint import read_state_dict
from voicerag_cli.models.sonar.configs import TextEncoderConfig, apply_overrides, speech_config, text_config
from voicerag_cli.models.sonar.embedders import create_speech_embedder, create_text_embedder
from voicerag_cli.models.sonar.tokenizer import NllbTokenizer

FIXTURES = Path(__file__).parent / "fixtures" / "parity" / "sonar"
SPEECH_LANG = {"eng": "eng", "cmn": "cmn"}  # --lang values that pick these speech encoders

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    return json.loads((FIXTURES / "reference.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def outputs() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "reference.npz") as data:
        return dict(data)


@pytest.fixture(scope="module")
def clips() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "inputs.npz") as data:
        return {name: samples.astype(np.float32) / 32768.0 for name, samples in data.items()}


def _settings(tmp_path: Path, reference: dict[str, Any], metric: str, lang: str = "eng", speech: str = "") -> Any:
    from voicerag_cli.config import Settings

    return Settings().updated(
        {
            "sonar.asset_dir": str(FIXTURES / "cards"),
            "sonar.text_encoder": reference["cards"]["text"],
            "sonar.speech_encoder": speech,
            "sonar.lang": lang,
            "sonar.metric": metric,
            "paths.cache_dir": str(tmp_path / "cache"),
        }
    )


def _shared_fields(ours: Any, theirs: dict[str, Any], where: str = "") -> int:
    """Assert every field our config has in common with fairseq2's is equal; count them."""
    import dataclasses

    count = 0
    for field in dataclasses.fields(ours):
        key = "_from_fairseq" if field.name == "from_fairseq" else field.name
        if key not in theirs:
            continue
        value = getattr(ours, field.name)
        if dataclasses.is_dataclass(value):
            count += _shared_fields(value, theirs[key], f"{where}{key}.")
        else:
            assert value == theirs[key], f"{where}{key}: ours {value!r}, fairseq2 {theirs[key]!r}"
            count += 1
    return count


def test_cards_give_the_configs_fairseq2_parsed(reference: dict[str, Any], tmp_path: Path) -> None:
    """fairseq2 read these card files (arch + model_config overrides, plain keys merged and
    nested, `_set_` applied, base cards inherited); our parser must reach the same configs."""
    store = AssetStore(str(FIXTURES / "cards"), tmp_path, download=False)
    card = store.card(reference["cards"]["text"])
    ours = text_config(card.require("model_arch"), card.get("model_config"), card.name)
    assert _shared_fields(ours, reference["text"]["config"]) >= 12
    for lang, name in reference["cards"]["speech"].items():
        card = store.card(name)
        ours_speech = speech_config(card.require("model_arch"), card.get("model_config"), name)
        assert _shared_fields(ours_speech, reference["speech"]["configs"][lang]) >= 20, lang
    assert reference["speech"]["configs"]["eng"]["num_decoder_layers"] == 2  # the override beat the arch's 3


def test_model_config_merges_as_fairseq2s_config_merger() -> None:
    """Plain keys merge (recursively into nested configs), `_set_` replaces and wins over a plain
    key; a nested config under `_set_` (which fairseq2 would rebuild from its type's defaults,
    dropping the architecture's values) is refused with the merging spelling named."""
    base = TextEncoderConfig()
    merged = apply_overrides(base, {"model_dim": 64, "vocab_info": {"size": 99}}, "card")
    assert (merged.model_dim, merged.vocab_info.size, merged.vocab_info.pad_idx) == (64, 99, 1)
    nested_set = apply_overrides(base, {"_set_": {"model_dim": 32}, "vocab_info": {"_set_": {"size": 7}}}, "card")
    assert (nested_set.model_dim, nested_set.vocab_info.size) == (32, 7)
    assert apply_overrides(base, {"model_dim": 64, "_set_": {"model_dim": 16}}, "card").model_dim == 16
    with pytest.raises(ModelError, match=r"'vocab_info' under _set_ would replace the whole nested config"):
        apply_overrides(base, {"_set_": {"vocab_info": {"size": 5}}}, "card")
    with pytest.raises(ModelError, match="_del_ is not supported"):
        apply_overrides(base, {"_del_": ["pooling"]}, "card")


def test_tokenizer_ids_equal_fairseq2s_nllb_tokenizer(reference: dict[str, Any]) -> None:
    """fairseq2's `load_tokenizer(card).create_encoder(lang=...)` ids, in three languages, for
    sentences it was trained on, unseen words (unknown pieces) and a text past the length limit."""
    text = reference["text"]
    langs = list(text["ids"])
    mine = NllbTokenizer(FIXTURES / "tiny_spm.model", langs)
    assert (mine.vocab_size, mine.pad_idx, mine.eos_idx) == (text["vocab_size"], text["pad_idx"], text["eos_idx"])
    for lang in langs:
        for sentence, expected in zip(text["texts"], text["ids"][lang], strict=True):
            assert mine.encode(sentence, lang) == expected, (lang, sentence)
    assert len({ids[0][0] for ids in text["ids"].values()}) == len(langs)  # one language token each
    assert 1 in text["ids"]["eng_Latn"][-2]  # the unseen words give <unk> (id 1 after <pad>)


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_text_embeddings_equal_sonars_pipeline(
    reference: dict[str, Any], outputs: dict[str, np.ndarray], tmp_path: Path, metric: str
) -> None:
    """`TextToEmbeddingModelPipeline.predict` (batches of 3 sorted by character count; the long
    text truncated to 514 tokens) against our embedder in other batches: raw vectors under
    metric l2, their directions under cosine."""
    texts = reference["text"]["texts"]
    for lang in reference["text"]["ids"]:
        code = lang
        embedder = create_text_embedder(_settings(tmp_path, reference, metric, code), None)
        assert embedder.lang == lang
        assert embedder.model.config.max_positions == reference["text"]["max_seq_len"]
        official = outputs[f"text_{lang}"]
        assert np.linalg.norm(official, axis=1).min() > 0.5  # not degenerate vectors
        mine = embedder.embed_texts(texts, batch_size=4)
        expected = official if metric == "l2" else official / np.linalg.norm(official, axis=1, keepdims=True)
        np.testing.assert_allclose(mine, expected, rtol=0, atol=1e-6)  # measured 3.6e-7


def test_speech_checkpoints_are_in_the_published_layouts() -> None:
    """The English file carries fairseq names (as spenc.eng.pt), the Mandarin one fairseq2 names;
    SONAR's own loader read both back into the models it built (checked by the script)."""
    english = read_state_dict(FIXTURES / "spenc.eng.pt")
    mandarin = read_state_dict(FIXTURES / "spenc.cmn.pt")
    assert any(key.startswith("encoder.w2v_model.encoder.layers.") for key in english)
    assert "decoder.embed_out" in english
    assert "encoder_pooler.projection_out.weight" in mandarin
    assert not any(key.startswith("encoder.w2v_model.") for key in mandarin)


def test_fbank_equals_fairseq2s_waveform_to_fbank_converter(
    reference: dict[str, Any], outputs: dict[str, np.ndarray], clips: dict[str, np.ndarray], tmp_path: Path
) -> None:
    embedder = create_speech_embedder(
        _settings(tmp_path, reference, "l2", speech=reference["cards"]["speech"]["eng"]), None
    )
    assert {frames % 2 for frames in reference["speech"]["frames"].values()} == {0, 1}  # SONAR pads odd counts
    for name, samples in clips.items():
        official = outputs[f"fbank_{name}"]
        mine = embedder.features(samples, 16_000)
        assert mine.shape == official.shape == (reference["speech"]["frames"][name], 80)
        # Measured 1.2e-4 (of values up to 3), in the lowest mel band of quiet frames: the
        # official converter works in float32, whose FFT rounding is large next to so little energy.
        np.testing.assert_allclose(mine, official, rtol=0, atol=2e-4)


@pytest.mark.parametrize("lang", ["eng", "cmn"])
def test_speech_embeddings_equal_sonars_pipeline(
    reference: dict[str, Any], outputs: dict[str, np.ndarray], clips: dict[str, np.ndarray], tmp_path: Path, lang: str
) -> None:
    """`SpeechToEmbeddingModelPipeline.predict`, one clip at a time: our encoder on SONAR's own
    features equals it to float rounding; end to end (our features) too, within what the fbank
    difference carries through. The cards are picked by --lang as users do (speech_encoder
    names the tiny card)."""
    card = reference["cards"]["speech"][lang]
    embedder = create_speech_embedder(_settings(tmp_path, reference, "l2", SPEECH_LANG[lang], card), None)
    for name, samples in clips.items():
        official = outputs[f"speech_{lang}_{name}"]
        assert np.linalg.norm(official) > 0.5
        fbank = torch.from_numpy(outputs[f"fbank_{name}"])[None]
        with torch.inference_mode():
            on_their_features = embedder.model(fbank, torch.tensor([fbank.size(1)]))[0].numpy()
        np.testing.assert_allclose(on_their_features, official, rtol=0, atol=5e-6)  # measured 2.5e-6 of 4.7
        np.testing.assert_allclose(embedder.embed_speech(samples, 16_000), official, rtol=0, atol=1e-4)  # 5.8e-5

    # SONAR's batched path (zero padding to the longest clip, to an even frame count) gives the
    # single-clip vectors: embedding one question at a time, as we do, loses nothing.
    singles = np.stack([outputs[f"speech_{lang}_{name}"] for name in clips])
    np.testing.assert_allclose(outputs[f"speech_{lang}_batch"], singles, rtol=0, atol=5e-6)

    cosine = create_speech_embedder(_settings(tmp_path, reference, "cosine", SPEECH_LANG[lang], card), None)
    official = outputs[f"speech_{lang}_eng_q1"]
    np.testing.assert_allclose(
        cosine.embed_speech(clips["eng_q1"], 16_000), official / np.linalg.norm(official), rtol=0, atol=2e-5
    )
