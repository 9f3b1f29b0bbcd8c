"""Train the speech embedder's head where the GPU is: render, featurize and distil.

Everything the GPU machine needs fits in one small folder (`pack`, run here): the espeak-ng
library and its English data, the Whisper tiny.en encoder weights read from the bundled
CTranslate2 model, all-MiniLM-L6-v2 (word embeddings int8 per row, the rest float16) and
training text from ../shared/data/text. There (`render`), 15 processes speak the texts with
espeak-ng's C library while the GPU augments the audio, computes log-mels, runs the encoder and
saves pooled states (one raw array, memory-mapped by every run); `train` distils a student onto
the teacher's vectors, the plain head (`--arch head`, the shipped one) or the bridge into
MiniLM's BERT (`--arch bridge`), and scores held-out texts spoken by held-out voices.
scripts/gpu_sweep.sh runs several `train`s side by side on one rendering; the model card has the
commands of every run. Real speech: `pack --real-speech` carries the training speakers of a
LibriSpeech-style folder (training/real_speech.py) and `render --real-copies N` mixes each
utterance in N times. Tuning the encoder: `render --keep-mel` saves log-mel frames instead of
encoder states and `train --tune-layers N` trains the encoder's top N layers with the head.

    python -m voicerag_cli.training.gpu_train pack --out .carry --questions 140000 --sentences 75000 --espeak-wheel W
    python -m voicerag_cli.training.gpu_train render --carry .carry --work /tmp/vr --clips 150000
    python -m voicerag_cli.training.gpu_train train --carry .carry --work /tmp/vr --arch head \\
        --d 384 --layers 3 --heads 6 --ff 1536 --out OUT/head.safetensors --minutes 3.5
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import math
import os
import random
import sys
import tarfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE = 16_000
WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"
MAX_SECONDS = 16.0  # longer clips are cut (Wikipedia's longest sentences): the pooled tensor stays dense
POOL = 4


# ---------------------------------------------------------------------------------------- pack
def pack(
    out: Path,
    questions: int,
    sentences: int,
    espeak_wheel: Path | None,
    shared: Path,
    seed: int,
    real_speech: Path | None = None,
) -> None:
    """The folder the GPU machine needs; without `espeak_wheel` it can train on features but not
    render. `real_speech`: a LibriSpeech-style folder whose training speakers travel too."""
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer

    from voicerag_cli.config import Settings
    from voicerag_cli.models.distilled.paths import bundled_whisper_dir
    from voicerag_cli.models.sentence_embedder import minilm_weights
    from voicerag_cli.training.real_speech import ARCHIVE, pack_real_speech
    from voicerag_cli.training.whisper_torch import mel_filters, read_ct2_variables

    out.mkdir(parents=True, exist_ok=True)
    if espeak_wheel is not None:
        pack_espeak(espeak_wheel, out / "espeak.tgz")
    rng = random.Random(seed)
    with gzip.open(shared / "questions_en.jsonl.gz", "rt", encoding="utf-8") as f:
        qs = [json.loads(line)["text"] for line in f]
    rng.shuffle(qs)
    sents: list[str] = []
    with gzip.open(shared / "wiki_sentences_en.txt.gz", "rt", encoding="utf-8") as f:
        for line in f:
            sents.append(line.strip())
            if len(sents) >= sentences:
                break
    with gzip.open(out / "texts.jsonl.gz", "wt", encoding="utf-8", compresslevel=9) as f:
        for kind, items in (("question", qs[:questions]), ("sentence", sents)):
            for text in items:
                f.write(json.dumps({"text": text, "kind": kind}, ensure_ascii=False) + "\n")
    carried_texts = qs[:questions] + sents
    if real_speech is not None:
        carried_texts += [u.text for u in pack_real_speech(real_speech, out / ARCHIVE, MAX_SECONDS)]
    whisper = bundled_whisper_dir()
    assert whisper is not None
    enc = read_ct2_variables(whisper / "model.bin")
    # the mel filter bank travels with the encoder: the GPU machine has no faster-whisper
    enc["mel_filters"] = mel_filters()
    save_file(
        {k: (v.astype(np.float16) if v.dtype == np.float16 else v) for k, v in enc.items()},
        str(out / "whisper_encoder.safetensors"),
    )
    minilm = Path(minilm_weights(Settings()).location)
    from voicerag_cli.models.bert_weights import read_float32

    # only the word embeddings the carried texts use travel (the teacher embeds nothing else)
    tokenizer = Tokenizer.from_file(str(minilm / "tokenizer.json"))
    used_ids = {i for e in tokenizer.encode_batch(carried_texts) for i in e.ids} | set(range(1000))
    word_rows = np.array(sorted(used_ids), dtype=np.int32)
    tensors: dict[str, np.ndarray] = {}
    for key, value in read_float32(minilm).items():
        if key == WORD_EMBEDDINGS:
            tensors[key + ".rows"] = word_rows
            tensors[key + ".height"] = np.array([value.shape[0]], dtype=np.int32)
            value = value[word_rows]
        # the matrices in int8 with a scale per row, for the carry's 64 MiB bound (the bundled
        # dense matrices are stored so already, bert_weights.py: only the positions round anew)
        if value.ndim == 2 and value.size >= 65_536:
            scale = np.abs(value).max(1, keepdims=True) / 127.0
            tensors[key + ".int8"] = np.round(value / scale).astype(np.int8)
            tensors[key + ".scale"] = scale.astype(np.float32)
        elif key.startswith("pooler.") or key.endswith("position_ids"):
            continue
        else:
            tensors[key] = value.astype(np.float16)
    save_file(tensors, str(out / "minilm.safetensors"))
    for name in ("tokenizer.json", "config.json"):
        (out / f"minilm_{name}").write_bytes((minilm / name).read_bytes())
    total = sum(p.stat().st_size for p in out.iterdir())
    print(f"packed {out}: {total / 2**20:.1f} MiB")


def pack_espeak(wheel_path: Path, out: Path) -> None:
    """espeak-ng's library and its data from the espeakng-loader wheel, without other languages'
    dictionaries (18 of 20 MB)."""
    import zipfile

    with zipfile.ZipFile(wheel_path) as wheel, tarfile.open(out, "w:gz") as tar:
        for name in wheel.namelist():
            base = name.rsplit("/", 1)[-1]
            if name.endswith("/") or (base.endswith("_dict") and base != "en_dict"):
                continue
            if base.startswith("libespeak-ng.so") and base != "libespeak-ng.so.1":
                continue
            if not (name.startswith("espeakng_loader/espeak-ng-data/") or base == "libespeak-ng.so.1"):
                continue
            data = wheel.read(name)
            info = tarfile.TarInfo(name.removeprefix("espeakng_loader/"))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


# ----------------------------------------------------------------------------- model loading
def load_minilm(carry: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from safetensors.numpy import load_file

    raw = load_file(str(carry / "minilm.safetensors"))
    extras = (".int8", ".scale", ".rows", ".height")
    tensors = {k: v.astype(np.float32) for k, v in raw.items() if not k.endswith(extras)}
    for key in (k.removesuffix(".int8") for k in raw if k.endswith(".int8")):
        tensors[key] = raw[key + ".int8"].astype(np.float32) * raw[key + ".scale"]
    if WORD_EMBEDDINGS + ".rows" in raw:  # the carried rows back in their places; the rest zero
        carried = tensors[WORD_EMBEDDINGS]
        full = np.zeros((int(raw[WORD_EMBEDDINGS + ".height"][0]), carried.shape[1]), np.float32)
        full[raw[WORD_EMBEDDINGS + ".rows"]] = carried
        tensors[WORD_EMBEDDINGS] = full
    return tensors, json.loads((carry / "minilm_config.json").read_text())


def load_texts(carry: Path) -> list[dict[str, Any]]:
    from voicerag_cli.training.corpus import is_held_out

    with gzip.open(carry / "texts.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    seen: set[str] = set()
    out = []
    for row in rows:
        key = row["text"].strip().lower()
        if not key or key in seen:
            continue
        seen.add(key)
        row["held_out"] = is_held_out(row["text"])
        out.append(row)
    return out


def teacher_vectors(texts: list[str], carry: Path, device: str) -> np.ndarray:
    import torch
    from tokenizers import Tokenizer

    from voicerag_cli.training.bridge import TorchBert

    tensors, config = load_minilm(carry)
    tokenizer = Tokenizer.from_file(str(carry / "minilm_tokenizer.json"))
    tokenizer.enable_truncation(256)
    tokenizer.no_padding()
    bert = TorchBert(tensors, config).to(device).eval()
    words = torch.from_numpy(tensors["embeddings.word_embeddings.weight"]).to(device)
    ids = [e.ids for e in tokenizer.encode_batch(texts)]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = np.zeros((len(texts), words.shape[1]), np.float32)
    with torch.no_grad():
        for start in range(0, len(order), 2048):
            chunk = order[start : start + 2048]
            width = max(len(ids[i]) for i in chunk)
            batch = torch.zeros(len(chunk), width, dtype=torch.long)
            mask = torch.zeros(len(chunk), width, dtype=torch.bool)
            for row, i in enumerate(chunk):
                batch[row, : len(ids[i])] = torch.tensor(ids[i])
                mask[row, : len(ids[i])] = True
            out[chunk] = bert(words[batch.to(device)], mask.to(device)).float().cpu().numpy()
    return out


# --------------------------------------------------------------------------------- rendering
_ENGINE: Any = None


def _init_worker(espeak_root: str) -> None:
    global _ENGINE
    from voicerag_cli.training.espeak_lib import EspeakLibrary

    root = Path(espeak_root)
    _ENGINE = EspeakLibrary(root / "libespeak-ng.so.1", root / "espeak-ng-data")


def _render(job: tuple[int, str, str, int, int, int]) -> tuple[int, np.ndarray]:
    from scipy.signal import resample_poly

    index, text, voice, rate, pitch, gap = job
    try:
        audio = _ENGINE.speak(text, voice, rate, pitch, gap)
    except ValueError:
        audio = np.zeros(0, np.int16)
    if audio.size < 2000:
        return index, np.zeros(0, np.int16)
    resampled = resample_poly(audio.astype(np.float32), 320, 441)  # 22,050 -> 16,000 Hz
    return index, np.clip(resampled, -32768, 32767).astype(np.int16)[: int(MAX_SECONDS * SAMPLE_RATE)]


class GpuFeaturizer:
    """Augmentation, log-mel and the frozen encoder on the GPU, then x4 mean pooling (fp16)."""

    def __init__(self, carry: Path, device: str, seed: int, keep_mel: bool = False) -> None:
        import torch
        from safetensors.numpy import load_file

        from voicerag_cli.training.whisper_torch import LogMel, WhisperEncoder

        self.torch = torch
        self.device = device
        weights = load_file(str(carry / "whisper_encoder.safetensors"))
        self.mel = LogMel(weights.pop("mel_filters")).to(device)
        self.encoder = WhisperEncoder(weights).to(device).eval()
        self.gen = torch.Generator(device=device).manual_seed(seed)
        self.keep_mel = keep_mel

    def _rand(self, *shape: int) -> Any:
        return self.torch.rand(*shape, generator=self.gen, device=self.device)

    def perturb_speed(self, audio: Any, lengths: Any, share: float = 0.5, spread: float = 0.12) -> tuple[Any, Any]:
        """Speed perturbation (Ko et al., 2015) for half the clips: resampled by 0.88-1.12, which
        moves tempo, pitch and formants together, as a longer or shorter vocal tract would.
        espeak varies rate and pitch but keeps each voice's formants."""
        torch = self.torch
        b, n = audio.shape
        factor = torch.where(
            self._rand(b) < share, 1 - spread + 2 * spread * self._rand(b), torch.ones(b, device=self.device)
        )
        new_lengths = (lengths.float() / factor).long().clamp(min=1)
        width = int(new_lengths.max())
        # output sample j reads input position j * factor (linear interpolation)
        pos = torch.arange(width, device=self.device)[None].float() * factor[:, None]
        left = pos.floor().long().clamp(max=n - 1)
        right = (left + 1).clamp(max=n - 1)
        w = pos - left
        out = torch.gather(audio, 1, left) * (1 - w) + torch.gather(audio, 1, right) * w
        out = out * (torch.arange(width, device=self.device)[None] < new_lengths[:, None])
        return out, new_lengths

    def augment(self, audio: Any, lengths: Any) -> tuple[Any, Any]:
        """Per clip, each with its own probability: speed, reverb, leading/trailing silence,
        coloured noise at 5-30 dB SNR (else a faint floor), gain -18..-1 dBFS."""
        torch = self.torch
        audio, lengths = self.perturb_speed(audio, lengths)
        b, n = audio.shape
        rate = SAMPLE_RATE
        # room reverb (35 %): exponentially decaying noise tail after a direct spike
        rt60 = 0.15 + 0.55 * self._rand(b)
        k = int(0.7 * rate)
        t = torch.arange(k, device=self.device) / rate
        tail = torch.randn(b, k, generator=self.gen, device=self.device) * torch.exp(-6.9 * t[None] / rt60[:, None])
        tail[:, 0] = 0
        tail = 0.4 * tail / tail.abs().amax(1, keepdim=True).clamp(min=1e-9)
        rir = torch.cat([torch.ones(b, 1, device=self.device), tail], 1)
        rir = rir / rir.norm(dim=1, keepdim=True)
        size = 1 << math.ceil(math.log2(n + k + 1))
        wet = torch.fft.irfft(torch.fft.rfft(audio, size) * torch.fft.rfft(rir, size), size)[:, : n + rate // 4]
        use_reverb = self._rand(b) < 0.35
        dry = torch.nn.functional.pad(audio, (0, rate // 4))
        x = torch.where(use_reverb[:, None], wet, dry)
        lengths = torch.where(use_reverb, lengths + rate // 4, lengths).clamp(max=x.shape[1])
        x = x * (torch.arange(x.shape[1], device=self.device)[None] < lengths[:, None])
        # silence before and after (0-0.4 s each)
        before = (self._rand(b) * 0.4 * rate).long()
        after = (self._rand(b) * 0.4 * rate).long()
        width = x.shape[1] + int(0.8 * rate)
        idx = torch.arange(width, device=self.device)[None] - before[:, None]
        valid = (idx >= 0) & (idx < lengths[:, None])
        x = torch.gather(torch.nn.functional.pad(x, (0, int(0.8 * rate))), 1, idx.clamp(min=0)) * valid
        lengths = lengths + before + after
        inside = torch.arange(width, device=self.device)[None] < lengths[:, None]
        # coloured noise (60 %): white, pink or brown, shaped in the frequency domain
        spec = torch.randn(b, width // 2 + 1, 2, generator=self.gen, device=self.device)
        freqs = torch.fft.rfftfreq(width, device=self.device)
        freqs[0] = freqs[1]
        exponent = torch.randint(0, 3, (b,), generator=self.gen, device=self.device).float()
        noise = torch.fft.irfft(torch.view_as_complex(spec) / freqs[None] ** (exponent[:, None] / 2), width)
        noise = noise / noise.pow(2).mean(1, keepdim=True).sqrt().clamp(min=1e-9)
        speech_rms = (audio.pow(2).sum(1) / lengths.clamp(min=1)).sqrt().clamp(min=1e-3)
        snr_db = 5 + 25 * self._rand(b)
        level = torch.where(self._rand(b) < 0.6, speech_rms / 10 ** (snr_db / 20), torch.full_like(snr_db, 1e-4))
        x = (x + noise * level[:, None]) * inside
        peak = x.abs().amax(1).clamp(min=1e-6)
        gain = 10 ** ((-18 + 17 * self._rand(b)) / 20) / peak
        return x * gain[:, None], lengths

    def __call__(self, clips: list[np.ndarray], augment: bool) -> list[Any]:
        """Each clip's pooled encoder states [T/8, 384], or with `keep_mel` its log-mel frames [F, 80]."""
        torch = self.torch
        from voicerag_cli.training.head import time_pool

        lengths = torch.tensor([len(c) for c in clips], device=self.device)
        audio = torch.zeros(len(clips), int(lengths.max()), device=self.device)
        for i, clip in enumerate(clips):
            audio[i, : len(clip)] = torch.from_numpy(clip.astype(np.float32) / 32768.0).to(self.device)
        if augment:
            audio, lengths = self.augment(audio, lengths)
        with torch.no_grad():
            mel, frames = self.mel(audio, lengths)
            if self.keep_mel:  # for tuning the encoder: `train --tune-layers`
                return [mel[i, :, : frames[i]].T.half() for i in range(len(clips))]
            states, counts = self.encoder(mel, frames)
            mask = torch.arange(states.shape[1], device=self.device)[None] < counts[:, None]
            pooled, pmask = time_pool(states, mask, POOL)
        n = pmask.sum(1)
        return [pooled[i, : n[i]].half() for i in range(len(clips))]


def render(
    carry: Path,
    work: Path,
    clips: int,
    dev: int,
    seed: int,
    workers: int,
    question_share: float,
    save: bool = True,
    real_copies: int = 0,
    keep_mel: bool = False,
) -> dict[str, Any]:
    """espeak-ng clips of `clips` training texts and `dev` held-out ones, featurized; with
    `real_copies`, each carried real utterance joins the training clips that many times, each
    copy augmented anew."""
    import multiprocessing as mp

    import torch

    from voicerag_cli.training.real_speech import ARCHIVE, load_real_speech
    from voicerag_cli.training.voices import EVAL_RATES, EVAL_VOICES, sample_train_voice, train_voice_names

    work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    espeak_root = work / "espeak"
    rows = load_texts(carry)
    real = load_real_speech(carry / ARCHIVE) if real_copies and (carry / ARCHIVE).exists() else []
    if real_copies and not real:
        raise SystemExit(f"--real-copies {real_copies}: {carry / ARCHIVE} is missing (pack --real-speech)")
    real_rows = list(range(len(rows), len(rows) + len(real)))
    rows += [{"text": text, "kind": "real", "held_out": False} for text, _ in real]
    rng = random.Random(seed)
    train_q = [i for i, r in enumerate(rows) if not r["held_out"] and r["kind"] == "question"]
    train_s = [i for i, r in enumerate(rows) if not r["held_out"] and r["kind"] == "sentence"]
    dev_rows = [i for i, r in enumerate(rows) if r["held_out"]]
    rng.shuffle(train_q)
    rng.shuffle(train_s)
    rng.shuffle(dev_rows)
    n_q = min(len(train_q), int(clips * question_share))
    chosen = train_q[:n_q] + train_s[: clips - n_q]
    unique = list(chosen)
    while len(chosen) < clips:  # more clips than texts: the texts again, each with a new voice
        rng.shuffle(unique)
        chosen += unique[: clips - len(chosen)]
    dev_q = [i for i in dev_rows if rows[i]["kind"] == "question"][: dev // 2]
    dev_s = [i for i in dev_rows if rows[i]["kind"] == "sentence"][: dev - len(dev_q)]
    dev_chosen = dev_q + dev_s
    used = sorted(set(chosen) | set(dev_chosen) | set(real_rows))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    teacher = teacher_vectors([rows[i]["text"] for i in used], carry, device)
    position = {row: k for k, row in enumerate(used)}
    print(f"[{time.time() - started:.0f}s] teacher vectors for {len(used)} texts", flush=True)
    names = train_voice_names()
    jobs = []
    for i in chosen:
        v = sample_train_voice(rng, names)
        jobs.append((len(jobs), rows[i]["text"], v.name, v.rate, v.pitch, v.word_gap))
    real_clips = [(len(jobs) + k, real[k % len(real)][1]) for k in range(len(real) * real_copies)]
    n_train = len(jobs) + len(real_clips)
    for k, i in enumerate(dev_chosen):
        jobs.append((n_train + k, rows[i]["text"], EVAL_VOICES[k % len(EVAL_VOICES)], EVAL_RATES[k % 2], 50, 0))
    real_text_of = [position[real_rows[k % len(real)]] for k in range(len(real_clips))]
    text_of = [position[i] for i in chosen] + real_text_of + [position[i] for i in dev_chosen]
    featurizer = GpuFeaturizer(carry, device, seed, keep_mel)
    feats: list[Any] = [None] * (len(jobs) + len(real_clips))
    pending: list[tuple[int, np.ndarray]] = []

    def flush() -> None:
        # training clips augmented, held-out (dev) clips clean; similar lengths batched together
        for is_train in (True, False):
            part = sorted((p for p in pending if (p[0] < n_train) == is_train), key=lambda item: len(item[1]))
            for start in range(0, len(part), 256):
                group = part[start : start + 256]
                for (index, _), f in zip(group, featurizer([c for _, c in group], augment=is_train), strict=True):
                    feats[index] = f
        pending.clear()

    if jobs:  # none: real speech alone
        if not (espeak_root / "libespeak-ng.so.1").exists():
            with tarfile.open(carry / "espeak.tgz") as tar:
                tar.extractall(espeak_root, filter="data")
        ctx = mp.get_context("fork")
        with ctx.Pool(workers, initializer=_init_worker, initargs=(str(espeak_root),)) as pool:
            for done, (index, audio) in enumerate(pool.imap_unordered(_render, jobs, chunksize=32), 1):
                if audio.size:
                    pending.append((index, audio))
                if len(pending) >= 4096:
                    flush()
                if done % 20000 == 0:
                    print(f"[{time.time() - started:.0f}s] rendered {done}/{len(jobs)}", flush=True)
        flush()
    for start in range(0, len(real_clips), 4096):  # the same array per copy: augmentation differs
        pending.extend(real_clips[start : start + 4096])
        flush()
    if real_clips:
        print(f"[{time.time() - started:.0f}s] {len(real_clips)} real clips ({len(real)} utterances)", flush=True)
    is_dev = [i >= n_train for i in range(len(feats))]
    texts = [rows[i]["text"] for i in used]
    kinds = [rows[i]["kind"] for i in used]
    data = assemble(feats, text_of, is_dev, teacher, texts, kinds)
    data["features"] = "mel" if keep_mel else "states"
    if save:
        save_features(work, data)
    print(
        f"[{time.time() - started:.0f}s] features {tuple(data['flat'].shape)} of {len(data['lengths'])} clips",
        flush=True,
    )
    return data


def assemble(
    feats: list[Any], text_of: list[int], is_dev: list[bool], teacher: np.ndarray, texts: list[str], kinds: list[str]
) -> dict[str, Any]:
    """Clip features (None where rendering failed) and their labels -> what `train` reads: the
    frames ragged as one [sum(T), C] tensor, clip lengths, text ids, dev flags, teacher vectors."""
    import torch

    keep = [i for i, f in enumerate(feats) if f is not None]
    return {
        "flat": torch.cat([feats[i] for i in keep]).cpu(),
        "lengths": torch.tensor([int(feats[i].shape[0]) for i in keep], dtype=torch.int64),
        "text": torch.tensor([text_of[i] for i in keep]),
        "is_dev": torch.tensor([is_dev[i] for i in keep]),
        "teacher": torch.from_numpy(teacher),
        "texts": texts,
        "kinds": kinds,
        "rendered_clips": len(feats),
    }


def save_features(work: Path, data: dict[str, Any]) -> None:
    """The frames as one raw array (seconds to write, memory-mapped by each run), the rest small."""
    import torch

    work.mkdir(parents=True, exist_ok=True)
    np.save(work / "features_flat.npy", data["flat"].numpy())
    torch.save({k: v for k, v in data.items() if k != "flat"}, work / "features_meta.pt")


def load_features(work: Path) -> dict[str, Any]:
    """What `render` saved: the ragged frames memory-mapped, the rest loaded."""
    import torch

    data = torch.load(work / "features_meta.pt")
    # a read-only map: train copies it to the device once and never writes to it
    flat = np.load(work / "features_flat.npy", mmap_mode="r")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch warns about non-writable arrays
        data["flat"] = torch.from_numpy(flat)
    return data


def join_features(primary: dict[str, Any], extras: list[dict[str, Any]]) -> dict[str, Any]:
    """Training clips of other renderings (other seeds: other texts and voices) added to
    `primary`, whose held-out (dev) clips alone stay the dev set. Texts are unified by string so
    a text rendered in two sets is one id (one teacher row, never its own negative)."""
    import torch

    texts, kinds = list(primary["texts"]), list(primary["kinds"])
    id_of = {t: i for i, t in enumerate(texts)}
    teachers = [primary["teacher"]]
    flats, lengths, text_ids, dev_flags = (
        [primary["flat"]],
        [primary["lengths"]],
        [primary["text"]],
        [primary["is_dev"]],
    )
    for extra in extras:
        keep = ~extra["is_dev"]
        remap = torch.full((len(extra["texts"]),), -1, dtype=torch.long)
        new_rows = []
        for i in torch.unique(extra["text"][keep]).tolist():  # texts of its dev clips stay out
            t = extra["texts"][i]
            if t not in id_of:
                id_of[t] = len(texts)
                texts.append(t)
                kinds.append(extra["kinds"][i])
                new_rows.append(i)
            remap[i] = id_of[t]
        teachers.append(extra["teacher"][new_rows])
        flats.append(extra["flat"][torch.repeat_interleave(keep, extra["lengths"])])  # kept clips' frames
        lengths.append(extra["lengths"][keep])
        text_ids.append(remap[extra["text"][keep]])
        dev_flags.append(torch.zeros(int(keep.sum()), dtype=torch.bool))
    return {
        "flat": torch.cat(flats),
        "lengths": torch.cat(lengths),
        "text": torch.cat(text_ids),
        "is_dev": torch.cat(dev_flags),
        "teacher": torch.cat(teachers),
        "texts": texts,
        "kinds": kinds,
        "rendered_clips": primary["rendered_clips"] + sum(e["rendered_clips"] for e in extras),
    }


class RaggedFeatures:
    """Ragged frames [sum(T), C] kept on the device; a batch is gathered zero-padded to its
    longest clip (a dense [N, max T, C] copy of 110 k clips would take 17 GB per run)."""

    def __init__(self, flat: Any, lengths: Any, device: str) -> None:
        import torch

        self.flat = flat.to(device)
        self.lengths = lengths.to(device)
        self.starts = torch.cumsum(self.lengths, 0) - self.lengths

    def batch(self, rows: Any) -> tuple[Any, Any]:
        """Frames [B, T, C] (float32) and mask [B, T] of clips `rows`."""
        import torch

        lengths = self.lengths[rows]
        pos = torch.arange(int(lengths.max()), device=self.flat.device)[None]
        mask = pos < lengths[:, None]
        src = (self.starts[rows][:, None] + pos).clamp(max=self.flat.shape[0] - 1)
        return self.flat[src].float() * mask[..., None], mask


def build_student(args: argparse.Namespace, tensors: dict[str, np.ndarray], bert_config: dict[str, Any]) -> Any:
    """The bridge (stand-in word vectors into the teacher's BERT) or the plain head (`--arch head`:
    transformer blocks + pooling straight to the teacher's space, as the shipped CPU head)."""
    from voicerag_cli.training.bridge import BridgeConfig, SpeechBridge
    from voicerag_cli.training.head import HeadConfig, SpeechHead

    if args.arch == "head":
        return SpeechHead(HeadConfig(d=args.d, layers=args.layers, heads=args.heads, ff=args.ff, pool=POOL))
    cfg = BridgeConfig(
        d=args.d, layers=args.layers, heads=args.heads, ff=args.ff, squeeze=args.squeeze, tune_bert=not args.freeze_bert
    )
    return SpeechBridge(cfg, tensors, bert_config)


def load_plain_head(path: Path) -> Any:
    """A shipped-format head file (models/distilled/head.py's HEAD_FORMAT) as a torch SpeechHead."""
    import torch
    from safetensors import safe_open

    from voicerag_cli.models.distilled.head import HEAD_FORMAT
    from voicerag_cli.training.head import HeadConfig, SpeechHead

    with safe_open(str(path), framework="pt") as handle:
        meta = dict(handle.metadata() or {})
        state = {name: handle.get_tensor(name).float() for name in handle.keys()}  # noqa: SIM118
    if meta.get("format") != HEAD_FORMAT:
        raise SystemExit(f"{path}: format {meta.get('format')!r}, not {HEAD_FORMAT}")
    model = SpeechHead(HeadConfig(**json.loads(meta["config"])))
    model.load_state_dict(state)
    return model.to(torch.float32)


# ---------------------------------------------------------------------------------- training
def retrieval(student: Any, teacher: Any, text: Any) -> dict[str, float]:
    """Each dev clip searches all distinct dev texts: R@1, R@5 and mean cosine to its teacher."""
    import torch

    ids, inverse = torch.unique(text, return_inverse=True)
    scores = student @ teacher[ids].T
    rank = (scores > scores.gather(1, inverse[:, None])).sum(1)
    return {
        "r1": float((rank < 1).float().mean()),
        "r5": float((rank < 5).float().mean()),
        "cos": float((student * teacher[text]).sum(1).mean()),
        "candidates": len(ids),
    }


def train(args: argparse.Namespace, data: dict[str, Any] | None = None) -> None:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if data is None:
        data = load_features(args.work)
    if args.extra_work:
        data = join_features(data, [load_features(w) for w in args.extra_work])
        print(f"joined {len(args.extra_work)} more feature sets: {len(data['lengths'])} clips", flush=True)
    lengths, text, is_dev = data["lengths"], data["text"], data["is_dev"]
    feats = RaggedFeatures(data["flat"], lengths, device)
    teacher = data["teacher"].to(device)
    train_rows = torch.nonzero(~is_dev).squeeze(1)
    if args.clips:
        g = torch.Generator().manual_seed(args.seed)
        train_rows = train_rows[torch.randperm(len(train_rows), generator=g)[: args.clips]]
    dev_rows = torch.nonzero(is_dev).squeeze(1)
    text = text.to(device)
    train_rows, dev_rows = train_rows.to(device), dev_rows.to(device)
    tensors, bert_config = load_minilm(args.carry)
    mel = data.get("features") == "mel"
    if mel != (args.tune_layers >= 0):
        raise SystemExit("--tune-layers N needs features rendered with --keep-mel, and those need it")
    model = build_student(args, tensors, bert_config).to(device)
    head = model
    if mel:  # the encoder runs per batch on log-mel frames; its top layers train with the head
        model = tuned_student(args.carry, head, args.tune_layers).to(device)
    cfg = model.cfg
    if args.init and args.init.exists():
        state = {k: v.float() for k, v in load_parts(args.init)[0].items()}
        bert_state = {k.removeprefix("bert."): v for k, v in state.items() if k.startswith("bert.")}
        head.load_state_dict({k: v for k, v in state.items() if not k.startswith("bert.")}, strict=False)
        for k, v in bert_state.items():
            head.bert.p(k).data.copy_(v)
        print(f"resumed from {args.init}", flush=True)
    tune_bert = args.arch == "bridge" and not args.freeze_bert
    own = head.bridge_parameters() if args.arch == "bridge" else list(head.parameters())
    groups = [{"params": own, "lr": args.lr}]
    if tune_bert:
        groups.append({"params": list(head.bert.parameters()), "lr": args.bert_lr})
    if mel and model.encoder_parameters():
        groups.append({"params": model.encoder_parameters(), "lr": args.encoder_lr})
    opt = torch.optim.AdamW(groups, weight_decay=0.01)
    base_lrs = [g["lr"] for g in groups]
    # hard negatives: each training text's nearest other training text by teacher vector
    train_texts = torch.unique(text[train_rows])
    neighbour_clip = None
    if args.hard_fraction > 0:
        tt = teacher[train_texts].half()
        best = torch.empty(len(train_texts), dtype=torch.long, device=device)
        for s in range(0, len(train_texts), 8192):
            sims = tt[s : s + 8192] @ tt.T
            sims[torch.arange(sims.shape[0]), torch.arange(s, s + sims.shape[0])] = -2
            best[s : s + 8192] = sims.argmax(1)
        clip_of_text = torch.full((teacher.shape[0],), -1, dtype=torch.long, device=device)
        clip_of_text[text[train_rows]] = train_rows
        neighbour_text = torch.full((teacher.shape[0],), -1, dtype=torch.long, device=device)
        neighbour_text[train_texts] = train_texts[best]
        neighbour_clip = clip_of_text[neighbour_text.clamp(min=0)]
    steps = args.steps
    started = time.time()
    log: list[dict[str, Any]] = []

    def evaluate(step: int, student: Any = model, label: str = "") -> dict[str, Any]:
        student.eval()
        outs = []
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
            for s in range(0, len(dev_rows), 1024):
                x, mask = feats.batch(dev_rows[s : s + 1024])
                outs.append(student(x, mask, pooled=True).float())
        student.train()
        entry = {
            "step": step,
            "minutes": round((time.time() - started) / 60, 2),
            **retrieval(torch.cat(outs), teacher, text[dev_rows]),
        }
        if label:
            entry["model"] = label
        else:
            log.append(entry)
        print(json.dumps(entry), flush=True)
        return entry

    baseline = None
    if args.baseline_head:  # the shipped head on the same held-out clips: the bar to clear
        shipped = load_plain_head(args.baseline_head)
        if mel:
            shipped = tuned_student(args.carry, shipped, 0)
        baseline = evaluate(0, shipped.to(device), str(args.baseline_head.name))
    step = 0
    tau = args.tau
    while True:
        elapsed = (time.time() - started) / 60
        if (steps and step >= steps) or (not steps and elapsed >= args.minutes):
            break
        # the schedule follows the fraction done: of the steps, or of the minutes (a step-count
        # estimate from the first steps undercounts them: those pay CUDA's warm-up, and the
        # learning rate then reached 0 at 40 % of a run)
        done = step / steps if steps else elapsed / args.minutes
        warm = 0.03
        scale = min(1.0, (done + 1e-4) / warm) * (
            0.5 * (1 + math.cos(math.pi * min(1.0, done))) if done >= warm else 1.0
        )
        for g, lr in zip(opt.param_groups, base_lrs, strict=True):
            g["lr"] = lr * scale
        n_hard = int(args.batch * args.hard_fraction) if neighbour_clip is not None else 0
        rows = train_rows[torch.randint(len(train_rows), (args.batch - n_hard,), device=device)]
        if n_hard:
            extra = neighbour_clip[text[rows[:n_hard]]]
            rows = torch.cat([rows, torch.where(extra >= 0, extra, rows[:n_hard])])
        x, mask = feats.batch(rows)
        # frame masking: 10 % of pooled frames zeroed, as SpecAugment-style regularisation
        x = x * (torch.rand(x.shape[:2], device=device) > args.frame_mask)[..., None]
        x = x + args.feature_noise * torch.randn_like(x) * x.std()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
            student = model(x, mask, pooled=True).float()
        target = teacher[text[rows]]
        cos = (student * target).sum(-1)
        logits = student @ target.T / tau
        same = text[rows][:, None] == text[rows][None, :]
        logits = logits.masked_fill(same & ~torch.eye(len(rows), dtype=torch.bool, device=device), float("-inf"))
        labels = torch.arange(len(rows), device=device)
        nce = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
        loss = (1 - cos).mean() + args.nce_weight * nce
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % args.eval_every == 0:
            evaluate(step)
    final = log[-1] if log and log[-1]["step"] == step else evaluate(step)  # scored already
    save_head(head, cfg, args, final, log, len(train_rows), step, baseline)
    if mel and args.tune_layers > 0:  # the tuned encoder beside the head, as WhisperEncoder loads it
        from safetensors.numpy import save_file

        from voicerag_cli.training.whisper_torch import encoder_variables

        save_file(encoder_variables(model.encoder), str(args.out.with_name("encoder.safetensors")))


def tuned_student(carry: Path, head: Any, tune_layers: int) -> Any:
    """The carried encoder (float32) under `head`, its top `tune_layers` layers trainable."""
    from safetensors.numpy import load_file

    from voicerag_cli.training.whisper_torch import TunedEncoderHead, WhisperEncoder

    weights = load_file(str(carry / "whisper_encoder.safetensors"))
    weights.pop("mel_filters")
    return TunedEncoderHead(WhisperEncoder(weights), head, tune_layers)


def save_head(
    model: Any,
    cfg: Any,
    args: argparse.Namespace,
    final: dict,
    log: list,
    clips: int,
    steps: int,
    baseline: dict | None = None,
) -> None:
    from voicerag_cli.models.distilled.bridge import BRIDGE_FORMAT
    from voicerag_cli.models.distilled.frontend import FRONTEND_ID
    from voicerag_cli.models.distilled.head import HEAD_FORMAT

    bridge = getattr(args, "arch", "bridge") == "bridge"
    exported = model.export_tensors() if bridge else model.state_dict()
    tensors = {k: v.detach().half().cpu().contiguous() for k, v in exported.items()}
    summary = {
        "arch": "bridge" if bridge else "head",
        "clips": clips,
        "steps": steps,
        "batch": args.batch,
        "lr": args.lr,
        "bert_lr": args.bert_lr,
        "nce_weight": args.nce_weight,
        "tau": args.tau,
        "hard_fraction": args.hard_fraction,
        "seed": args.seed,
        "dev": final,
        "baseline": baseline,
        "log": log,
    }
    meta = {
        "format": BRIDGE_FORMAT if bridge else HEAD_FORMAT,
        "target_space_id": "sentence-transformers/all-MiniLM-L6-v2",
        "target_dim": "384",
        "frontend": FRONTEND_ID,
        "config": json.dumps(cfg.to_dict()),
        "training": json.dumps(summary),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    parts = save_parts(tensors, meta, args.out)
    args.out.with_suffix(".json").write_text(json.dumps(summary, indent=1))
    total = sum(part.stat().st_size for part in parts) / 2**20
    print(f"saved {', '.join(str(part) for part in parts)} ({total:.1f} MiB)", flush=True)


# The GPU machine returns files of at most 16 MiB: a head with tuned BERT layers (~33 MB in
# float16) comes back as parts and is merged into one file here (`merge`).
PART_LIMIT = 15 * 2**20


def part_path(out: Path, index: int) -> Path:
    return out if index == 0 else out.with_name(f"{out.stem}.part{index}{out.suffix}")


def save_parts(tensors: dict[str, Any], meta: dict[str, str], out: Path) -> list[Path]:
    from safetensors.torch import save_file

    groups: list[dict[str, Any]] = [{}]
    size = 0
    for name, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if groups[-1] and size + nbytes > PART_LIMIT:
            groups.append({})
            size = 0
        groups[-1][name] = tensor
        size += nbytes
    paths = []
    for index, group in enumerate(groups):
        path = part_path(out, index)
        save_file(group, str(path), metadata={**meta, "parts": str(len(groups))} if index == 0 else {})
        paths.append(path)
    return paths


def load_parts(out: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """All tensors (torch, as stored) and the metadata of a head saved by `save_parts`."""
    from safetensors import safe_open

    tensors: dict[str, Any] = {}
    with safe_open(str(out), framework="pt") as handle:
        meta = dict(handle.metadata() or {})
        tensors.update({name: handle.get_tensor(name) for name in handle.keys()})  # noqa: SIM118
    for index in range(1, int(meta.pop("parts", "1"))):
        with safe_open(str(part_path(out, index)), framework="pt") as handle:
            tensors.update({name: handle.get_tensor(name) for name in handle.keys()})  # noqa: SIM118
    return tensors, meta


def merge(head: Path, out: Path) -> None:
    from safetensors.torch import save_file

    tensors, meta = load_parts(head)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out), metadata=meta)
    print(f"merged {len(tensors)} tensors into {out} ({out.stat().st_size / 2**20:.1f} MiB)")


def add_train_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--carry", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--init", type=Path)
    parser.add_argument(
        "--extra-work", type=Path, action="append", default=[], help="train on this rendering's clips too (repeatable)"
    )
    parser.add_argument("--clips", type=int, default=0, help="train on this many clips (0: all): learning curves")
    parser.add_argument("--steps", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--bert-lr", type=float, default=5e-5)
    parser.add_argument("--freeze-bert", action="store_true")
    parser.add_argument("--arch", choices=("bridge", "head"), default="bridge")
    parser.add_argument("--baseline-head", type=Path, help="score this shipped-format head on the dev clips first")
    parser.add_argument("--d", type=int, default=384)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--heads", type=int, default=6)
    parser.add_argument("--ff", type=int, default=1536)
    parser.add_argument("--squeeze", type=int, default=2)
    parser.add_argument("--tau", type=float, default=0.05)
    parser.add_argument("--nce-weight", type=float, default=1.0)
    parser.add_argument("--hard-fraction", type=float, default=0.25)
    parser.add_argument("--frame-mask", type=float, default=0.1)
    parser.add_argument("--feature-noise", type=float, default=0.05)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tune-layers",
        type=int,
        default=-1,
        help="on log-mel features: train the encoder's top N layers too (0: frozen)",
    )
    parser.add_argument("--encoder-lr", type=float, default=3e-5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m voicerag_cli.training.gpu_train")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--questions", type=int, default=180_000)
    p.add_argument("--sentences", type=int, default=120_000)
    p.add_argument("--espeak-wheel", type=Path, help="the espeakng-loader wheel (without it: no rendering there)")
    p.add_argument("--shared", type=Path, default=Path("../shared/data/text"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--real-speech", type=Path, help="LibriSpeech-style folder: its training speakers' utterances travel too"
    )
    r = sub.add_parser("render")
    r.add_argument("--carry", type=Path, required=True)
    r.add_argument("--work", type=Path, required=True)
    r.add_argument("--clips", type=int, default=150_000)
    r.add_argument("--dev", type=int, default=2000)
    r.add_argument("--question-share", type=float, default=0.55)
    r.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--real-copies", type=int, default=0, help="each carried real utterance this many times")
    r.add_argument("--keep-mel", action="store_true", help="save log-mel frames, for train --tune-layers")
    t = sub.add_parser("train")
    rt = sub.add_parser("render-train", help="render, then train in the same process (no feature file)")
    for training in (t, rt):
        add_train_options(training)
    for flag, default in (("--clips-render", 100_000), ("--dev", 2000)):
        rt.add_argument(flag, type=int, default=default)
    rt.add_argument("--question-share", type=float, default=0.55)
    rt.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    rt.add_argument("--budget-minutes", type=float, default=0, help="train until this long after the start")
    m = sub.add_parser("merge", help="join a head saved in parts into one file")
    m.add_argument("--head", type=Path, required=True)
    m.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "pack":
        pack(args.out, args.questions, args.sentences, args.espeak_wheel, args.shared, args.seed, args.real_speech)
    elif args.command == "render":
        render(
            args.carry,
            args.work,
            args.clips,
            args.dev,
            args.seed,
            args.workers,
            args.question_share,
            real_copies=args.real_copies,
            keep_mel=args.keep_mel,
        )
    elif args.command == "render-train":
        started = time.time()
        data = render(
            args.carry, args.work, args.clips_render, args.dev, args.seed, args.workers, args.question_share, False
        )
        if args.budget_minutes:
            args.minutes = max(1.0, args.budget_minutes - (time.time() - started) / 60)
            print(f"training for {args.minutes:.2f} minutes", flush=True)
        train(args, data)
    elif args.command == "merge":
        merge(args.head, args.out)
    else:
        train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
