"""Distil the student onto the teacher: frozen Whisper states (or log-mel frames run through the
encoder, its top layers tuned) -> student -> 384-d unit vector, pulled onto MiniLM's vector of
the clip's text.

Loss = (1 - cosine(student, teacher)) + nce_weight * symmetric in-batch InfoNCE (temperature
tau; clips of the same text are not negatives). The cosine term pulls each vector onto its
teacher; InfoNCE keeps different texts apart, which is what retrieval needs. The learning rate
warms up for 3 % of the run, then follows a cosine to zero over the steps or the minutes.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from training.speech.features import POOL, Features, RaggedFeatures, join_features, load_features


@dataclass(frozen=True)
class StudentConfig:
    arch: str = "head"  # "head" (the shipped kind) or "bridge" (into MiniLM's BERT; tried, not shipped)
    d: int = 384
    layers: int = 3
    heads: int = 6
    ff: int = 1536
    squeeze: int = 2  # bridge only: frames per stand-in word vector
    freeze_bert: bool = False  # bridge only


@dataclass(frozen=True)
class TrainConfig:
    carry: Path
    work: Path
    out: Path
    student: StudentConfig = field(default_factory=StudentConfig)
    init: Path | None = None  # resume these weights (a head file, possibly in parts)
    baseline_head: Path | None = None  # score this shipped-format head on the dev clips first
    extra_work: tuple[Path, ...] = ()  # train on these renderings' training clips too
    max_clips: int = 0  # train on this many clips (0: all): learning curves over clips
    real_hours: float | None = None  # recorded human speech: only whole speakers up to these hours
    steps: int = 0  # 0: train for `minutes`
    minutes: float = 4.0
    batch: int = 512
    lr: float = 1e-3
    bert_lr: float = 5e-5
    tau: float = 0.05
    nce_weight: float = 0.2
    hard_fraction: float = 0.0  # share of each batch that is the nearest other text of a batch text
    frame_mask: float = 0.1  # share of pooled frames zeroed per step (SpecAugment-style)
    feature_noise: float = 0.05
    eval_every: int = 1000
    seed: int = 0
    tune_layers: int = -1  # on log-mel features: the encoder's top N layers train too (0: frozen)
    encoder_lr: float = 3e-5
    part_bytes: int = 0  # split the saved head into files of at most this size (0: one file)


def distill_loss(
    student: torch.Tensor, target: torch.Tensor, text_ids: torch.Tensor, tau: float, nce_weight: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training loss and the per-clip cosine to the teacher."""
    cos = (student * target).sum(-1)
    loss = (1 - cos).mean()
    if nce_weight > 0:
        logits = student @ target.T / tau
        same = text_ids[:, None] == text_ids[None, :]
        eye = torch.eye(len(text_ids), dtype=torch.bool, device=student.device)
        logits = logits.masked_fill(same & ~eye, float("-inf"))
        labels = torch.arange(len(text_ids), device=student.device)
        loss = loss + nce_weight * 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
    return loss, cos


def retrieval_metrics(student: torch.Tensor, teacher: torch.Tensor, text: torch.Tensor) -> dict[str, float]:
    """Each clip searches all distinct texts of its set: R@1, R@5 and mean cosine to its teacher."""
    ids, inverse = torch.unique(text, return_inverse=True)
    scores = student @ teacher[ids].T
    rank = (scores > scores.gather(1, inverse[:, None])).sum(1)
    return {
        "r1": float((rank < 1).float().mean()),
        "r5": float((rank < 5).float().mean()),
        "cos": float((student * teacher[text]).sum(1).mean()),
        "candidates": len(ids),
    }


def recorded_rows_outside(data: Features, hours: float) -> torch.Tensor:
    """Clips of recorded human speech whose speaker falls outside the first `hours` (neural-voice
    recordings always stay)."""
    from training.speech.recordings import speakers_for_hours

    human = [(r.corpus, r.speaker, r.seconds) for r in data.recordings if r.corpus != "kokoro"]
    chosen = speakers_for_hours(human, hours)
    dropped = torch.tensor(
        [r.corpus != "kokoro" and (r.corpus, r.speaker) not in chosen for r in data.recordings] + [False]
    )
    return dropped[data.recording]  # index -1 reads the final False


def build_student(cfg: TrainConfig, carry: Path) -> torch.nn.Module:
    from training.speech.student import HeadConfig, SpeechHead

    s = cfg.student
    if s.arch == "head":
        return SpeechHead(HeadConfig(d=s.d, layers=s.layers, heads=s.heads, ff=s.ff, pool=POOL))
    from training.speech.bridge import BridgeConfig, SpeechBridge
    from training.speech.teacher import load_minilm

    tensors, bert_config = load_minilm(carry)
    bridge = BridgeConfig(
        d=s.d, layers=s.layers, heads=s.heads, ff=s.ff, squeeze=s.squeeze, tune_bert=not s.freeze_bert
    )
    return SpeechBridge(bridge, tensors, bert_config)


def tuned_student(carry: Path, head: torch.nn.Module, tune_layers: int) -> torch.nn.Module:
    """The carried encoder (float32) under `head`, its top `tune_layers` layers trainable."""
    from safetensors.numpy import load_file
    from training.speech.features import ENCODER_FILE
    from training.speech.whisper_torch import TunedEncoderHead, WhisperEncoder

    weights = load_file(str(carry / ENCODER_FILE))
    weights.pop("mel_filters")
    return TunedEncoderHead(WhisperEncoder(weights), head, tune_layers)


def train(cfg: TrainConfig, data: Features | None = None) -> dict[str, Any]:
    """Train, save the student to `cfg.out` (+ a .json summary) and return the summary."""
    from training.speech.export import load_parts, save_head
    from training.speech.student import load_plain_head

    torch.manual_seed(cfg.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    data = data or load_features(cfg.work)
    if cfg.extra_work:
        data = join_features(data, [load_features(w) for w in cfg.extra_work])
    feats = RaggedFeatures(data.flat, data.lengths, device)
    teacher = data.teacher.to(device)
    train_mask = ~data.is_dev
    if cfg.real_hours is not None:
        train_mask &= ~recorded_rows_outside(data, cfg.real_hours)
    train_rows = torch.nonzero(train_mask).squeeze(1)
    if cfg.max_clips:
        g = torch.Generator().manual_seed(cfg.seed)
        train_rows = train_rows[torch.randperm(len(train_rows), generator=g)[: cfg.max_clips]]
    recorded_clips = int((data.recording[train_rows] >= 0).sum())
    dev_rows = torch.nonzero(data.is_dev).squeeze(1).to(device)
    text = data.text.to(device)
    train_rows = train_rows.to(device)
    mel = data.kind == "mel"
    if mel != (cfg.tune_layers >= 0):
        raise ValueError("tune_layers >= 0 needs features rendered with keep_mel, and those need it")
    head = build_student(cfg, cfg.carry).to(device)
    model = tuned_student(cfg.carry, head, cfg.tune_layers).to(device) if mel else head
    if cfg.init is not None:
        state = {k: v.float() for k, v in load_parts(cfg.init)[0].items()}
        head.load_state_dict({k: v for k, v in state.items() if not k.startswith("bert.")}, strict=False)
        for k, v in state.items():
            if k.startswith("bert."):
                head.bert.p(k.removeprefix("bert.")).data.copy_(v)  # type: ignore[operator, union-attr]
        print(f"resumed from {cfg.init}", flush=True)
    bridge = cfg.student.arch == "bridge"
    own = head.bridge_parameters() if bridge else list(head.parameters())  # type: ignore[operator]
    groups = [{"params": own, "lr": cfg.lr}]
    if bridge and not cfg.student.freeze_bert:
        groups.append({"params": list(head.bert.parameters()), "lr": cfg.bert_lr})  # type: ignore[union-attr]
    if mel and model.encoder_parameters():  # type: ignore[operator]
        groups.append({"params": model.encoder_parameters(), "lr": cfg.encoder_lr})  # type: ignore[operator]
    opt = torch.optim.AdamW(groups, weight_decay=0.01)
    base_lrs = [g["lr"] for g in groups]
    neighbour_clip = hard_negatives(teacher, text, train_rows) if cfg.hard_fraction > 0 else None
    started = time.time()
    log: list[dict[str, Any]] = []
    losses: list[torch.Tensor] = []  # kept on the device: no sync per step

    def evaluate(step: int, student: torch.nn.Module = model, label: str = "") -> dict[str, Any]:
        student.eval()
        outs = []
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
            for s in range(0, len(dev_rows), 1024):
                x, mask = feats.batch(dev_rows[s : s + 1024])
                outs.append(student(x, mask, pooled=True).float())
        student.train()
        entry = {"step": step, "minutes": round((time.time() - started) / 60, 2)}
        entry.update(retrieval_metrics(torch.cat(outs), teacher, text[dev_rows]))
        if label:
            entry["model"] = label
        else:
            log.append(entry)
        print(json.dumps(entry), flush=True)
        return entry

    baseline = None
    if cfg.baseline_head is not None:  # the shipped head on the same dev clips: the bar to clear
        shipped = load_plain_head(cfg.baseline_head)
        if mel:
            shipped = tuned_student(cfg.carry, shipped, 0)
        baseline = evaluate(0, shipped.to(device), cfg.baseline_head.name)
    step = 0
    while True:
        elapsed = (time.time() - started) / 60
        if (cfg.steps and step >= cfg.steps) or (not cfg.steps and elapsed >= cfg.minutes):
            break
        # the schedule follows the fraction done, of the steps or of the minutes (a step count
        # estimated from the first steps undercounts them: those pay CUDA's warm-up)
        done = step / cfg.steps if cfg.steps else elapsed / cfg.minutes
        scale = min(1.0, (done + 1e-4) / 0.03) * (0.5 * (1 + math.cos(math.pi * min(1.0, done))) if done >= 0.03 else 1)
        for g, lr in zip(opt.param_groups, base_lrs, strict=True):
            g["lr"] = lr * scale
        n_hard = int(cfg.batch * cfg.hard_fraction) if neighbour_clip is not None else 0
        rows = train_rows[torch.randint(len(train_rows), (cfg.batch - n_hard,), device=device)]
        if n_hard:
            extra = neighbour_clip[text[rows[:n_hard]]]  # type: ignore[index]
            rows = torch.cat([rows, torch.where(extra >= 0, extra, rows[:n_hard])])
        x, mask = feats.batch(rows)
        x = x * (torch.rand(x.shape[:2], device=device) > cfg.frame_mask)[..., None]
        x = x + cfg.feature_noise * torch.randn_like(x) * x.std()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
            student = model(x, mask, pooled=True).float()
        loss, _ = distill_loss(student, teacher[text[rows]], text[rows], cfg.tau, cfg.nce_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.detach())
        step += 1
        if step % cfg.eval_every == 0:
            evaluate(step)
    final = log[-1] if log and log[-1]["step"] == step else evaluate(step)
    first, last = (float(torch.stack(part).mean()) if part else None for part in (losses[:5], losses[-5:]))
    summary = {
        "config": json.loads(json.dumps(asdict(cfg), default=str)),
        "clips": len(train_rows),
        "recorded_clips": recorded_clips,
        "steps": step,
        "first_loss": first,
        "last_loss": last,
        "dev": final,
        "baseline": baseline,
        "log": log,
    }
    save_head(head, cfg.out, summary, bridge, cfg.part_bytes)
    if mel and cfg.tune_layers > 0:  # the tuned encoder beside the head, as WhisperEncoder loads it
        from safetensors.numpy import save_file
        from training.speech.whisper_torch import encoder_variables

        save_file(encoder_variables(model.encoder), str(cfg.out.with_name("encoder.safetensors")))  # type: ignore[arg-type]
    return summary


def hard_negatives(teacher: torch.Tensor, text: torch.Tensor, train_rows: torch.Tensor) -> torch.Tensor:
    """Per text id, a training clip of its nearest other training text by teacher vector (-1: none)."""
    train_texts = torch.unique(text[train_rows])
    tt = teacher[train_texts].half()
    best = torch.empty(len(train_texts), dtype=torch.long, device=teacher.device)
    for s in range(0, len(train_texts), 8192):
        sims = tt[s : s + 8192] @ tt.T
        sims[torch.arange(sims.shape[0]), torch.arange(s, s + sims.shape[0])] = -2
        best[s : s + 8192] = sims.argmax(1)
    clip_of_text = torch.full((teacher.shape[0],), -1, dtype=torch.long, device=teacher.device)
    clip_of_text[text[train_rows]] = train_rows
    neighbour_text = torch.full((teacher.shape[0],), -1, dtype=torch.long, device=teacher.device)
    neighbour_text[train_texts] = train_texts[best]
    return clip_of_text[neighbour_text.clamp(min=0)]
