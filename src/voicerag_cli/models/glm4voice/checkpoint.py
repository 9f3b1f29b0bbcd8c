"""Loading local checkpoint folders: required files, JSON configs, strict safetensors weights.

All failures a user can cause (a folder or file missing, a checkpoint that does not match the
architecture) become one-line `ModelError`s, which the CLI turns into exit code 5."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from voicerag_cli.errors import ModelError


def require_dir(path: str | Path, what: str, config_key: str) -> Path:
    if not str(path):
        raise ModelError(f"{what}: set config key '{config_key}' to its local folder")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ModelError(f"{what} folder not found: {folder} (config key '{config_key}')")
    return folder


def require_file(folder: Path, name: str, what: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise ModelError(f"{what}: missing {name} in {folder}")
    return path


def read_json(folder: Path, name: str, what: str) -> dict[str, Any]:
    path = require_file(folder, name, what)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{what}: cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{what}: {path} is not a JSON object")
    return data


def read_safetensors(
    folder: Path, what: str, rename: Callable[[str], str | None] = lambda name: name
) -> dict[str, torch.Tensor]:
    """Every tensor of every `model*.safetensors` shard, renamed; `rename` returns None to skip one."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    shards = sorted(folder.glob("model*.safetensors"))
    if not shards:
        raise ModelError(f"{what}: no model*.safetensors in {folder}")
    state: dict[str, torch.Tensor] = {}
    for shard in shards:
        try:
            tensors = load_file(str(shard), device="cpu")
        except (OSError, SafetensorError) as exc:
            raise ModelError(f"{what}: cannot read {shard}: {exc}") from exc
        for name, tensor in tensors.items():
            local = rename(name)
            if local is not None:
                state[local] = tensor
    return state


def load_strict(module: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Load with every parameter and buffer accounted for: a checkpoint of another architecture
    or size fails here with the offending names instead of producing noise later."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        parts = []
        for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if names:
                parts.append(f"{len(names)} {label} (e.g. {', '.join(names[:3])})")
        raise ModelError(f"{what}: checkpoint does not match the architecture: {'; '.join(parts)}")
    module.load_state_dict(state, strict=True)
