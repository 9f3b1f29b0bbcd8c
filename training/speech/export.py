"""A trained student as a head file: safetensors with the metadata the runtime backend checks
(voicerag_cli/models/distilled/head.py), optionally split into parts no larger than a size
limit (the GPU machine returns files of bounded size) and merged back here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

SPACE_ID = "sentence-transformers/all-MiniLM-L6-v2"


def part_path(out: Path, index: int) -> Path:
    return out if index == 0 else out.with_name(f"{out.stem}.part{index}{out.suffix}")


def save_head(model: torch.nn.Module, out: Path, summary: dict[str, Any], bridge: bool, part_bytes: int) -> list[Path]:
    """float16 tensors (the numpy head upcasts on load), the training summary in the metadata
    and beside the file as `<out>.json`."""
    from voicerag_cli.models.distilled.frontend import FRONTEND_ID
    from voicerag_cli.models.distilled.head import BRIDGE_FORMAT, HEAD_FORMAT

    exported = model.export_tensors() if bridge else model.state_dict()  # type: ignore[operator]
    tensors = {k: v.detach().half().cpu().contiguous() for k, v in exported.items()}
    meta = {
        "format": BRIDGE_FORMAT if bridge else HEAD_FORMAT,
        "target_space_id": SPACE_ID,
        "target_dim": "384",
        "frontend": FRONTEND_ID,
        "config": json.dumps(model.cfg.to_dict()),  # type: ignore[operator]
        "training": json.dumps(summary),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    parts = save_parts(tensors, meta, out, part_bytes)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1))
    total = sum(part.stat().st_size for part in parts) / 2**20
    print(f"saved {', '.join(str(part) for part in parts)} ({total:.1f} MiB)", flush=True)
    return parts


def save_parts(tensors: dict[str, torch.Tensor], meta: dict[str, str], out: Path, part_bytes: int) -> list[Path]:
    from safetensors.torch import save_file

    groups: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if part_bytes and groups[-1] and size + nbytes > part_bytes:
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


def load_parts(out: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors (as stored) and the metadata of a head saved by `save_parts`."""
    from safetensors import safe_open

    tensors: dict[str, torch.Tensor] = {}
    with safe_open(str(out), framework="pt") as handle:
        meta = dict(handle.metadata() or {})
        tensors.update({name: handle.get_tensor(name) for name in handle.keys()})  # noqa: SIM118
    for index in range(1, int(meta.pop("parts", "1"))):
        with safe_open(str(part_path(out, index)), framework="pt") as handle:
            tensors.update({name: handle.get_tensor(name) for name in handle.keys()})  # noqa: SIM118
    return tensors, meta


def merge(head: Path, out: Path) -> None:
    """A head saved in parts as one file."""
    from safetensors.torch import save_file

    tensors, meta = load_parts(head)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out), metadata=meta)
    print(f"merged {len(tensors)} tensors into {out} ({out.stat().st_size / 2**20:.1f} MiB)")


def soup(heads: list[Path], weights: list[float], out: Path) -> None:
    """The weighted average of heads of one architecture (weight-space ensembling: a head
    fine-tuned from another, averaged with it, keeps more of what the first did well). The
    metadata is the first head's, with the recipe added to its training summary."""
    from safetensors.torch import save_file

    if len(heads) != len(weights) or abs(sum(weights) - 1.0) > 1e-6:
        raise ValueError("one weight per head, summing to 1")
    loaded = [load_parts(h) for h in heads]
    configs = {meta["config"] for _, meta in loaded}
    if len(configs) != 1 or any(set(t) != set(loaded[0][0]) for t, _ in loaded):
        raise ValueError("heads of different architectures cannot be averaged")
    tensors = {
        name: sum(w * t[name].float() for w, (t, _) in zip(weights, loaded, strict=True)).half().contiguous()
        for name in loaded[0][0]
    }
    meta = dict(loaded[0][1])
    summary = json.loads(meta.get("training", "{}"))
    summary["soup"] = [{"head": str(h), "weight": w} for h, w in zip(heads, weights, strict=True)]
    meta["training"] = json.dumps(summary)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out), metadata=meta)
    print(f"averaged {len(heads)} heads into {out}")
