"""Render a training set on the GPU machine: espeak-ng clips of the carried texts (in worker
processes), the carried recordings (real and neural voices, each several times), and a dev set
of held-out texts spoken by held-out voices; then featurize them all (features.py).

Training clips are augmented, a fresh draw for every copy of a recording; dev clips stay clean.
"""

from __future__ import annotations

import random
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from training.speech.features import Features, Featurizer, RecordingInfo, assemble, save_features
from training.speech.texts import is_held_out, read_texts

TEXTS_FILE = "texts.jsonl.gz"
ESPEAK_ARCHIVE = "espeak.tgz"
RECORDINGS_DIR = "recordings"  # <name>.tar archives of recordings.py
MAX_SECONDS = 16.0  # longer rendered clips are cut (Wikipedia's longest sentences): batches stay dense
DOCS_KINDS = frozenset({"howto", "api", "docs_sentence"})
GROUP = 256  # clips featurized together, sorted by length


@dataclass(frozen=True)
class RenderConfig:
    carry: Path
    work: Path
    clips: int = 150_000  # espeak-ng training clips
    dev: int = 2_000
    question_share: float = 0.45  # of espeak-ng clips; the rest, less the docs share, are sentences
    docs_share: float = 0.30
    copies: dict[str, int] = field(default_factory=dict)  # recordings archive name -> copies of each clip
    workers: int = 1
    seed: int = 0
    keep_mel: bool = False  # log-mel frames instead of encoder states (train.tune_layers)
    save: bool = True


# ------------------------------------------------------------------- espeak-ng worker processes
_ENGINE: Any = None


def _init_worker(espeak_root: str) -> None:
    global _ENGINE
    from training.speech.espeak import EspeakLibrary

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
    return index, np.clip(resampled, -32768, 32767).astype(np.int16)[: int(MAX_SECONDS * 16_000)]


# ---------------------------------------------------------------------------------- planning
def choose_texts(rows: list[dict[str, Any]], cfg: RenderConfig, rng: random.Random) -> tuple[list[int], list[int]]:
    """Row ids of the espeak-ng training clips (texts repeat when clips outnumber them) and of
    the dev clips (held-out texts: a third each questions, sentences and docs texts)."""
    pools: dict[str, list[int]] = {"question": [], "sentence": [], "docs": []}
    dev_pools: dict[str, list[int]] = {"question": [], "sentence": [], "docs": []}
    for i, r in enumerate(rows):
        group = "docs" if r["kind"] in DOCS_KINDS else r["kind"]
        if group in pools:
            (dev_pools if r["held_out"] else pools)[group].append(i)
    for ids in (*pools.values(), *dev_pools.values()):
        rng.shuffle(ids)
    docs = int(cfg.clips * cfg.docs_share) if pools["docs"] else 0
    questions = int(cfg.clips * cfg.question_share) if pools["question"] else 0
    wanted = {"docs": docs, "question": questions, "sentence": cfg.clips - docs - questions}
    if not pools["sentence"]:
        wanted["question"] += wanted.pop("sentence")
    chosen: list[int] = []
    for group, n in wanted.items():
        ids = pools[group]
        while ids and n > 0:  # more clips than texts: the texts again, each with a new voice
            chosen += ids[:n]
            n -= min(n, len(ids))
            rng.shuffle(ids)
    groups = [g for g in dev_pools if dev_pools[g]]
    dev = [i for g in groups for i in dev_pools[g][: cfg.dev // max(1, len(groups))]]
    return chosen, dev


def render(cfg: RenderConfig) -> Features:
    import multiprocessing as mp

    import torch
    from training.speech.recordings import load_archive
    from training.speech.teacher import teacher_vectors
    from training.speech.voices import EVAL_RATES, EVAL_VOICES, sample_train_voice, train_voice_names

    started = time.time()

    def say(message: str) -> None:
        print(f"[{time.time() - started:.0f}s] {message}", flush=True)

    rows = read_texts(cfg.carry / TEXTS_FILE)
    rng = random.Random(cfg.seed)
    chosen, dev_chosen = choose_texts(rows, cfg, rng)
    # recordings: every clip of each archive, `copies` times; a transcript that is a held-out
    # text is left out (its teacher row would be a dev target)
    recorded: list[tuple[int, int, np.ndarray]] = []  # (row id, recording id, audio)
    recordings: list[RecordingInfo] = []
    row_of = {r["text"].strip().lower(): i for i, r in enumerate(rows)}
    for name, copies in sorted(cfg.copies.items()):
        path = cfg.carry / RECORDINGS_DIR / f"{name}.tar"
        if copies <= 0:
            continue
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: pack it or drop its copies")
        for rec in load_archive(path):
            if is_held_out(rec.text):
                continue
            key = rec.text.strip().lower()
            if key not in row_of:
                row_of[key] = len(rows)
                rows.append({"text": rec.text, "spoken": rec.text, "kind": f"recorded:{rec.corpus}", "held_out": False})
            recorded += [(row_of[key], len(recordings), rec.audio)] * copies
            recordings.append(RecordingInfo(rec.corpus, rec.speaker, rec.seconds))
        say(f"{name}: {len(recordings)} recordings so far, x{copies}")
    used = sorted(set(chosen) | set(dev_chosen) | {r for r, _, _ in recorded})
    device = "cuda" if torch.cuda.is_available() else "cpu"
    teacher = teacher_vectors([rows[i]["text"] for i in used], cfg.carry, device)
    position = {row: k for k, row in enumerate(used)}
    say(f"teacher vectors for {len(used)} texts")

    names = train_voice_names()
    jobs = []
    for i in chosen:
        v = sample_train_voice(rng, names)
        jobs.append((len(jobs), rows[i]["spoken"], v.name, v.rate, v.pitch, v.word_gap))
    n_rendered = len(jobs)
    n_train = n_rendered + len(recorded)
    for k, i in enumerate(dev_chosen):
        jobs.append((n_train + k, rows[i]["spoken"], EVAL_VOICES[k % len(EVAL_VOICES)], EVAL_RATES[k % 2], 50, 0))
    text_of = [position[i] for i in chosen] + [position[r] for r, _, _ in recorded] + [position[i] for i in dev_chosen]
    recording_of = [-1] * n_rendered + [rec for _, rec, _ in recorded] + [-1] * len(dev_chosen)
    featurizer = Featurizer(cfg.carry, device, cfg.seed, cfg.keep_mel)
    feats: list[Any] = [None] * len(text_of)
    pending: list[tuple[int, np.ndarray]] = []

    def flush() -> None:
        for is_train in (True, False):
            part = sorted((p for p in pending if (p[0] < n_train) == is_train), key=lambda item: len(item[1]))
            for start in range(0, len(part), GROUP):
                group = part[start : start + GROUP]
                for (index, _), f in zip(group, featurizer([c for _, c in group], augment=is_train), strict=True):
                    feats[index] = f
        pending.clear()

    if jobs:
        espeak_root = cfg.work / "espeak"
        if not (espeak_root / "libespeak-ng.so.1").exists():
            with tarfile.open(cfg.carry / ESPEAK_ARCHIVE) as tar:
                tar.extractall(espeak_root, filter="data")
        with mp.get_context("fork").Pool(cfg.workers, _init_worker, (str(espeak_root),)) as pool:
            for done, (index, audio) in enumerate(pool.imap_unordered(_render, jobs, chunksize=32), 1):
                if audio.size:
                    pending.append((index, audio))
                if len(pending) >= 4096:
                    flush()
                if done % 20000 == 0:
                    say(f"rendered {done}/{len(jobs)}")
        flush()
    for start in range(0, len(recorded), 4096):  # the same array per copy: augmentation differs
        pending.extend((n_rendered + k, audio) for k, (_, _, audio) in enumerate(recorded[start : start + 4096], start))
        flush()
    data = assemble(
        feats,
        text_of,
        [i >= n_train for i in range(len(feats))],
        recording_of,
        teacher,
        [rows[i]["text"] for i in used],
        [rows[i]["kind"] for i in used],
        recordings,
        "mel" if cfg.keep_mel else "states",
    )
    if cfg.save:
        save_features(cfg.work, data)
    say(f"features {tuple(data.flat.shape)} of {len(data.lengths)} clips ({len(recorded)} recorded)")
    return data
