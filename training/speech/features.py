"""Clips -> what the student trains on: augmentation, log-mel and the frozen Whisper encoder in
torch (the GPU when there is one), pooled x4 in time and kept as one ragged fp16 array.

`Features` holds a rendering: the frames of every clip, its text id, whether it is a dev clip,
and for recorded clips (real or neural voices) which recording it is, so that training can take
a subset of recorded speakers (the learning curve's hours).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from training.speech.augment import Augmenter
from training.speech.student import time_pool
from training.speech.whisper_torch import LogMel, WhisperEncoder

POOL = 4  # the head's time pooling, applied once here
ENCODER_FILE = "whisper_encoder.safetensors"


@dataclass(frozen=True)
class RecordingInfo:
    corpus: str
    speaker: str
    seconds: float


@dataclass
class Features:
    flat: torch.Tensor  # [sum of clip frames, C] fp16: pooled encoder states (C 384) or log-mel (C 80)
    lengths: torch.Tensor  # [clips] int64
    text: torch.Tensor  # [clips] int64, rows of `teacher`
    is_dev: torch.Tensor  # [clips] bool
    recording: torch.Tensor  # [clips] int64: index into `recordings`, -1 for espeak-ng clips
    teacher: torch.Tensor  # [texts, 384] float32 unit vectors
    texts: list[str]
    kinds: list[str]
    recordings: list[RecordingInfo] = field(default_factory=list)
    kind: str = "states"  # or "mel" (for tuning the encoder)
    rendered_clips: int = 0


class Featurizer:
    """Batches of int16 clips -> per clip pooled encoder states [T/8, 384] (or log-mel [F, 80])."""

    def __init__(self, carry: Path, device: str, seed: int, keep_mel: bool = False) -> None:
        from safetensors.numpy import load_file

        weights = load_file(str(carry / ENCODER_FILE))
        self.device = device
        self.mel = LogMel(weights.pop("mel_filters")).to(device)
        self.encoder = WhisperEncoder(weights).to(device).eval()
        self.augment = Augmenter(device, seed)
        self.keep_mel = keep_mel

    def __call__(self, clips: list[np.ndarray], augment: bool) -> list[torch.Tensor]:
        lengths = torch.tensor([len(c) for c in clips], device=self.device)
        audio = torch.zeros(len(clips), int(lengths.max()), device=self.device)
        for i, clip in enumerate(clips):
            audio[i, : len(clip)] = torch.from_numpy(clip.astype(np.float32) / 32768.0).to(self.device)
        if augment:
            audio, lengths = self.augment(audio, lengths)
        with torch.no_grad():
            mel, frames = self.mel(audio, lengths)
            if self.keep_mel:
                return [mel[i, :, : frames[i]].T.half() for i in range(len(clips))]
            states, counts = self.encoder(mel, frames)
            mask = torch.arange(states.shape[1], device=self.device)[None] < counts[:, None]
            pooled, pmask = time_pool(states, mask, POOL)
        n = pmask.sum(1)
        return [pooled[i, : n[i]].half() for i in range(len(clips))]


def assemble(
    feats: list[torch.Tensor | None],
    text_of: list[int],
    is_dev: list[bool],
    recording_of: list[int],
    teacher: np.ndarray,
    texts: list[str],
    kinds: list[str],
    recordings: list[RecordingInfo],
    kind: str,
) -> Features:
    """Per-clip features (None where rendering failed) and their labels as one `Features`."""
    keep = [i for i, f in enumerate(feats) if f is not None]
    return Features(
        flat=torch.cat([feats[i] for i in keep]).cpu(),  # type: ignore[misc]
        lengths=torch.tensor([int(feats[i].shape[0]) for i in keep], dtype=torch.int64),  # type: ignore[union-attr]
        text=torch.tensor([text_of[i] for i in keep], dtype=torch.int64),
        is_dev=torch.tensor([is_dev[i] for i in keep]),
        recording=torch.tensor([recording_of[i] for i in keep], dtype=torch.int64),
        teacher=torch.from_numpy(teacher),
        texts=texts,
        kinds=kinds,
        recordings=recordings,
        kind=kind,
        rendered_clips=len(feats),
    )


def save_features(work: Path, data: Features) -> None:
    """The frames as one raw array (seconds to write, memory-mapped by each run), the rest small."""
    work.mkdir(parents=True, exist_ok=True)
    np.save(work / "features_flat.npy", data.flat.numpy())
    rest = {f.name: getattr(data, f.name) for f in fields(data) if f.name != "flat"}
    rest["recordings"] = [(r.corpus, r.speaker, r.seconds) for r in data.recordings]
    torch.save(rest, work / "features_meta.pt")


def load_features(work: Path) -> Features:
    """What `save_features` wrote: the frames memory-mapped (read-only), the rest loaded."""
    rest = torch.load(work / "features_meta.pt")
    rest["recordings"] = [RecordingInfo(*r) for r in rest.get("recordings", [])]
    rest.setdefault("recording", torch.full_like(rest["text"], -1))
    flat = np.load(work / "features_flat.npy", mmap_mode="r")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch warns about non-writable arrays
        return Features(flat=torch.from_numpy(flat), **rest)


def join_features(primary: Features, extras: list[Features]) -> Features:
    """Training clips of other renderings (other seeds: other texts and voices) added to
    `primary`, whose dev clips alone stay the dev set. Texts are unified by string, so a text
    rendered in two sets is one id (one teacher row, never its own negative)."""
    texts, kinds = list(primary.texts), list(primary.kinds)
    id_of = {t: i for i, t in enumerate(texts)}
    teachers, flats, lengths = [primary.teacher], [primary.flat], [primary.lengths]
    text_ids, dev_flags, recording_ids = [primary.text], [primary.is_dev], [primary.recording]
    recordings = list(primary.recordings)
    for extra in extras:
        keep = ~extra.is_dev
        remap = torch.full((len(extra.texts),), -1, dtype=torch.long)
        new_rows = []
        for i in torch.unique(extra.text[keep]).tolist():  # texts of its dev clips stay out
            t = extra.texts[i]
            if t not in id_of:
                id_of[t] = len(texts)
                texts.append(t)
                kinds.append(extra.kinds[i])
                new_rows.append(i)
            remap[i] = id_of[t]
        teachers.append(extra.teacher[new_rows])
        flats.append(extra.flat[torch.repeat_interleave(keep, extra.lengths)])  # kept clips' frames
        lengths.append(extra.lengths[keep])
        text_ids.append(remap[extra.text[keep]])
        dev_flags.append(torch.zeros(int(keep.sum()), dtype=torch.bool))
        rec = extra.recording[keep]
        recording_ids.append(torch.where(rec >= 0, rec + len(recordings), rec))
        recordings += extra.recordings
    return Features(
        flat=torch.cat(flats),
        lengths=torch.cat(lengths),
        text=torch.cat(text_ids),
        is_dev=torch.cat(dev_flags),
        recording=torch.cat(recording_ids),
        teacher=torch.cat(teachers),
        texts=texts,
        kinds=kinds,
        recordings=recordings,
        kind=primary.kind,
        rendered_clips=primary.rendered_clips + sum(e.rendered_clips for e in extras),
    )


class RaggedFeatures:
    """Ragged frames [sum(T), C] kept on the device; a batch is gathered zero-padded to its
    longest clip (a dense [N, max T, C] copy of a whole rendering would not fit beside the runs)."""

    def __init__(self, flat: torch.Tensor, lengths: torch.Tensor, device: str) -> None:
        self.flat = flat.to(device)
        self.lengths = lengths.to(device)
        self.starts = torch.cumsum(self.lengths, 0) - self.lengths

    def batch(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames [B, T, C] (float32) and mask [B, T] of clips `rows`."""
        lengths = self.lengths[rows]
        pos = torch.arange(int(lengths.max()), device=self.flat.device)[None]
        mask = pos < lengths[:, None]
        src = (self.starts[rows][:, None] + pos).clamp(max=self.flat.shape[0] - 1)
        return self.flat[src].float() * mask[..., None], mask
