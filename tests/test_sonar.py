"""The SONAR backends in-process: languages, asset cards and downloads, fbank features, strict
checkpoint loading, and the embedders on tiny random-weight checkpoints built here."""

from __future__ import annotations

import argparse
import functools
import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tiny_sonar import SENTENCES, TinyAssets, build_tiny_assets, espeak_wav, speech_cards, write_cards
from voicerag_cli.config import Settings
from voicerag_cli.errors import ConfigError, InputError, ModelError
from voicerag_cli.models.sonar import fbank
from voicerag_cli.models.sonar.assets import AssetStore
from voicerag_cli.models.sonar.embedders import create_speech_embedder, create_text_embedder
from voicerag_cli.models.sonar.languages import speech_lang, text_lang
from voicerag_cli.models.sonar.selection import index_extra, space_id


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyAssets:
    return build_tiny_assets(tmp_path_factory.mktemp("sonar-assets"))


@pytest.fixture(scope="module")
def question_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return espeak_wav("Where is the Eiffel Tower?", tmp_path_factory.mktemp("wav") / "q.wav")


def settings_for(
    asset_dir: Path | None, cache: Path, lang: str = "eng", download: bool = False, metric: str = "cosine"
) -> Settings:
    return Settings().updated(
        {
            "sonar.asset_dir": str(asset_dir) if asset_dir else "",
            "sonar.lang": lang,
            "sonar.download": download,
            "sonar.metric": metric,
            "paths.cache_dir": str(cache),
        }
    )


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    samples, rate = sf.read(path, dtype="float32")
    return samples, rate


# --- languages ---------------------------------------------------------------------------


def test_lang_maps_to_speech_and_text_codes() -> None:
    assert (text_lang("eng"), speech_lang("eng")) == ("eng_Latn", "eng")
    assert (text_lang("cmn"), speech_lang("cmn")) == ("zho_Hans", "cmn")
    assert (text_lang("zho_Hant"), speech_lang("zho_Hant")) == ("zho_Hant", "cmn")
    assert (text_lang("deu"), speech_lang("deu_Latn")) == ("deu_Latn", "deu")
    with pytest.raises(ConfigError, match="several scripts"):
        text_lang("zho")
    with pytest.raises(ConfigError, match="unsupported SONAR language 'xx'"):
        text_lang("xx")
    with pytest.raises(ConfigError, match="unsupported SONAR text language"):
        text_lang("eng_Cyrl")


def test_index_records_every_text_language() -> None:
    first = index_extra(Settings().updated({"sonar.lang": "cmn"}), None)
    assert first == {"text_langs": ["zho_Hans"], "text_encoder": "text_sonar_basic_encoder"}
    assert index_extra(Settings().updated({"sonar.lang": "eng"}), first)["text_langs"] == ["eng_Latn", "zho_Hans"]


# --- asset cards and files ---------------------------------------------------------------


def test_builtin_cards_name_the_official_files(tmp_path: Path) -> None:
    store = AssetStore("", tmp_path, download=False)
    eng, cmn = store.card("sonar_speech_encoder_eng"), store.card("sonar_speech_encoder_cmn")
    assert (eng.get("model_arch"), cmn.get("model_arch")) == ("english", "non_english")  # inherited from base
    assert cmn.get("model_family") == "sonar_speech"
    assert cmn.get("checkpoint") == "https://dl.fbaipublicfiles.com/SONAR/spenc.v5ap.cmn.pt"
    text = store.card("text_sonar_basic_encoder")
    assert text.get("checkpoint").endswith("/sonar_text_encoder.pt")
    with pytest.raises(ModelError, match=r"download = true .*spenc\.eng\.pt"):
        store.file(eng, "checkpoint")  # offline by default: a clear error, no network access


def test_user_cards_override_and_errors(tiny: TinyAssets, tmp_path: Path) -> None:
    store = AssetStore(str(tiny.asset_dir), tmp_path, download=False)
    card = store.card("sonar_speech_encoder_eng")
    assert card.origin.endswith("speech.yaml")
    assert store.file(card, "checkpoint") == tiny.speech_checkpoints["eng"]  # relative to the card file
    with pytest.raises(ModelError, match="asset dir not found"):
        AssetStore(str(tmp_path / "absent"), tmp_path, download=False)
    duplicate = tmp_path / "dup"
    write_cards(duplicate / "a.yaml", speech_cards({"eng": "x.pt"}))
    write_cards(duplicate / "b.yaml", [*speech_cards({"deu": "y.pt"})[1:], {"name": "sonar_speech_encoder_eng"}])
    with pytest.raises(ModelError, match="defined twice"):
        AssetStore(str(duplicate), tmp_path, download=False)
    short = tmp_path / "short"
    write_cards(short / "cards.yaml", [{"name": "sonar_speech_encoder_deu", "checkpoint": "spenc.deu.pt"}])
    deu = AssetStore(str(short), tmp_path, download=False).card("sonar_speech_encoder_deu")
    assert (deu.get("model_family"), deu.get("model_arch"), deu.origin) == (
        "sonar_speech",
        "non_english",
        str(short / "cards.yaml"),
    )
    missing = tmp_path / "missing"
    write_cards(missing / "speech.yaml", speech_cards({"eng": "nowhere/spenc.eng.pt"}))
    store = AssetStore(str(missing), tmp_path, download=False)
    with pytest.raises(ModelError, match=r"checkpoint for 'sonar_speech_encoder_eng' not found: .*nowhere"):
        store.file(store.card("sonar_speech_encoder_eng"), "checkpoint")


@pytest.fixture
def file_server(tiny: TinyAssets) -> Iterator[str]:
    """A local HTTP server over the tiny files: the download path without the internet."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tiny.asset_dir / "files"))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_on_first_use_only_when_enabled(tiny: TinyAssets, file_server: str, tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    write_cards(cards / "speech.yaml", speech_cards({"eng": f"{file_server}/spenc.eng.pt"}))
    with pytest.raises(ModelError, match="set \\[sonar\\] download = true"):
        create_speech_embedder(settings_for(cards, tmp_path / "cache"), None)
    embedder = create_speech_embedder(settings_for(cards, tmp_path / "cache", download=True), None)
    cached = tmp_path / "cache" / "sonar" / "spenc.eng.pt"
    assert cached.read_bytes() == tiny.speech_checkpoints["eng"].read_bytes()
    assert not list(cached.parent.glob(".*.part"))
    assert embedder.space.dim == 32
    # Later runs use the cached copy, without the server and with downloads off.
    create_speech_embedder(settings_for(cards, tmp_path / "cache", download=False), None)


def test_download_failure_is_a_clear_model_error(tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    write_cards(cards / "speech.yaml", speech_cards({"eng": "http://127.0.0.1:9/spenc.eng.pt"}))
    with pytest.raises(ModelError, match=r"cannot download http://127\.0\.0\.1:9/spenc\.eng\.pt"):
        create_speech_embedder(settings_for(cards, tmp_path / "cache", download=True), None)
    assert not list((tmp_path / "cache" / "sonar").glob("*"))


# --- features ----------------------------------------------------------------------------


def test_fbank_follows_kaldi_framing_and_mel_scale() -> None:
    rate = fbank.SAMPLE_RATE
    t = np.arange(rate) / rate
    tone = (0.3 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)
    features = fbank.log_mel_fbank(tone)
    assert features.shape == (1 + (rate - 400) // 160, 80) and features.dtype == np.float32
    assert fbank.num_frames(399) == 0 and fbank.log_mel_fbank(tone[:399]).shape == (0, 80)
    # The strongest band is the one whose triangle peaks nearest 1 kHz on the Kaldi mel scale.
    banks = fbank.mel_banks()
    assert banks.shape == (80, 256) and (banks.sum(axis=1) > 0).all()
    peak_bins = banks.argmax(axis=1) * rate / 512
    assert int(np.argmax(features.mean(axis=0))) == int(np.argmin(np.abs(peak_bins - 1000.0)))
    standardized = fbank.standardize(features + np.random.default_rng(0).normal(0, 1, features.shape))
    np.testing.assert_allclose(standardized.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(standardized.std(axis=0, ddof=1), 1.0, atol=1e-4)


# --- checkpoints -------------------------------------------------------------------------


def test_both_checkpoint_layouts_load_to_the_same_model(tiny: TinyAssets, question_wav: Path, tmp_path: Path) -> None:
    from voicerag_cli.models.sonar.checkpoint import convert_speech_keys, read_state_dict

    fairseq = read_state_dict(tiny.speech_checkpoints["eng"])
    assert "encoder.w2v_model.mask_emb" in fairseq and "decoder.embed_out" in fairseq
    native = tmp_path / "cards" / "files" / "native.pt"
    native.parent.mkdir(parents=True)
    torch.save(convert_speech_keys(fairseq), native)  # fairseq2 keys, no "model" wrapper
    write_cards(tmp_path / "cards" / "speech.yaml", speech_cards({"eng": "files/native.pt"}))
    samples, rate = read_wav(question_wav)
    from_fairseq = create_speech_embedder(settings_for(tiny.asset_dir, tmp_path), None)
    from_native = create_speech_embedder(settings_for(tmp_path / "cards", tmp_path), None)
    np.testing.assert_array_equal(from_fairseq.embed_speech(samples, rate), from_native.embed_speech(samples, rate))


def test_checkpoints_must_match_the_card_and_hold_only_tensors(tiny: TinyAssets, tmp_path: Path) -> None:
    from voicerag_cli.models.sonar.checkpoint import read_state_dict

    state = read_state_dict(tiny.speech_checkpoints["cmn"])
    files = tmp_path / "cards" / "files"
    files.mkdir(parents=True)
    torch.save({"model": {k: v for k, v in state.items() if not k.startswith("layer_norm.")}}, files / "a.pt")
    torch.save({"model": state, "args": argparse.Namespace(arch="x")}, files / "b.pt")
    wide = {k: torch.zeros(64) if k == "layer_norm.weight" else v for k, v in state.items()}
    torch.save({"model": wide}, files / "c.pt")
    write_cards(
        tmp_path / "cards" / "s.yaml", speech_cards({"eng": "files/a.pt", "fra": "files/b.pt", "deu": "files/c.pt"})
    )
    cases = {
        "eng": "2 missing (e.g. layer_norm.bias",
        "fra": "weights-only load refuses",
        "deu": "has shape (64,), expected (32,)",
    }
    for lang, message in cases.items():
        with pytest.raises(ModelError, match=re.escape(message)):
            create_speech_embedder(settings_for(tmp_path / "cards", tmp_path, lang=lang), None)


# --- embedders ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def text_embedder(tiny: TinyAssets, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return create_text_embedder(settings_for(tiny.asset_dir, tmp_path_factory.mktemp("cache")), None)


def test_text_embeddings_shapes_determinism_and_padding(text_embedder: Any, tiny: TinyAssets, tmp_path: Path) -> None:
    assert text_embedder.space.space_id == "sonar/text_sonar_basic_encoder" and text_embedder.space.dim == 32
    vectors = text_embedder.embed_texts(SENTENCES, batch_size=3)
    assert vectors.shape == (len(SENTENCES), 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    # Batching (hence padding) does not change a sentence's vector; a fresh load gives the same.
    singles = np.stack([text_embedder.embed_texts([s], batch_size=1)[0] for s in SENTENCES])
    np.testing.assert_allclose(vectors, singles, atol=1e-6)
    reloaded = create_text_embedder(settings_for(tiny.asset_dir, tmp_path), None)
    np.testing.assert_array_equal(reloaded.embed_texts(SENTENCES, batch_size=3), vectors)
    assert np.abs(vectors[0] - vectors[1]).max() > 1e-3  # different sentences, different vectors
    assert text_embedder.embed_texts([]).shape == (0, 32)


def test_text_language_token_is_used_and_checked(text_embedder: Any, tiny: TinyAssets, tmp_path: Path) -> None:
    french = create_text_embedder(settings_for(tiny.asset_dir, tmp_path, lang="fra_Latn"), None)
    assert french.tokenizer.encode("Paris", "fra_Latn")[0] != text_embedder.tokenizer.encode("Paris", "eng_Latn")[0]
    assert np.abs(french.embed_texts(["Paris"]) - text_embedder.embed_texts(["Paris"])).max() > 1e-4
    with pytest.raises(ConfigError, match="does not support language 'deu_Latn'"):
        create_text_embedder(settings_for(tiny.asset_dir, tmp_path, lang="deu"), None)  # not in the tiny card


def test_speech_embeddings_shapes_determinism_and_resampling(
    tiny: TinyAssets, question_wav: Path, tmp_path: Path
) -> None:
    from voicerag_cli.audio.io import resample

    embedder = create_speech_embedder(settings_for(tiny.asset_dir, tmp_path), None)
    assert embedder.space.space_id == space_id(Settings()) and embedder.space.dim == 32
    samples, rate = read_wav(question_wav)
    assert rate != fbank.SAMPLE_RATE  # espeak writes 22.05 kHz: the embedder resamples
    vector = embedder.embed_speech(samples, rate)
    assert vector.shape == (32,) and vector.dtype == np.float32
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-6
    np.testing.assert_array_equal(vector, embedder.embed_speech(resample(samples, rate, 16_000), 16_000))
    again = create_speech_embedder(settings_for(tiny.asset_dir, tmp_path), None)
    np.testing.assert_array_equal(again.embed_speech(samples, rate), vector)
    mandarin = create_speech_embedder(settings_for(tiny.asset_dir, tmp_path, lang="cmn"), None)
    assert mandarin.space == embedder.space  # every language's encoder maps into the one space
    assert np.abs(mandarin.embed_speech(samples, rate) - vector).max() > 1e-3  # but it is another model
    with pytest.raises(InputError, match="too short"):
        embedder.embed_speech(samples[:300], rate)
    with pytest.raises(ConfigError, match=r"no SONAR speech encoder for language 'xx'.*cmn, .*eng"):
        create_speech_embedder(settings_for(tiny.asset_dir, tmp_path, lang="xx"), None)


def test_reference_l2_metric_keeps_raw_vectors_and_searches_by_euclidean_distance(
    text_embedder: Any, tiny: TinyAssets, tmp_path: Path
) -> None:
    """`sonar.metric = "l2"`: raw SONAR vectors (the normalized ones times their norms), a space
    of their own, an hnswlib index built with the L2 metric whose ranking is the brute-force
    Euclidean one; an index built under one metric refuses queries embedded under the other."""
    from voicerag_cli.index.base import IndexError_
    from voicerag_cli.index.memory import MemoryIndex

    raw_embedder = create_text_embedder(settings_for(tiny.asset_dir, tmp_path, metric="l2"), None)
    assert raw_embedder.space.space_id == "sonar/text_sonar_basic_encoder+l2" != text_embedder.space.space_id
    assert (raw_embedder.space.metric, text_embedder.space.metric) == ("l2", "cosine")
    raw, unit = raw_embedder.embed_texts(SENTENCES), text_embedder.embed_texts(SENTENCES)
    norms = np.linalg.norm(raw, axis=1)
    assert np.ptp(norms) > 1e-3  # not normalized: norms differ between sentences
    np.testing.assert_allclose(raw / norms[:, None], unit, atol=1e-5)

    index = MemoryIndex("l2", raw_embedder.space)
    index.add([f"s{i}" for i in range(len(SENTENCES))], list(SENTENCES), raw)
    query = raw_embedder.embed_texts([SENTENCES[2]])[0] * 0.7  # a shorter vector, same direction
    hits = index.search(query, k=len(SENTENCES), ef=64)
    distances = ((raw - query) ** 2).sum(axis=1)
    assert [p.chunk_id for p in hits] == np.argsort(distances).tolist()
    np.testing.assert_allclose([p.score for p in hits], -np.sort(distances), rtol=1e-4, atol=1e-5)
    with pytest.raises(IndexError_, match=r"\+l2"):
        index.check_space(text_embedder.space, "text embedder")


def test_l2_index_on_disk_keeps_its_metric(tiny: TinyAssets, tmp_path: Path) -> None:
    """build_index under sonar.metric = l2: the manifest records l2, the reopened hnswlib index
    searches by Euclidean distance (scores = minus squared distances, nearest first)."""
    from voicerag_cli.index.builder import build_index
    from voicerag_cli.index.hnsw_store import IndexRoot

    settings = settings_for(tiny.asset_dir, tmp_path, metric="l2")
    embedder = create_text_embedder(settings, None)
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, sentence in enumerate(SENTENCES[:4]):
        (docs / f"d{i}.txt").write_text(sentence, encoding="utf-8")
    root = IndexRoot(tmp_path / "indexes")
    build_index(root, "raw", [docs], settings.index, lambda: embedder)
    reader = root.open("raw")
    assert reader.manifest.metric == "l2" and reader.space == embedder.space
    query = embedder.embed_texts([SENTENCES[1]])[0]
    hits = reader.search(query, k=4, ef=64)
    assert hits[0].text.strip() == SENTENCES[1].strip() and abs(hits[0].score) < 1e-4
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True) and hits[-1].score < 0
