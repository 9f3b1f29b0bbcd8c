"""Train the reader (a MiniLM cross-encoder with a relevance head and a per-token answer head) on
the GPU, evaluate it on the held-out split, export ONNX and quantise it to int8.

    python3 training/reader/train.py --data .reader/data --init .reader/init --out OUT --layers 3

Input per pair: ``[CLS] question [SEP] passage [SEP]`` (question <= 48 tokens, whole <= 224).
Heads: ``relevance`` = linear on the [CLS] state (a logit); ``token_logits`` = linear on every
token state (a logit that the token is part of the answering sentence/block).
Loss: BCE on relevance for every pair + listwise softmax cross-entropy over each question's
candidates (positive vs. its negatives) + BCE on answer tokens (full weight on positives,
a quarter on negatives, whose tokens are all 0).
"""

from __future__ import annotations

import json
import lzma
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np

CLS, SEP, PAD = 101, 102, 0


@dataclass
class TrainConfig:
    data: Path
    init: Path
    out: Path
    layers: int = 3
    epochs: float = 2.0
    batch_groups: int = 64  # x group_size sequences per step
    group_size: int = 4  # 1 positive + 3 negatives
    lr: float = 8e-5
    head_lr: float = 1e-3
    warmup: float = 0.05
    weight_decay: float = 0.01
    max_len: int = 224
    max_q: int = 48
    docs_upsample: int = 3  # docs groups repeated this many times per epoch
    howto_upsample: int = 8  # how-to docs groups (usage, instruction, how-to headings): rarer, and the weak spot
    neg_token_weight: float = 0.25
    listwise_weight: float = 1.0
    token_weight: float = 1.0
    deadline: float = 0.0  # unix time at which training stops (0 = none); the LR schedule follows it
    eval_onnx_groups: int = 300
    eval_groups: int = 0  # >0: evaluate the torch model on this many validation groups only (CPU runs)
    seed: int = 7
    device: str = "cuda"
    max_groups: int = 0  # >0: use only this many train/val groups (smoke tests)


# ----------------------------------------------------------------------------- tokenisation


_TOK = None


def _tok():
    global _TOK
    if _TOK is None:
        from tokenizers import Tokenizer

        _TOK = Tokenizer.from_file(str(_TOK_PATH))
        _TOK.no_truncation()
        _TOK.no_padding()
    return _TOK


_TOK_PATH = Path()


def _init_worker(path: str) -> None:
    global _TOK_PATH
    _TOK_PATH = Path(path)


def _encode_chunk(texts: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    encs = _tok().encode_batch(texts, add_special_tokens=False)
    return [(np.asarray(e.ids, dtype=np.int32), np.asarray(e.offsets, dtype=np.int32).reshape(-1, 2)) for e in encs]


def encode_all(texts: list[str], tok_path: Path, procs: int = 14) -> list[tuple[np.ndarray, np.ndarray]]:
    chunks = [texts[i : i + 2000] for i in range(0, len(texts), 2000)]
    with Pool(procs, initializer=_init_worker, initargs=(str(tok_path),)) as pool:
        out = pool.map(_encode_chunk, chunks)
    return [x for c in out for x in c]


def build_pair(q_ids: np.ndarray, p: tuple[np.ndarray, np.ndarray], spans: list, cfg: TrainConfig, rng: random.Random):
    """ids [L], token labels [L] (-1 = not a passage token), passage token offsets [L,2], window start."""
    q = q_ids[: cfg.max_q]
    budget = cfg.max_len - len(q) - 3
    p_ids, p_off = p
    start = 0
    if spans and len(p_ids) > budget:
        ev_tok = [i for i, (s, e) in enumerate(p_off) if any(s < b and e > a for a, b in spans)]
        if ev_tok and ev_tok[-1] >= budget:
            start = max(0, min(ev_tok[0] - rng.randint(0, budget // 3), len(p_ids) - budget))
    w_ids = p_ids[start : start + budget]
    w_off = p_off[start : start + budget]
    lab = np.zeros(len(w_ids), dtype=np.int8)
    for a, b in spans:
        lab |= ((w_off[:, 0] < b) & (w_off[:, 1] > a)).astype(np.int8)
    ids = np.concatenate([[CLS], q, [SEP], w_ids, [SEP]]).astype(np.int32)
    labels = np.concatenate([np.full(len(q) + 2, -1), lab, [-1]]).astype(np.int8)
    offs = np.concatenate([np.full((len(q) + 2, 2), -1), w_off, [[-1, -1]]]).astype(np.int32)
    return ids, labels, offs


def load_split(path: Path, cfg: TrainConfig, rng: random.Random):
    with lzma.open(path, "rt", encoding="utf-8") as fh:
        d = json.load(fh)
    if cfg.max_groups:
        d["groups"] = d["groups"][: cfg.max_groups]
    t0 = time.time()
    passages = encode_all(d["passages"], cfg.init / "tokenizer.json")
    questions = encode_all([g["q"] for g in d["groups"]], cfg.init / "tokenizer.json")
    print(f"tokenised {len(passages)} passages, {len(questions)} questions in {time.time() - t0:.0f}s", flush=True)
    return d, passages, questions


def to_arrays(d, passages, questions, cfg: TrainConfig, rng: random.Random, keep_offsets: bool = False):
    """Flatten every (group, item) into padded arrays; returns arrays and per-group item indices."""
    n = sum(len(g["items"]) for g in d["groups"])
    ids = np.zeros((n, cfg.max_len), dtype=np.int16)
    labels = np.full((n, cfg.max_len), -1, dtype=np.int8)
    offs = np.full((n, cfg.max_len, 2), -1, dtype=np.int32) if keep_offsets else None
    rel = np.zeros(n, dtype=np.float32)
    groups: list[list[int]] = []
    k = 0
    for gi, g in enumerate(d["groups"]):
        members = []
        for pid, label, spans in g["items"]:
            a, b, o = build_pair(questions[gi][0], passages[pid], spans if label else [], cfg, rng)
            ids[k, : len(a)] = a
            labels[k, : len(b)] = b
            if offs is not None:
                offs[k, : len(o)] = o
            rel[k] = label
            members.append(k)
            k += 1
        groups.append(members)
    return ids, labels, offs, rel, groups


# ----------------------------------------------------------------------------- model


def build_model(cfg: TrainConfig):
    import torch
    from transformers import BertConfig, BertModel

    bcfg = BertConfig.from_pretrained(str(cfg.init))
    bcfg.num_hidden_layers = cfg.layers

    class Reader(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = BertModel(bcfg, add_pooling_layer=False)
            self.rel = torch.nn.Linear(bcfg.hidden_size, 1)
            self.tok = torch.nn.Linear(bcfg.hidden_size, 1)

        def forward(self, input_ids, attention_mask, token_type_ids):
            h = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            return self.rel(h[:, 0]).squeeze(-1), self.tok(h).squeeze(-1)

    model = Reader()
    packed = np.load(cfg.init / "init.npz")
    state = {}
    for key in packed.files:
        name, kind = key.rsplit("::", 1)
        if kind == "q":
            state[name] = torch.from_numpy(packed[key].astype(np.float32) * packed[name + "::s"].astype(np.float32))
        elif kind == "h":
            state[name] = torch.from_numpy(packed[key].astype(np.float32))
    state = {k: v for k, v in state.items() if not k.startswith("encoder.layer.") or int(k.split(".")[2]) < cfg.layers}
    state.pop("embeddings.position_ids", None)
    missing, unexpected = model.bert.load_state_dict(state, strict=False)
    print("init: missing", [m for m in missing if "position_ids" not in m], "unexpected", unexpected, flush=True)
    return model


def type_ids(ids):
    """token_type_ids: 0 up to and including the first [SEP], 1 after it."""
    import torch

    first_sep = (ids == SEP).int().argmax(dim=1, keepdim=True)
    pos = torch.arange(ids.shape[1], device=ids.device)[None]
    return ((pos > first_sep) & (ids != PAD)).long()


# ----------------------------------------------------------------------------- evaluation


def span_scores(probs: np.ndarray, offs: np.ndarray, units: list) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"mean": [], "max": [], "top3": []}
    for a, b in units:
        m = (offs[:, 0] >= 0) & (offs[:, 0] < b) & (offs[:, 1] > a)
        if not m.any():
            for key in out:
                out[key].append(-1.0)
            continue
        v = probs[m]
        out["mean"].append(float(v.mean()))
        out["max"].append(float(v.max()))
        out["top3"].append(float(np.sort(v)[-3:].mean()))
    return out


def evaluate(score_fn, val, cfg: TrainConfig, limit: int | None = None) -> dict:
    d, ids, _labels, offs, rel, groups = val
    idx = range(len(groups)) if limit is None else range(0, len(groups), max(1, len(groups) // limit))
    per: dict[str, dict[str, list[float]]] = {}
    for gi in idx:
        members = groups[gi]
        g = d["groups"][gi]
        if rel[members[0]] != 1:
            continue
        r_logits, t_logits = score_fn(ids[members])
        src = g["src"].split(":")[0] + (":" + g["src"].split(":")[-1] if g["src"].startswith("docs") else "")
        for key in dict.fromkeys((src, "docs" if src.startswith("docs") else src, "all")):  # each key once
            st = per.setdefault(
                key, {"rr": [], "top1": [], "block_mean": [], "block_max": [], "block_top3": [], "block_first": []}
            )
            rank = 1 + int((r_logits[1:] >= r_logits[0]).sum())
            st["rr"].append(1.0 / rank)
            st["top1"].append(float(rank == 1))
            units = g.get("units") or []
            ev = d["groups"][gi]["items"][0][2]
            probs = 1 / (1 + np.exp(-t_logits[0]))
            sc = span_scores(probs, offs[members[0]], units)
            visible = [i for i, s in enumerate(sc["mean"]) if s >= 0]
            if len(visible) < 2:
                continue
            gold = {i for i in visible if any(units[i][0] < b and units[i][1] > a for a, b in ev)}
            if not gold:
                continue
            for how in ("mean", "max", "top3"):
                best = max(visible, key=lambda i: sc[how][i])
                st["block_" + how].append(float(best in gold))
            st["block_first"].append(float(visible[0] in gold))
    return {
        k: {
            "n": len(v["rr"]),
            "mrr": float(np.mean(v["rr"])),
            "top1": float(np.mean(v["top1"])),
            **{m: float(np.mean(v[m])) if v[m] else None for m in v if m.startswith("block")},
            "n_block": len(v["block_mean"]),
        }
        for k, v in sorted(per.items())
    }


# ----------------------------------------------------------------------------- main


HOWTO_KINDS = ("usage", "instruction", "section_howto")


def _repeats(source: str, cfg: TrainConfig) -> int:
    """How often a group is seen per epoch: docs groups more than QA ones, how-to ones most."""
    if not source.startswith("docs"):
        return 1
    return cfg.howto_upsample if source.rsplit(":", 1)[-1] in HOWTO_KINDS else cfg.docs_upsample


def prepare(cfg: TrainConfig) -> None:
    """Tokenise both splits once and cache the arrays (several trainings can then share them)."""
    rng = random.Random(cfg.seed)
    d, p, q = load_split(cfg.data / "train.json.xz", cfg, rng)
    ids, labels, _, rel, groups = to_arrays(d, p, q, cfg, rng)
    srcs = [_repeats(g["src"], cfg) for g in d["groups"]]
    dv, pv, qv = load_split(cfg.data / "val.json.xz", cfg, rng)
    vi, vl, vo, vr, vg = to_arrays(dv, pv, qv, cfg, rng, keep_offsets=True)
    np.savez(
        cfg.data / "arrays.npz",
        ids=ids,
        labels=labels,
        rel=rel,
        bounds=np.array([[g[0], g[-1] + 1] for g in groups]),
        repeats=np.array(srcs),
    )
    np.savez(
        cfg.data / "val_arrays.npz",
        ids=vi,
        labels=vl,
        offs=vo,
        rel=vr,
        bounds=np.array([[g[0], g[-1] + 1] for g in vg]),
    )
    print(f"prepared {len(ids)} train / {len(vi)} val sequences", flush=True)


def train(cfg: TrainConfig) -> None:
    import torch
    import torch.nn.functional as F

    t_start = time.time()
    rng = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)
    cfg.out.mkdir(parents=True, exist_ok=True)
    cache = cfg.data / "arrays.npz"
    vcache = cfg.data / "val_arrays.npz"
    if not (cache.exists() and vcache.exists()):
        prepare(cfg)
    with lzma.open(cfg.data / "val.json.xz", "rt", encoding="utf-8") as fh:
        dv = json.load(fh)
    if cfg.max_groups:
        dv["groups"] = dv["groups"][: cfg.max_groups]
    z = np.load(cache)
    ids, labels, rel = z["ids"], z["labels"], z["rel"]
    groups = [list(range(a, b)) for a, b in z["bounds"]]
    srcs = [int(r) for r in z["repeats"]]
    vz = np.load(vcache)
    val = (dv, vz["ids"], vz["labels"], vz["offs"], vz["rel"], [list(range(a, b)) for a, b in vz["bounds"]])
    print(
        f"train seqs {len(ids)}, groups {len(groups)}, val groups {len(val[5])}; data ready at {time.time() - t_start:.0f}s",
        flush=True,
    )

    dev = torch.device(cfg.device)
    model = build_model(cfg).to(dev)
    g_ids = torch.from_numpy(ids.astype(np.int32)).to(dev)
    g_lab = torch.from_numpy(labels).to(dev)
    g_rel = torch.from_numpy(rel).to(dev)

    # sample-able groups: positive first, then negatives (train.py takes group_size-1 at random)
    order = [gi for gi, g in enumerate(groups) for _ in range(srcs[gi])]
    steps_per_epoch = len(order) // cfg.batch_groups
    total = int(steps_per_epoch * cfg.epochs)
    heads = [p for n, p in model.named_parameters() if n.startswith(("rel.", "tok."))]
    body = [p for n, p in model.named_parameters() if not n.startswith(("rel.", "tok."))]
    opt = torch.optim.AdamW(
        [{"params": body, "lr": cfg.lr}, {"params": heads, "lr": cfg.head_lr}],
        weight_decay=cfg.weight_decay,
        fused=dev.type == "cuda",
    )
    base = [cfg.lr, cfg.head_lr]
    warm = max(1, int(total * cfg.warmup))
    print(f"steps {total} ({steps_per_epoch}/epoch), layers {cfg.layers}", flush=True)
    step = 0
    t_train = time.time()
    model.train()
    stopped_early = False
    while step < total:
        rng.shuffle(order)
        for b in range(steps_per_epoch):
            if step >= total:
                break
            progress = step / total
            if cfg.deadline:
                progress = max(progress, (time.time() - t_train) / max(1.0, cfg.deadline - t_train))
            if progress >= 1.0:
                stopped_early = step < total
                break
            lr_f = min(1.0, (step + 1) / warm) * 0.5 * (1 + math.cos(math.pi * progress))
            for pg, lr0 in zip(opt.param_groups, base, strict=False):
                pg["lr"] = lr0 * lr_f
            rows = []
            for gi in order[b * cfg.batch_groups : (b + 1) * cfg.batch_groups]:
                m = groups[gi]
                negs = rng.sample(m[1:], min(cfg.group_size - 1, len(m) - 1))
                sel = [m[0], *negs]
                while len(sel) < cfg.group_size:
                    sel.append(groups[rng.choice(order)][-1])  # short group: a negative of another question
                rows.extend(sel)
            r = torch.tensor(rows, device=dev)
            x = g_ids[r].long()
            am = (x != PAD).long()
            L = int(am.sum(1).max())
            x, am = x[:, :L], am[:, :L]
            y_tok = g_lab[r][:, :L].float()
            y_rel = g_rel[r]
            with torch.autocast(dev.type, dtype=torch.bfloat16):
                rl, tl = model(x, am, type_ids(x))
            rl, tl = rl.float(), tl.float()
            loss_rel = F.binary_cross_entropy_with_logits(rl, y_rel)
            grp = rl.view(-1, cfg.group_size)
            has_pos = y_rel.view(-1, cfg.group_size)[:, 0] == 1
            loss_list = (
                F.cross_entropy(grp[has_pos], torch.zeros(int(has_pos.sum()), dtype=torch.long, device=dev))
                if has_pos.any()
                else rl.sum() * 0
            )
            tok_mask = (y_tok >= 0).float() * torch.where(y_rel[:, None] == 1, 1.0, cfg.neg_token_weight)
            loss_tok = (
                F.binary_cross_entropy_with_logits(tl, y_tok.clamp(min=0), reduction="none") * tok_mask
            ).sum() / tok_mask.sum().clamp(min=1)
            loss = loss_rel + cfg.listwise_weight * loss_list + cfg.token_weight * loss_tok
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if step % 200 == 0:
                print(
                    f"step {step}/{total} loss {loss.item():.3f} (rel {loss_rel.item():.3f} list {loss_list.item():.3f} tok {loss_tok.item():.3f}) {time.time() - t_train:.0f}s",
                    flush=True,
                )
            step += 1
        if stopped_early:
            break
    print(f"trained {step} steps in {time.time() - t_train:.0f}s (early stop: {stopped_early})", flush=True)

    model.eval()

    @torch.no_grad()
    def torch_score(batch_ids: np.ndarray):
        x = torch.from_numpy(batch_ids.astype(np.int64)).to(dev)
        am = (x != PAD).long()
        with torch.autocast(dev.type, dtype=torch.bfloat16):
            rl, tl = model(x, am, type_ids(x))
        return rl.float().cpu().numpy(), tl.float().cpu().numpy()

    metrics = {
        "config": {k: str(v) for k, v in asdict(cfg).items()},
        "steps": step,
        "epochs_done": step / steps_per_epoch,
        "early_stop": stopped_early,
        "train_s": time.time() - t_train,
    }
    metrics["torch_bf16"] = evaluate(torch_score, val, cfg, limit=cfg.eval_groups or None)
    metrics["torch_bf16_sub"] = evaluate(torch_score, val, cfg, limit=cfg.eval_onnx_groups)
    print(json.dumps(metrics["torch_bf16"].get("all")), flush=True)
    export(model.float().cpu(), cfg, val, metrics)


def export(model, cfg: TrainConfig, val, metrics: dict) -> None:
    import onnx
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    x = torch.randint(1000, 30000, (2, 40))
    am = torch.ones_like(x)
    fp32 = cfg.out / f"reader_L{cfg.layers}.fp32.onnx"
    int8 = cfg.out / f"reader_L{cfg.layers}.int8.onnx"
    axes = {k: {0: "batch", 1: "seq"} for k in ("input_ids", "attention_mask", "token_type_ids")}
    axes |= {"relevance": {0: "batch"}, "token_logits": {0: "batch", 1: "seq"}}
    torch.onnx.export(
        model,
        (x, am, torch.zeros_like(x)),
        str(fp32),
        input_names=list(axes)[:3],
        output_names=["relevance", "token_logits"],
        dynamic_axes=axes,
        opset_version=17,
        dynamo=False,
    )
    quantize_dynamic(
        str(fp32),
        str(int8),
        weight_type=QuantType.QInt8,
        per_channel=True,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    so = ort.SessionOptions()
    so.intra_op_num_threads = 8
    sess = ort.InferenceSession(str(int8), so, providers=["CPUExecutionProvider"])

    def ort_score(batch_ids: np.ndarray):
        b = batch_ids.astype(np.int64)
        L = int((b != PAD).sum(1).max())
        b = b[:, :L]
        tt = type_ids(torch.from_numpy(b)).numpy()
        rl, tl = sess.run(None, {"input_ids": b, "attention_mask": (b != PAD).astype(np.int64), "token_type_ids": tt})
        pad = np.full((len(b), batch_ids.shape[1]), -20.0, dtype=np.float32)
        pad[:, :L] = tl
        return rl, pad

    metrics["onnx_int8_sub"] = evaluate(ort_score, val, cfg, limit=cfg.eval_onnx_groups)
    metrics["int8_bytes"] = os.path.getsize(int8)
    (cfg.out / f"metrics_L{cfg.layers}.json").write_text(json.dumps(metrics, indent=1))
    print(
        "int8",
        json.dumps(metrics["onnx_int8_sub"].get("all")),
        "bf16-sub",
        json.dumps(metrics["torch_bf16_sub"].get("all")),
        flush=True,
    )
    fp32.unlink()


if __name__ == "__main__":
    a = dict(arg.split("=", 1) for arg in sys.argv[1:] if "=" in arg)
    cfg = TrainConfig(data=Path(a.pop("data")), init=Path(a.pop("init")), out=Path(a.pop("out")))
    for k, v in a.items():
        setattr(cfg, k, type(getattr(cfg, k))(v))
    prepare(cfg) if "prepare" in sys.argv[1:] else train(cfg)
