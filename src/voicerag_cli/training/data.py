"""The prepared cache in memory: per-clip encoder states, text ids, splits, teacher vectors."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Cache:
    feats: list[np.ndarray]  # per clip [frames, 384] float16
    text_ids: np.ndarray  # [clips]
    splits: np.ndarray  # [clips] str
    voices: np.ndarray  # [clips] str
    teacher: np.ndarray  # [texts, 384] float32, unit vectors
    texts: list[str]
    frontend: str

    def indices(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.splits == split)

    @property
    def lengths(self) -> np.ndarray:
        return np.array([f.shape[0] for f in self.feats])


def load_cache(folder: Path, max_shards: int = 0) -> Cache:
    meta = json.loads((folder / "corpus.json").read_text(encoding="utf-8"))
    shards = sorted(folder.glob("shard-[0-9][0-9][0-9][0-9][0-9].npz"))
    if max_shards:
        shards = shards[:max_shards]
    if not shards:
        raise FileNotFoundError(f"no shard-*.npz in {folder}: run python -m voicerag_cli.training.prepare first")
    feats: list[np.ndarray] = []
    text_ids, splits, voices = [], [], []
    for shard in shards:
        with np.load(shard) as z:
            offsets = np.concatenate([[0], np.cumsum(z["lengths"])])
            block = z["feats"]
            feats += [block[a:b] for a, b in itertools.pairwise(offsets)]
            text_ids.append(z["text_ids"])
            splits.append(z["splits"])
            voices.append(z["voices"])
    return Cache(
        feats=feats,
        text_ids=np.concatenate(text_ids),
        splits=np.concatenate(splits),
        voices=np.concatenate(voices),
        teacher=np.load(folder / "teacher.npy"),
        texts=[t["text"] for t in meta["texts"]],
        frontend=meta["frontend"],
    )


def load_caches(folders: list[Path], max_shards: int = 0) -> Cache:
    """Several caches as one: text ids are offset, and the evaluation splits of every cache after
    the first get its folder name as a prefix, so that held-out metrics stay those of the first."""
    caches = [load_cache(folder, max_shards) for folder in folders]
    first = caches[0]
    for folder, extra in zip(folders[1:], caches[1:], strict=True):
        if extra.frontend != first.frontend:
            raise ValueError(f"{folder} was prepared with front-end {extra.frontend}, not {first.frontend}")
        splits = np.array([s if s == "train" else f"{folder.name}:{s}" for s in extra.splits])
        first = Cache(
            feats=first.feats + extra.feats,
            text_ids=np.concatenate([first.text_ids, extra.text_ids + len(first.texts)]),
            splits=np.concatenate([first.splits, splits]),
            voices=np.concatenate([first.voices, extra.voices]),
            teacher=np.concatenate([first.teacher, extra.teacher]),
            texts=first.texts + extra.texts,
            frontend=first.frontend,
        )
    return first
