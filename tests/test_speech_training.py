"""The speech embedder's training pipeline (training/speech) at toy size on the CPU, with real
parts: texts from a docs folder and question files, a speech corpus spoken by espeak-ng, the
bundled Whisper encoder and MiniLM, the carry split into parts and received as the device calls
receive them, rendering with espeak-ng's C library when the wheel is at hand, training, and the
result served by the real e2e backend."""

from __future__ import annotations

import gzip
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from voicerag_cli.config import Settings
from voicerag_cli.models.sentence_embedder import MINILM_SPACE_ID, minilm_weights

QUESTIONS = [
    "Who wrote the novel Pride and Prejudice?",
    "When did the Berlin Wall fall?",
    "What is the capital city of Australia?",
    "How many moons does Mars have?",
    "Which river flows through Cairo?",
    "Who painted the ceiling of the Sistine Chapel?",
]
SENTENCES = [
    "The Great Barrier Reef lies off the coast of Queensland.",
    "Marie Curie won two Nobel Prizes in different sciences.",
    "Mount Kilimanjaro is the highest mountain in Africa.",
]
DOCS_RST = """\
Configuring the engine
======================

The engine keeps a pool of connections to the database and hands them out to sessions.

.. function:: create_engine(url, **kwargs)

   Create a new engine instance from a database URL.

.. confval:: max_overflow

   The number of connections to allow beyond the pool size.

Using sessions
--------------

A session tracks the objects you load and writes their changes when you commit it.
"""
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
# an installed espeak-ng's library folder (Debian: /usr/lib/<triplet>), which `render` runs as the
# GPU machine runs the wheel's copy
ESPEAK_LIBRARY = next((p.parent for p in Path("/usr/lib").glob("*/libespeak-ng.so.1")), None)


def held_out_questions(n: int) -> list[str]:
    """Questions the hash split holds out: the dev set's texts."""
    from training.speech.texts import is_held_out

    return [q for q in (f"In which year did event number {i} happen?" for i in range(1000)) if is_held_out(q)][:n]


def shared_texts(folder: Path) -> Path:
    folder.mkdir()
    with gzip.open(folder / "questions_en.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps({"text": q}) + "\n" for q in QUESTIONS + held_out_questions(3))
    with gzip.open(folder / "wiki_sentences_en.txt.gz", "wt", encoding="utf-8") as f:
        f.writelines(s + "\n" for s in SENTENCES)
    return folder


def docs_root(folder: Path, library: str = "sqlalchemy-2.1.9") -> Path:
    (folder / library / "doc").mkdir(parents=True)
    (folder / library / "doc" / "engines.rst").write_text(DOCS_RST, encoding="utf-8")
    return folder


# ------------------------------------------------------------------------------------- texts
def test_texts_split_by_hash_and_keep_what_a_clip_says(tmp_path: Path) -> None:
    from training.speech.texts import is_held_out, read_texts, row, split_long, write_texts

    texts = [f"What is item number {i}?" for i in range(400)]
    held = [t for t in texts if is_held_out(t)]
    assert 0 < len(held) < 40 and all(is_held_out(t.upper()) for t in held)  # case does not move a text
    path = tmp_path / "t.jsonl.gz"
    write_texts(path, [row("What does create_engine do?", "api", "What does create engine do?"), row(texts[0], "q")])
    with gzip.open(path, "at", encoding="utf-8") as f:  # a duplicate and a row from before `spoken`
        f.write(json.dumps({"text": texts[0].upper(), "kind": "q"}) + "\n" + json.dumps({"text": "Old row"}) + "\n")
    rows = read_texts(path)
    assert [r["spoken"] for r in rows] == ["What does create engine do?", texts[0], "Old row"]
    assert [r["held_out"] for r in rows] == [is_held_out(r["text"]) for r in rows]
    sentence = " ".join(f"w{i}," if i == 15 else f"w{i}" for i in range(40))
    assert all(len(p.split()) <= 24 for p in split_long(sentence))


def test_docs_of_a_training_library_become_howto_api_and_passage_texts(tmp_path: Path) -> None:
    from training.speech.docs_texts import docs_texts, spoken_name

    texts = docs_texts([docs_root(tmp_path / "docs")], seed=0)
    kinds = {t.kind for t in texts}
    assert kinds == {"howto", "api", "docs_sentence"} and {t.library for t in texts} == {"sqlalchemy"}
    howto = [t.text for t in texts if t.kind == "howto"]
    assert any(q in howto for q in ("How do I configure the engine?", "How can I configure the engine?"))
    api = [t for t in texts if t.kind == "api"]
    assert {t.text.count("create_engine") + t.text.count("max_overflow") for t in api} == {1}
    assert all("_" not in t.spoken for t in api)  # names are said as words
    sentences = [t.text for t in texts if t.kind == "docs_sentence"]
    assert "The engine keeps a pool of connections to the database and hands them out to sessions." in sentences
    assert spoken_name("Session.commit") == "Session commit" and spoken_name("--log-level") == "log level"
    assert spoken_name("getLogger") == "get Logger"
    with pytest.raises(ValueError, match="typer is not on the training list"):
        docs_texts([docs_root(tmp_path / "held", "typer-0.12.0")])


# -------------------------------------------------------------------------------- recordings
def speech_corpus(folder: Path, speakers: dict[str, list[str]], voice: str = "en-us") -> Path:
    """A corpus folder in ../shared/data/speech's layout, spoken by espeak-ng."""
    import soundfile as sf
    from training.speech.espeak import speak
    from training.speech.voices import Voice

    folder.mkdir(parents=True)
    lines = ["file\tspeaker\tduration_s\ttranscript"]
    for speaker, texts in speakers.items():
        for k, text in enumerate(texts):
            audio = speak(text, Voice(voice, 170, 50))
            name = f"{speaker}_{k}.ogg"
            sf.write(folder / name, audio, 16_000, format="OGG", subtype="VORBIS")
            lines.append(f"{name}\t{speaker}\t{len(audio) / 16_000:.3f}\t{text.lower().rstrip('?.')}")
    (folder / "transcripts.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_held_out_speakers_are_whole_and_stable() -> None:
    from training.speech.recordings import LIBRISPEECH_HELD_OUT, is_held_out_speaker, speakers_for_hours

    assert all(is_held_out_speaker("librispeech", s) for s in LIBRISPEECH_HELD_OUT)
    assert not is_held_out_speaker("librispeech", "1088")
    speakers = [f"SPEAKER{i:04d}" for i in range(400)]
    held = [s for s in speakers if is_held_out_speaker("speechocean762", s)]
    assert 60 < len(held) < 140  # a quarter, by hash
    assert not any(is_held_out_speaker("picovoice_s2i", s) for s in speakers)  # no speaker ids: train only
    recordings = [("c", s, 600.0) for s in speakers[:20]]
    small, large = speakers_for_hours(recordings, 0.5), speakers_for_hours(recordings, 1.0)
    assert len(small) == 3 and len(large) == 6 and small < large  # whole speakers; the subsets nest


@needs_espeak
def test_training_speakers_travel_as_opus_and_decode(tmp_path: Path) -> None:
    from training.speech.recordings import is_held_out_speaker, load_archive, pack_corpora

    assert is_held_out_speaker("speechocean762", "SPEAKER0003")
    assert not is_held_out_speaker("speechocean762", "SPEAKER0001")
    corpus = speech_corpus(
        tmp_path / "speechocean762",
        {"SPEAKER0001": ["How do I open a file?", "We call it bear."], "SPEAKER0003": ["Zero three five one."]},
    )
    rows = pack_corpora([corpus], tmp_path / "real.tar", max_seconds=16.0)
    assert [r.speaker for r in rows] == ["SPEAKER0001", "SPEAKER0001"]  # the held-out speaker stays here
    short = pack_corpora([corpus], tmp_path / "short.tar", max_seconds=1.5)  # longer ones are not cut: left out
    assert [r.text for r in short] == ["we call it bear"] and rows[0].seconds > 1.5
    clips = load_archive(tmp_path / "real.tar")
    assert [c.text for c in clips] == ["how do i open a file", "we call it bear"]
    opus = corpus / "SPEAKER0001_0.ogg"  # a corpus already in 16 kHz Opus travels byte for byte
    import soundfile as sf

    audio, _ = sf.read(opus)
    sf.write(opus, audio, 16_000, format="OGG", subtype="OPUS")
    pack_corpora([corpus], tmp_path / "opus.tar", max_seconds=16.0)
    with tarfile.open(tmp_path / "opus.tar") as tar:
        handle = tar.extractfile("speechocean762/SPEAKER0001_0.opus")
        assert handle is not None and handle.read() == opus.read_bytes()
    for clip, row in zip(clips, rows, strict=True):
        assert clip.audio.dtype == np.int16 and abs(len(clip.audio) / 16_000 - row.seconds) < 0.1
        assert clip.corpus == "speechocean762" and np.abs(clip.audio).max() > 1000


# ---------------------------------------------------------------------------------- transfer
def test_a_folder_travels_in_parts_and_is_joined_once_all_arrived(tmp_path: Path) -> None:
    from training.speech.__main__ import main as pipeline
    from training.speech.transfer import receive, split

    folder = tmp_path / "carry"
    (folder / "recordings").mkdir(parents=True)
    rng = np.random.default_rng(0)
    files = {"big.bin": rng.bytes(2500), "recordings/a.tar": rng.bytes(900), "small.json": b"{}", "empty": b""}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    parts = split(folder, tmp_path / "parts", limit=1000)
    assert len(parts) >= 4 and all(
        sum(f.stat().st_size for f in p.iterdir() if f.name != "manifest.json") <= 1000 for p in parts
    )

    store = tmp_path / "store"
    first = receive(parts[0], store)
    assert first.parts_before == [] and not first.complete and "fresh store" in first.describe()
    for part in parts[1:-1]:
        assert not receive(part, store).complete
    again = receive(parts[1], store)  # a part sent twice changes nothing
    assert again.missing == [len(parts)]
    last = receive(parts[-1], store)
    assert last.complete and last.parts_before == list(range(1, len(parts)))
    for name, data in files.items():
        assert (last.folder / name).read_bytes() == data  # type: ignore[operator]

    # another split (a changed carry) in the same store starts over, and a damaged chunk is caught
    (folder / "small.json").write_bytes(b'{"changed": 1}')
    parts = split(folder, tmp_path / "parts", limit=1000)
    assert receive(parts[0], store).parts_before == []
    chunk = next(f for f in parts[-1].iterdir() if f.name != "manifest.json")
    chunk.write_bytes(b"x" * chunk.stat().st_size)
    for part in parts[1:-1]:
        receive(part, store)
    with pytest.raises(ValueError, match="SHA-256"):
        receive(parts[-1], store)
    assert pipeline(["split", "--folder", str(folder), "--out", str(tmp_path / "p2"), "--part-bytes", "4000"]) == 0
    assert pipeline(["receive", "--part", str(tmp_path / "p2" / "part1"), "--store", str(tmp_path / "s2")]) == 0


# ------------------------------------------------------------------------ the whole pipeline
@pytest.mark.slow
@needs_espeak
@pytest.mark.skipif(ESPEAK_LIBRARY is None, reason="no libespeak-ng.so.1 under /usr/lib")
def test_pack_split_render_train_and_serve_a_head(tmp_path: Path) -> None:
    """Everything at toy size: pack (texts, docs, a real-speech corpus, a neural-voice folder),
    carry it in parts, render (espeak-ng through its C library, the recordings several times), train against the shipped head on the same dev clips, then serve
    the head through the real backend."""
    torch = pytest.importorskip("torch")
    from training.speech.__main__ import main as pipeline
    from training.speech.espeak import speak
    from training.speech.features import load_features
    from training.speech.student import load_plain_head
    from training.speech.teacher import teacher_vectors
    from training.speech.voices import EVAL_VOICES, Voice

    from voicerag_cli.models.base import EmbeddingSpace
    from voicerag_cli.models.distilled.backend import DistilledSpeechEmbedder, create
    from voicerag_cli.models.distilled.head import HEAD_FORMAT, read_head_file
    from voicerag_cli.models.distilled.paths import head_path
    from voicerag_cli.models.numpy_sentence_embedder import NumpySentenceEmbedder

    corpus = speech_corpus(
        tmp_path / "speech" / "speechocean762", {"SPEAKER0001": QUESTIONS[:2], "SPEAKER0003": [QUESTIONS[2]]}
    )
    neural = tmp_path / "neural"  # a neural-voice folder's layout, spoken here by espeak-ng
    (neural / "clips").mkdir(parents=True)
    table = ["file\tspeaker\tduration_s\ttranscript\tcorpus"]
    for k, text in enumerate(SENTENCES[:2]):
        from training.speech.recordings import opus_bytes

        audio = speak(text, Voice("en-gb", 150, 40))
        (neural / "clips" / f"{k:06d}.opus").write_bytes(opus_bytes(audio))
        table.append(f"kokoro/{k:06d}.opus\taf_sky\t{len(audio) / 16_000:.3f}\t{text}\tkokoro")
    (neural / "transcripts.tsv").write_text("\n".join(table) + "\n", encoding="utf-8")

    carry, work, out = tmp_path / "carry", tmp_path / "work", tmp_path / "out" / "head.safetensors"
    pack = ["pack", "--out", str(carry), "--shared-text", str(shared_texts(tmp_path / "text"))]
    pack += ["--espeak", str(ESPEAK_LIBRARY)]
    pack += [
        "--docs",
        str(docs_root(tmp_path / "docs")),
        "--speech-corpus",
        str(corpus),
        "--neural-voices",
        str(neural),
    ]
    assert pipeline(pack) == 0

    # the teacher is the text embedder that indexes the passages (the numpy MiniLM), carried with
    # int8 matrices and only the word rows its texts use: cosine > 0.999 with the float model's
    texts = [*QUESTIONS, "when did the berlin wall fall", "What does create_engine do?"]
    teacher = teacher_vectors(texts, carry, "cpu")
    shipped_text = NumpySentenceEmbedder(Path(minilm_weights(Settings()).location), MINILM_SPACE_ID)
    assert (teacher * shipped_text.embed_texts(texts)).sum(1).min() > 0.999

    # carried in parts, as back-to-back device calls carry it, and joined in a store
    assert (
        pipeline(["split", "--folder", str(carry), "--out", str(tmp_path / "parts"), "--part-bytes", str(9 * 2**20)])
        == 0
    )
    parts = sorted((tmp_path / "parts").iterdir())
    assert len(parts) >= 3
    for part in parts:
        assert pipeline(["receive", "--part", str(part), "--store", str(tmp_path / "store")]) == 0
    received = tmp_path / "store" / "folder"
    assert sorted(p.name for p in received.rglob("*")) == sorted(p.name for p in carry.rglob("*"))

    render = ["render", "--carry", str(received), "--work", str(work), "--clips", "12", "--dev", "6"]
    assert pipeline([*render, "--workers", "1", "--copies", "real_speech=2", "--copies", "neural_voices=1"]) == 0
    data = load_features(work)
    recorded = data.recording >= 0
    assert int(recorded.sum()) == 2 * 2 + 2 and not bool((recorded & data.is_dev).any())
    assert {data.recordings[i].corpus for i in data.recording[recorded].tolist()} == {"speechocean762", "kokoro"}
    assert "who wrote the novel pride and prejudice" in data.texts  # a real transcript, its own teacher row
    assert "what is the capital city of australia" not in data.texts  # SPEAKER0003 is held out: never packed
    assert int(data.is_dev.sum()) == 3 and len(data.lengths) == 12 + 6 + 3  # the held-out questions
    assert data.flat.shape[1] == 384 and data.kind == "states"

    shipped = head_path()
    tiny = ["--d", "32", "--layers", "1", "--heads", "2", "--ff", "64", "--batch", "8", "--seed", "0"]
    common = ["--carry", str(received), "--work", str(work), "--out", str(out), *tiny]
    assert (
        pipeline(
            ["train", *common, "--steps", "30", "--lr", "3e-3", "--eval-every", "15", "--baseline-head", str(shipped)]
        )
        == 0
    )
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["steps"] == 30 and [entry["step"] for entry in summary["log"]] == [15, 30]
    assert summary["last_loss"] < summary["first_loss"], summary
    assert summary["baseline"]["candidates"] == summary["dev"]["candidates"] > 0
    assert summary["recorded_clips"] == 6
    head = read_head_file(out)
    assert head.metadata["format"] == HEAD_FORMAT and head.config["d"] == 32

    # served by the real backend: the same vector as the torch head on the same encoder states
    frontend = create(Settings(), None).frontend
    embedder = DistilledSpeechEmbedder(frontend, out, EmbeddingSpace(MINILM_SPACE_ID, 384))
    audio = speak(QUESTIONS[0], Voice(EVAL_VOICES[0], 165, 50))
    vector = embedder.embed_speech(audio, 16_000)
    model = load_plain_head(out).eval()
    states = torch.from_numpy(frontend(audio))[None]
    with torch.no_grad():
        expected = model(states, torch.ones(states.shape[:2], dtype=torch.bool))[0].numpy()
    assert float(vector @ expected) > 0.9999

    # the learning curve's subset: no human speech at all keeps the neural voices only
    none = tmp_path / "out" / "none.safetensors"
    args = ["--carry", str(received), "--work", str(work), "--out", str(none), *tiny, "--steps", "1"]
    assert pipeline(["train", *args, "--real-hours", "0", "--init", str(out), "--lr", "0"]) == 0
    assert json.loads(none.with_suffix(".json").read_text())["recorded_clips"] == 2
    first, second = read_head_file(out).tensors, read_head_file(none).tensors
    assert all(np.array_equal(first[k], second[k]) for k in first)  # resumed, and lr 0 moved nothing


def test_speed_perturbation_rescales_time_and_keeps_silence_silent() -> None:
    torch = pytest.importorskip("torch")
    from training.speech.augment import Augmenter

    t = np.arange(16_000) / 16_000
    clip = torch.from_numpy((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
    audio = torch.zeros(64, len(clip) + 4000)
    audio[:, : len(clip)] = clip
    out, new_lengths = Augmenter("cpu", seed=0).perturb_speed(audio, torch.full((64,), len(clip)))
    ratio = new_lengths.float() / len(clip)
    assert ((ratio > 0.85) & (ratio < 1.15)).all() and (ratio == 1).sum() > 10 and (ratio != 1).sum() > 10
    for row, n in zip(out, new_lengths, strict=True):
        assert row[int(n) :].abs().sum() == 0  # nothing past the new end
        assert abs(float(row[: int(n)].pow(2).mean()) / float(clip.pow(2).mean()) - 1) < 0.05
    unchanged = int(torch.nonzero(ratio == 1)[0])
    torch.testing.assert_close(out[unchanged, : len(clip)], clip)


def test_augmented_batch_keeps_lengths_and_levels() -> None:
    torch = pytest.importorskip("torch")
    from training.speech.augment import Augmenter

    lengths = torch.tensor([8000, 16000, 12000, 4000])
    audio = torch.zeros(4, 16000)
    for i, n in enumerate(lengths.tolist()):
        audio[i, :n] = 0.2 * torch.randn(n)
    out, new = Augmenter("cpu", seed=1)(audio, lengths)
    assert (new >= (lengths * 0.85).long()).all() and (new <= out.shape[1]).all()
    peaks = out.abs().amax(1)
    assert ((peaks > 10 ** (-18.5 / 20)) & (peaks < 10 ** (-0.9 / 20))).all()  # gain -18..-1 dBFS
    for row, n in zip(out, new, strict=True):
        assert row[int(n) :].abs().sum() == 0


@pytest.mark.slow
@needs_espeak
def test_log_mel_features_train_the_encoder_with_the_head(tmp_path: Path) -> None:
    """`render --keep-mel` + `train --tune-layers N`: the encoder runs per batch, its top layers
    train, and the tuned encoder is saved in the form WhisperEncoder loads. Frozen (N = 0), the
    log-mel path gives the head exactly what the encoder-state path gives it."""
    torch = pytest.importorskip("torch")
    from safetensors.numpy import load_file
    from training.speech.__main__ import main as pipeline
    from training.speech.espeak import speak
    from training.speech.features import POOL, Featurizer, assemble, save_features
    from training.speech.student import HeadConfig, SpeechHead
    from training.speech.teacher import teacher_vectors
    from training.speech.train import tuned_student
    from training.speech.voices import EVAL_VOICES, Voice
    from training.speech.whisper_torch import TunedEncoderHead, WhisperEncoder

    carry, work = tmp_path / "carry", tmp_path / "work"
    assert pipeline(["pack", "--out", str(carry), "--shared-text", str(shared_texts(tmp_path / "text"))]) == 0
    texts = QUESTIONS + SENTENCES
    clips = [(speak(t, Voice(EVAL_VOICES[k % 3], 160, 50)) * 32767).astype(np.int16) for k, t in enumerate(texts)]
    mels = Featurizer(carry, "cpu", seed=0, keep_mel=True)(clips, augment=False)
    states = Featurizer(carry, "cpu", seed=0)(clips, augment=False)
    assert all(m.shape[1] == 80 and m.shape[0] % 2 == 0 for m in mels)

    head = SpeechHead(HeadConfig(d=32, layers=1, heads=2, ff=64, pool=POOL)).eval()
    frozen = tuned_student(carry, head, 0).eval()
    assert not frozen.encoder_parameters()
    with torch.no_grad():
        mel = mels[0].float()[None]
        via_mel = frozen(mel, torch.ones(mel.shape[:2], dtype=torch.bool))
        pooled = states[0].float()[None]
        via_states = head(pooled, torch.ones(pooled.shape[:2], dtype=torch.bool), pooled=True)
    torch.testing.assert_close(via_mel, via_states, atol=2e-3, rtol=0)  # states were stored in float16

    n = len(texts)
    data = assemble(mels, list(range(n)), [i >= n - 3 for i in range(n)], [-1] * n,
                    teacher_vectors(texts, carry, "cpu"), texts, ["q"] * n, [], "mel")  # fmt: skip
    save_features(work, data)
    out = tmp_path / "out" / "head.safetensors"
    options = ["--d", "32", "--layers", "1", "--heads", "2", "--ff", "64", "--batch", "4"]
    common = ["--carry", str(carry), "--work", str(work), "--out", str(out), "--steps", "2", "--eval-every", "2"]
    assert pipeline(["train", *common, *options, "--tune-layers", "1", "--encoder-lr", "1e-3"]) == 0
    tuned = load_file(str(out.with_name("encoder.safetensors")))
    original = load_file(str(carry / "whisper_encoder.safetensors"))
    changed = {k for k in tuned if not np.array_equal(tuned[k], original[k])}
    assert changed and all(
        k.startswith("encoder/layer_3/") for k in changed - {"encoder/layer_norm/gamma", "encoder/layer_norm/beta"}
    )
    WhisperEncoder(tuned)  # loads as the front-end's weights would
    with pytest.raises(ValueError, match="keep_mel"):
        pipeline(["train", *common, *options])  # log-mel features need tune_layers
    every_layer = tuned_student(carry, head, 4)
    assert isinstance(every_layer, TunedEncoderHead)
    # 12 tensors a layer (two norms, attention in and out, two FFN linears) + the final norm's 2
    assert len(tuned_student(carry, head, 1).encoder_parameters()) == 12 + 2
    assert len(every_layer.encoder_parameters()) == 4 * 12 + 2


def test_a_soup_of_heads_is_their_weighted_average(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from training.speech.__main__ import main as pipeline
    from training.speech.export import save_head
    from training.speech.student import HeadConfig, SpeechHead

    from voicerag_cli.models.distilled.head import NumpySpeechHead, read_head_file

    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        paths.append(save_head(SpeechHead(HeadConfig(d=32, layers=1, heads=2, ff=64)), tmp_path / f"{seed}.safetensors",
                               {"seed": seed}, bridge=False, part_bytes=0)[0])  # fmt: skip
    out = tmp_path / "soup.safetensors"
    assert pipeline(["soup", "--head", str(paths[0]), "--weight", "0.25", "--head", str(paths[1]),
                     "--weight", "0.75", "--out", str(out)]) == 0  # fmt: skip
    a, b, mixed = (read_head_file(p) for p in (*paths, out))
    for name, tensor in mixed.tensors.items():
        np.testing.assert_allclose(tensor, 0.25 * a.tensors[name] + 0.75 * b.tensors[name], atol=2e-3)
    assert json.loads(mixed.metadata["training"])["soup"][1]["weight"] == 0.75
    assert NumpySpeechHead(mixed)(np.ones((40, 384), np.float32)).shape == (384,)  # the backend runs it
    torch.manual_seed(2)
    other = save_head(SpeechHead(HeadConfig(d=64, layers=1, heads=2, ff=64)), tmp_path / "o.safetensors", {}, False, 0)
    with pytest.raises(ValueError, match="architectures"):
        pipeline(["soup", "--head", str(paths[0]), "--weight", "0.5", "--head", str(other[0]), "--weight", "0.5",
                  "--out", str(out)])  # fmt: skip
