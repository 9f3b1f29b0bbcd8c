"""The GPU training pipeline end to end at toy size on the CPU: pack the carry folder from the
bundled models, featurize real espeak-ng speech with the torch front-end, save the features as
`render` does, train a small plain head for a few steps (scored against the shipped head on the
same dev clips), and load the result through the real e2e backend."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from voicerag_cli.config import Settings
from voicerag_cli.models.base import EmbeddingSpace
from voicerag_cli.models.distilled.head import HEAD_FORMAT, read_head_file
from voicerag_cli.models.distilled.paths import head_weights
from voicerag_cli.models.sentence_embedder import MINILM_SPACE_ID, minilm_weights

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
]

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
    "The Amazon rainforest produces a large share of the world's oxygen.",
    "Mount Kilimanjaro is the highest mountain in Africa.",
]


def _shared_texts(folder: Path) -> Path:
    folder.mkdir()
    with gzip.open(folder / "questions_en.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps({"text": q}) + "\n" for q in QUESTIONS)
    with gzip.open(folder / "wiki_sentences_en.txt.gz", "wt", encoding="utf-8") as f:
        f.writelines(s + "\n" for s in SENTENCES)
    return folder


def test_pack_featurize_train_and_serve_a_head(tmp_path: Path) -> None:
    from voicerag_cli.models.distilled.backend import DistilledSpeechEmbedder, create
    from voicerag_cli.models.numpy_sentence_embedder import NumpySentenceEmbedder
    from voicerag_cli.training import gpu_train
    from voicerag_cli.training.head import SpeechHead
    from voicerag_cli.training.render import speak
    from voicerag_cli.training.voices import EVAL_VOICES, Voice

    carry, work, out = tmp_path / "carry", tmp_path / "work", tmp_path / "out" / "head.safetensors"
    gpu_train.pack(carry, len(QUESTIONS), len(SENTENCES), None, _shared_texts(tmp_path / "text"), seed=0)
    assert not (carry / "espeak.tgz").exists()  # no wheel given: a carry for training only
    rows = gpu_train.load_texts(carry)
    texts = [r["text"] for r in rows]
    assert sorted(texts) == sorted(QUESTIONS + SENTENCES)

    # the teacher is the text embedder that indexes the passages (the numpy MiniLM), carried
    # with int8 matrices: each vector within cosine 0.999 of the float model's
    teacher = gpu_train.teacher_vectors(texts, carry, "cpu")
    shipped_text = NumpySentenceEmbedder(Path(minilm_weights(Settings()).location), MINILM_SPACE_ID)
    assert (teacher * shipped_text.embed_texts(texts)).sum(1).min() > 0.999

    # each text twice (two voices), the last three texts' clips are the dev split
    voices = [Voice(EVAL_VOICES[0], 165, 50), Voice(EVAL_VOICES[3], 140, 40)]
    text_of = [i for i in range(len(texts)) for _ in voices]
    clips = [(speak(texts[i], voices[k % 2]) * 32767).astype(np.int16) for k, i in enumerate(text_of)]
    is_dev = [i >= len(texts) - 3 for i in text_of]
    featurizer = gpu_train.GpuFeaturizer(carry, "cpu", seed=0)
    train_clips = [c for c, dev in zip(clips, is_dev, strict=True) if not dev]
    dev_clips = [c for c, dev in zip(clips, is_dev, strict=True) if dev]
    train_feats, dev_feats = iter(featurizer(train_clips, augment=True)), iter(featurizer(dev_clips, augment=False))
    feats = [next(dev_feats) if dev else next(train_feats) for dev in is_dev]
    data = gpu_train.assemble(feats, text_of, is_dev, teacher, texts, [r["kind"] for r in rows])
    gpu_train.save_features(work, data)

    shipped = Path(head_weights(Settings()).location)
    options = ["--arch", "head", "--d", "32", "--layers", "1", "--heads", "2", "--ff", "64", "--batch", "6"]
    common = ["--carry", str(carry), "--work", str(work), "--out", str(out), "--seed", "0"]
    assert (
        gpu_train.main(
            ["train", *common, *options, "--steps", "4", "--eval-every", "2", "--baseline-head", str(shipped)]
        )
        == 0
    )

    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["arch"] == "head" and summary["steps"] == 4 and summary["clips"] == 14
    assert [entry["step"] for entry in summary["log"]] == [2, 4]
    assert summary["baseline"]["candidates"] == 3 == summary["dev"]["candidates"]
    assert 0.0 <= summary["baseline"]["r1"] <= summary["baseline"]["r5"] <= 1.0
    head = read_head_file(out)
    assert head.metadata["format"] == HEAD_FORMAT

    # served by the real backend: the same vector as the torch head on the same encoder states
    frontend = create(Settings(), None).frontend
    embedder = DistilledSpeechEmbedder(frontend, out, EmbeddingSpace(MINILM_SPACE_ID, 384))
    audio = speak(texts[0], voices[0])
    vector = embedder.embed_speech(audio, 16_000)
    assert vector.shape == (384,) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4
    model = gpu_train.load_plain_head(out).eval()
    assert isinstance(model, SpeechHead)
    states = torch.from_numpy(frontend(audio))[None]
    with torch.no_grad():
        expected = model(states, torch.ones(states.shape[:2], dtype=torch.bool))[0].numpy()
    assert float(vector @ expected) > 0.9999

    # resuming from the saved head continues from its weights, not from scratch
    resumed = tmp_path / "out" / "resumed.safetensors"
    common_resumed = ["--carry", str(carry), "--work", str(work), "--out", str(resumed), "--init", str(out)]
    assert gpu_train.main(["train", *common_resumed, *options, "--steps", "1", "--eval-every", "5", "--lr", "0"]) == 0
    first, second = read_head_file(out).tensors, read_head_file(resumed).tensors
    assert all(np.array_equal(first[k], second[k]) for k in first)

    # a second rendering (other voices of the first four texts plus one new text) joins as
    # training clips only: shared texts keep one id, the dev set stays the primary's
    extra_texts = [*texts[:4], "Which planet has the longest day?"]
    extra_teacher = gpu_train.teacher_vectors(extra_texts, carry, "cpu")
    extra_clips = [(speak(t, Voice(EVAL_VOICES[5], 180, 60)) * 32767).astype(np.int16) for t in extra_texts]
    extra_feats = featurizer(extra_clips, augment=True)
    extra = gpu_train.assemble(extra_feats, list(range(5)), [False] * 4 + [True], extra_teacher, extra_texts, ["q"] * 5)
    gpu_train.save_features(tmp_path / "work2", extra)
    joined = gpu_train.join_features(gpu_train.load_features(work), [gpu_train.load_features(tmp_path / "work2")])
    assert len(joined["texts"]) == len(texts) and int(joined["is_dev"].sum()) == int(data["is_dev"].sum())
    assert joined["text"][-4:].tolist() == [0, 1, 2, 3] and len(joined["lengths"]) == len(feats) + 4
    starts = torch.cumsum(joined["lengths"], 0) - joined["lengths"]
    last = joined["flat"][int(starts[-1]) :]
    assert torch.equal(last, extra_feats[3].cpu())  # frames follow their clip
    torch.testing.assert_close(joined["teacher"], data["teacher"])
    summary_joined = tmp_path / "out" / "joined.safetensors"
    common_joined = ["--carry", str(carry), "--work", str(work), "--out", str(summary_joined)]
    assert (
        gpu_train.main(["train", *common_joined, "--extra-work", str(tmp_path / "work2"), *options, "--steps", "1"])
        == 0
    )
    assert json.loads(summary_joined.with_suffix(".json").read_text())["clips"] == 14 + 4


def test_speed_perturbation_rescales_time_and_keeps_silence_silent() -> None:
    from voicerag_cli.training import gpu_train
    from voicerag_cli.training.render import speak
    from voicerag_cli.training.voices import EVAL_VOICES, Voice

    featurizer = gpu_train.GpuFeaturizer.__new__(gpu_train.GpuFeaturizer)  # the augmenter only: no encoder
    featurizer.torch, featurizer.device = torch, "cpu"
    featurizer.gen = torch.Generator().manual_seed(0)
    clip = torch.from_numpy(speak("How many moons does Mars have?", Voice(EVAL_VOICES[0], 165, 50)).astype(np.float32))
    audio = torch.zeros(64, len(clip) + 4000)
    audio[:, : len(clip)] = clip
    lengths = torch.full((64,), len(clip))
    out, new_lengths = featurizer.perturb_speed(audio, lengths)
    ratio = new_lengths.float() / len(clip)
    assert ((ratio > 0.85) & (ratio < 1.15)).all() and (ratio == 1).sum() > 10 and (ratio != 1).sum() > 10
    for row, n in zip(out, new_lengths, strict=True):
        assert row[int(n) :].abs().sum() == 0  # nothing past the new end
        # the same speech energy, spread over the new duration
        assert abs(float(row[: int(n)].pow(2).mean()) / float(clip.pow(2).mean()) - 1) < 0.05
    unchanged = int(torch.nonzero(ratio == 1)[0])
    torch.testing.assert_close(out[unchanged, : len(clip)], clip)


LIBRISPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech" / "librispeech"


@pytest.mark.skipif(not (LIBRISPEECH / "transcripts.tsv").exists(), reason="../shared LibriSpeech is absent")
def test_real_speech_travels_without_held_out_speakers_and_joins_the_clips(tmp_path: Path) -> None:
    """Real utterances packed as Opus (training speakers only), rendered alone (no espeak jobs),
    each copy augmented anew and labelled with its transcript's teacher vector."""
    from voicerag_cli.models.numpy_sentence_embedder import NumpySentenceEmbedder
    from voicerag_cli.training import gpu_train
    from voicerag_cli.training.real_speech import ARCHIVE, HELD_OUT_SPEAKERS, load_real_speech, read_transcripts

    rows = read_transcripts(LIBRISPEECH)
    held = next(r for r in rows if r.speaker in HELD_OUT_SPEAKERS)
    kept = [r for r in rows if r.speaker not in HELD_OUT_SPEAKERS and r.seconds <= 6][:2]
    too_long = next(r for r in rows if r.speaker not in HELD_OUT_SPEAKERS and r.seconds > gpu_train.MAX_SECONDS)
    mini = tmp_path / "librispeech"
    mini.mkdir()
    table = ["file\tspeaker\tduration_s\ttranscript"]
    for r in [held, *kept, too_long]:
        shutil.copy(LIBRISPEECH / r.file, mini / r.file)
        table.append(f"{r.file}\t{r.speaker}\t{r.seconds}\t{r.text}")
    (mini / "transcripts.tsv").write_text("\n".join(table) + "\n", encoding="utf-8")

    carry = tmp_path / "carry"
    gpu_train.pack(carry, len(QUESTIONS), len(SENTENCES), None, _shared_texts(tmp_path / "text"), 0, mini)
    real = load_real_speech(carry / ARCHIVE)
    assert [text for text, _ in real] == [r.text for r in kept]  # no held-out speaker, nothing cut
    for (_, audio), r in zip(real, kept, strict=True):
        assert audio.dtype == np.int16 and abs(len(audio) / 16_000 - r.seconds) < 0.1

    # the pruned word embeddings still give the teacher's vectors for every carried text
    texts = [r.text for r in kept] + QUESTIONS[:2]
    teacher = gpu_train.teacher_vectors(texts, carry, "cpu")
    shipped_text = NumpySentenceEmbedder(Path(minilm_weights(Settings()).location), MINILM_SPACE_ID)
    assert (teacher * shipped_text.embed_texts(texts)).sum(1).min() > 0.999

    data = gpu_train.render(carry, tmp_path / "work", 0, 0, 0, 1, 0.5, save=False, real_copies=2)
    assert data["rendered_clips"] == 4 and not bool(data["is_dev"].any())
    assert [data["texts"][i] for i in data["text"].tolist()] == [r.text for r in kept] * 2
    assert set(data["kinds"]) == {"real"}
    np.testing.assert_allclose(data["teacher"].numpy(), teacher[:2], atol=1e-5)
    starts = torch.cumsum(data["lengths"], 0) - data["lengths"]
    first = data["flat"][int(starts[0]) : int(starts[0] + data["lengths"][0])]
    second = data["flat"][int(starts[2]) : int(starts[2] + data["lengths"][2])]
    assert first.shape[1] == 384 and not (first.shape == second.shape and torch.equal(first, second))


def test_log_mel_features_train_the_encoder_with_the_head(tmp_path: Path) -> None:
    """`render --keep-mel` + `train --tune-layers N`: the encoder runs per batch, its top layers
    train, and the tuned encoder is saved in the form WhisperEncoder loads. Frozen (N = 0), the
    log-mel path gives the head exactly what the encoder-state path gives it."""
    from safetensors.numpy import load_file

    from voicerag_cli.training import gpu_train
    from voicerag_cli.training.head import HeadConfig, SpeechHead
    from voicerag_cli.training.render import speak
    from voicerag_cli.training.voices import EVAL_VOICES, Voice
    from voicerag_cli.training.whisper_torch import TunedEncoderHead, WhisperEncoder

    carry, work = tmp_path / "carry", tmp_path / "work"
    gpu_train.pack(carry, len(QUESTIONS), len(SENTENCES), None, _shared_texts(tmp_path / "text"), seed=0)
    rows = gpu_train.load_texts(carry)
    texts = [r["text"] for r in rows]
    clips = [(speak(t, Voice(EVAL_VOICES[k % 3], 160, 50)) * 32767).astype(np.int16) for k, t in enumerate(texts)]
    mel_featurizer = gpu_train.GpuFeaturizer(carry, "cpu", seed=0, keep_mel=True)
    mels = mel_featurizer(clips, augment=False)
    states = gpu_train.GpuFeaturizer(carry, "cpu", seed=0)(clips, augment=False)
    assert all(m.shape[1] == 80 and m.shape[0] % 2 == 0 for m in mels)

    head = SpeechHead(HeadConfig(d=32, layers=1, heads=2, ff=64, pool=gpu_train.POOL)).eval()
    frozen = gpu_train.tuned_student(carry, head, 0).eval()
    assert not frozen.encoder_parameters()
    with torch.no_grad():
        mel = mels[0].float()[None]
        via_mel = frozen(mel, torch.ones(mel.shape[:2], dtype=torch.bool))
        pooled = states[0].float()[None]
        via_states = head(pooled, torch.ones(pooled.shape[:2], dtype=torch.bool), pooled=True)
    torch.testing.assert_close(via_mel, via_states, atol=2e-3, rtol=0)  # states were stored in float16

    is_dev = [i >= len(texts) - 3 for i in range(len(texts))]
    teacher = gpu_train.teacher_vectors(texts, carry, "cpu")
    data = gpu_train.assemble(mels, list(range(len(texts))), is_dev, teacher, texts, [r["kind"] for r in rows])
    data["features"] = "mel"
    gpu_train.save_features(work, data)
    out = tmp_path / "out" / "head.safetensors"
    options = ["--arch", "head", "--d", "32", "--layers", "1", "--heads", "2", "--ff", "64", "--batch", "4"]
    common = ["--carry", str(carry), "--work", str(work), "--out", str(out), "--steps", "2", "--eval-every", "2"]
    assert gpu_train.main(["train", *common, *options, "--tune-layers", "1", "--encoder-lr", "1e-3"]) == 0
    tuned = load_file(str(out.with_name("encoder.safetensors")))
    original = load_file(str(carry / "whisper_encoder.safetensors"))
    changed = {k for k in tuned if not np.array_equal(tuned[k], original[k])}
    assert changed and all(
        k.startswith("encoder/layer_3/") for k in changed - {"encoder/layer_norm/gamma", "encoder/layer_norm/beta"}
    )
    WhisperEncoder(tuned)  # loads as the front-end's weights would
    with pytest.raises(SystemExit, match="--keep-mel"):
        gpu_train.main(["train", *common, *options])  # log-mel features need --tune-layers
    every_layer = gpu_train.tuned_student(carry, head, 4)
    assert isinstance(every_layer, TunedEncoderHead)
    # 12 tensors a layer (two norms, attention in and out, two FFN linears) + the final norm's 2
    assert len(gpu_train.tuned_student(carry, head, 1).encoder_parameters()) == 12 + 2
    assert len(every_layer.encoder_parameters()) == 4 * 12 + 2
