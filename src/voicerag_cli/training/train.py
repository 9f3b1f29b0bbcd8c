"""Distil the speech head onto the text embedder: teacher = all-MiniLM-L6-v2 on the sentence,
student = frozen Whisper encoder states + trainable head on speech of that sentence.

    nice -n 10 python -m voicerag_cli.training.train --cache ~/.cache/voicerag/speech-distill \
        --out src/voicerag_cli/models/distilled/weights/whisper-tiny-distilled-minilm.safetensors

Loss = (1 - cosine(student, teacher)) + nce_weight * symmetric InfoNCE over the batch (other
sentences in the batch are the negatives; clips of the same sentence are not counted as
negatives). The cosine term pulls each vector onto its teacher (MSE between unit vectors is
2 - 2 cos, the same objective); InfoNCE keeps different questions apart, which is what retrieval
needs. Runs on CPU; `--threads` keeps it polite on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def batches(lengths: np.ndarray, indices: np.ndarray, size: int, rng: random.Random) -> list[np.ndarray]:
    """Shuffled batches of similar length (sorted inside windows of 50 batches): less padding."""
    order = list(indices)
    rng.shuffle(order)
    out: list[np.ndarray] = []
    window = size * 50
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        out += [np.array(chunk[i : i + size]) for i in range(0, len(chunk), size)]
    rng.shuffle(out)
    return out


def collate(feats: list[np.ndarray], idx: np.ndarray) -> tuple[Any, Any]:
    import torch

    longest = max(feats[i].shape[0] for i in idx)
    x = np.zeros((len(idx), longest, feats[idx[0]].shape[1]), dtype=np.float32)
    mask = np.zeros((len(idx), longest), dtype=bool)
    for row, i in enumerate(idx):
        n = feats[i].shape[0]
        x[row, :n] = feats[i]
        mask[row, :n] = True
    return torch.from_numpy(x), torch.from_numpy(mask)


def distill_loss(student: Any, teacher: Any, text_ids: Any, tau: float, nce_weight: float) -> tuple[Any, dict]:
    import torch
    import torch.nn.functional as F

    cos = (student * teacher).sum(-1)
    loss = (1.0 - cos).mean()
    if nce_weight > 0:
        logits = student @ teacher.T / tau
        same = text_ids[:, None] == text_ids[None, :]
        logits = logits.masked_fill(same & ~torch.eye(len(text_ids), dtype=torch.bool), float("-inf"))
        target = torch.arange(len(text_ids))
        nce = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        loss = loss + nce_weight * nce
    return loss, {"cos": float(cos.detach().mean())}


def wordpiece_ctc_loss(model: Any, states: Any, frames: Any, targets: list[np.ndarray]) -> Any:
    """CTC of the head's final frames against each clip's wordpieces (training/wordpieces.py);
    clips too short for their targets contribute nothing (zero_infinity)."""
    import torch
    import torch.nn.functional as F

    log_probs = model.ctc(states).log_softmax(-1).transpose(0, 1)  # [T, B, classes]
    lengths = torch.tensor([len(t) for t in targets])
    flat = torch.from_numpy(np.concatenate(targets).astype(np.int64))
    return F.ctc_loss(log_probs, flat, frames, lengths, blank=0, reduction="mean", zero_infinity=True)


def embed_clips(
    model: Any, feats: list[np.ndarray], idx: np.ndarray, batch_size: int = 64, pooled: bool = True
) -> np.ndarray:
    """Vectors for clips `idx`; `pooled`: feats were already pooled with `pool_states`."""
    import torch

    model.eval()
    positions = np.argsort([feats[i].shape[0] for i in idx], kind="stable")  # similar lengths together
    result = np.empty((len(idx), model.cfg.out_dim), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, len(positions), batch_size):
            chunk = positions[start : start + batch_size]
            x, mask = collate(feats, idx[chunk])
            result[chunk] = model(x, mask, pooled=pooled).numpy()
    return result


def retrieval_metrics(student: np.ndarray, text_ids: np.ndarray, teacher: np.ndarray) -> dict[str, float]:
    """Each clip's vector searches the split's distinct sentences (their teacher vectors)."""
    candidates = np.unique(text_ids)
    sims = student @ teacher[candidates].T
    own = np.searchsorted(candidates, text_ids)
    rank = (sims > sims[np.arange(len(own)), own][:, None]).sum(1)
    return {
        "clips": len(text_ids),
        "candidates": len(candidates),
        "r1": float((rank < 1).mean()),
        "r5": float((rank < 5).mean()),
        "cos": float((student * teacher[text_ids]).sum(1).mean()),
    }


def evaluate(
    model: Any, feats: list[np.ndarray], cache: Any, splits: tuple[str, ...] = ()
) -> dict[str, dict[str, float]]:
    """Held-out metrics per split (default: every split but "train")."""
    metrics = {}
    splits = splits or tuple(sorted(set(cache.splits.tolist()) - {"train"}))
    for split in splits:
        idx = cache.indices(split)
        if len(idx):
            vectors = embed_clips(model, feats, idx)
            metrics[split] = retrieval_metrics(vectors, cache.text_ids[idx], cache.teacher)
    return metrics


def train(cache: Any, args: argparse.Namespace, log: Any = None) -> tuple[Any, dict[str, Any]]:
    """Train a head on the cache's "train" clips; returns the model and a summary."""
    import torch

    from voicerag_cli.models.distilled.head import pool_states
    from voicerag_cli.training.head import HeadConfig, SpeechHead

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    cfg = HeadConfig(
        d=args.d,
        layers=args.layers,
        heads=args.heads,
        ff=args.ff,
        pool=args.pool,
        attention_pooling=not args.no_attention_pooling,
        dropout=args.dropout,
    )
    train_idx = cache.indices("train")
    if args.max_train_clips:
        train_idx = train_idx[: args.max_train_clips]
    ctc_targets: list[np.ndarray] = []
    if args.ctc_weight > 0:
        from voicerag_cli.training.wordpieces import wordpiece_targets

        ctc_targets, _ = wordpiece_targets(cache.texts, cache.text_ids[train_idx].tolist(), args.ctc_vocab)
    model = SpeechHead(cfg, ctc_classes=args.ctc_vocab + 2 if ctc_targets else 0)
    # Pool once here instead of in every step: the head then sees 50/pool frames per second.
    feats = [pool_states(f, cfg.pool).astype(np.float16) for f in cache.feats]
    lengths = np.array([f.shape[0] for f in feats])
    per_epoch = math.ceil(len(train_idx) / args.batch_size)
    total = args.steps or per_epoch * args.epochs
    optim = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    warmup = max(1, int(0.05 * total))
    cap = total
    plan = {"total": total}  # may shrink once the step time is known (--time-budget-min)

    def lr_factor(s: int) -> float:
        return min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, plan["total"]) / plan["total"]))

    sched = torch.optim.lr_scheduler.LambdaLR(optim, lr_factor)
    teacher = torch.from_numpy(cache.teacher)
    history: list[dict[str, Any]] = []
    step, started = 0, time.perf_counter()
    while step < plan["total"]:
        for idx in batches(lengths, train_idx, args.batch_size, rng):
            if step >= plan["total"]:
                break
            model.train()
            x, mask = collate(feats, idx)
            ids = torch.from_numpy(cache.text_ids[idx].astype(np.int64))
            frames = mask.sum(1)
            if args.frame_drop > 0:  # hide random frames: a cheap feature-level augmentation
                keep = torch.rand(mask.shape) >= args.frame_drop
                keep[:, 0] = True
                mask = mask & keep
            vectors, states = model.forward_frames(x, mask, pooled=True)
            loss, info = distill_loss(vectors, teacher[ids], ids, args.tau, args.nce_weight)
            if ctc_targets:
                ctc = wordpiece_ctc_loss(model, states, frames, [ctc_targets[i] for i in ids.tolist()])
                loss = loss + args.ctc_weight * ctc
                info["ctc"] = float(ctc.detach())
            optim.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            sched.step()
            step += 1
            now = time.perf_counter() - started
            record = {"step": step, "loss": float(loss.detach()), **info, "s": round(now)}
            history.append({**record, "t": now})
            if args.time_budget_min and step >= 50 and step % 10 == 0:
                # On a shared CPU the step time changes as others load it: re-fit the schedule to the time
                # left at the pace of the last 50 steps (never past --epochs/--steps).
                per_step = (now - history[-50]["t"]) / 49
                left = 60 * args.time_budget_min - now
                plan["total"] = max(step + 1, min(cap, step + int(left / per_step)))
            if log and (step % args.log_every == 0 or step == plan["total"]):
                print(json.dumps(record), file=log, flush=True)
            if log and args.eval_every and step % args.eval_every == 0:
                print(
                    json.dumps({"step": step, "eval": evaluate(model, feats, cache, ("heldout_text",))}),
                    file=log,
                    flush=True,
                )
    summary = {
        "steps": step,
        "epochs": round(step / per_epoch, 2),
        "train_clips": len(train_idx),
        "train_texts": len(np.unique(cache.text_ids[train_idx])),
        "batch_size": args.batch_size,
        "lr": args.lr,
        "tau": args.tau,
        "nce_weight": args.nce_weight,
        "frame_drop": args.frame_drop,
        "ctc_weight": args.ctc_weight,
        "ctc_vocab": args.ctc_vocab if ctc_targets else 0,
        "config": cfg.to_dict(),
        "seed": args.seed,
        "train_seconds": round(time.perf_counter() - started, 1),
        "threads": args.threads,
        "first_loss": history[0]["loss"] if history else None,
        "last_loss": float(np.mean([h["loss"] for h in history[-20:]])) if history else None,
    }
    summary["heldout"] = evaluate(model, feats, cache)
    return model, summary


SOURCES = {
    "question": "HotpotQA dev questions",
    "sentence": "HotpotQA context sentences",
    "template": "templated questions on HotpotQA titles",
    "vocabulary": "phrases covering the text embedder's whole-word vocabulary",
    "wordnet": "WordNet 3.0 usage examples and definitions",
}


def corpus_description(folder: Path) -> str:
    """What a prepared cache's texts are, from its corpus.json: "5749 HotpotQA context sentences + ..."."""
    from collections import Counter

    kinds = Counter(t["kind"] for t in json.loads((folder / "corpus.json").read_text(encoding="utf-8"))["texts"])
    return " + ".join(f"{n} {SOURCES.get(kind, kind)}" for kind, n in kinds.items())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", type=Path, action="append", required=True, help="folder written by prepare (repeatable)")
    p.add_argument("--out", type=Path, help="safetensors file to write (omit: evaluate only)")
    p.add_argument("--metrics-out", type=Path, help="JSON file for the summary and held-out metrics")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--steps", type=int, default=0, help="overrides --epochs")
    p.add_argument("--time-budget-min", type=float, default=0, help="cap the steps to fit this many minutes")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--tau", type=float, default=0.05, help="InfoNCE temperature")
    p.add_argument("--nce-weight", type=float, default=0.2)
    p.add_argument("--d", type=int, default=192)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--ff", type=int, default=384)
    p.add_argument("--pool", type=int, default=4)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--no-attention-pooling", action="store_true")
    p.add_argument("--frame-drop", type=float, default=0.1, help="share of frames masked in each training step")
    p.add_argument("--ctc-weight", type=float, default=0.0, help="weight of the auxiliary wordpiece CTC loss")
    p.add_argument("--ctc-vocab", type=int, default=2048, help="most frequent wordpieces kept as CTC classes")
    p.add_argument("--max-train-clips", type=int, default=0)
    p.add_argument("--max-shards", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--eval-every", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from voicerag_cli.models.sentence_embedder import MINILM_SPACE_ID
    from voicerag_cli.training.data import load_caches
    from voicerag_cli.training.voices import EVAL_VOICES, HELD_OUT_ACCENTS, HELD_OUT_VARIANTS

    cache = load_caches(args.cache, args.max_shards)
    model, summary = train(cache, args, log=sys.stderr)
    summary["data"] = {
        "caches": [str(c) for c in args.cache],
        "corpus": " + ".join(corpus_description(c) for c in args.cache),
        "held_out_sentences": "3% of texts by SHA-1 hash (voicerag_cli.training.corpus.is_held_out)",
        "held_out_accents": sorted(HELD_OUT_ACCENTS),
        "held_out_variants": sorted(HELD_OUT_VARIANTS),
        "eval_voices": list(EVAL_VOICES),
    }
    print(json.dumps({"summary": {k: v for k, v in summary.items() if k != "data"}}, indent=1))
    if args.metrics_out:
        args.metrics_out.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    if args.out:
        from voicerag_cli.training.export import export_head

        export_head(model, args.out, MINILM_SPACE_ID, 384, cache.frontend, summary)
        print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
