"""A BERT folder's weights read as float32: the usual `model.safetensors`, or the compact
`model.int8.safetensors` that the bundled all-MiniLM-L6-v2 ships as.

The compact file keeps each large matrix as int8 with one float32 scale per row (`NAME.int8`,
`NAME.scale`: NAME = int8 x scale, symmetric, one scale per output row) and every other tensor
as float16; it is a quarter of the original's size (scripts/quantize_minilm.py writes it from
the original). Both read back as float32 once at load, so every forward pass runs in float32.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

FULL = "model.safetensors"
COMPACT = "model.int8.safetensors"
QUANTIZED = ".int8"
SCALE = ".scale"


def weights_file(model_dir: Path) -> Path | None:
    """The folder's weights file (the full one first), or None."""
    return next((model_dir / name for name in (FULL, COMPACT) if (model_dir / name).is_file()), None)


def dequantized(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every tensor as float32 under its original name (int8 x scale for the quantized ones)."""
    out: dict[str, np.ndarray] = {}
    for key, value in tensors.items():
        if key.endswith(SCALE):
            continue
        if key.endswith(QUANTIZED):
            name = key.removesuffix(QUANTIZED)
            out[name] = value.astype(np.float32) * tensors[name + SCALE].astype(np.float32)
        else:
            out[key] = value.astype(np.float32, copy=False)
    return out


def read_float32(model_dir: Path) -> dict[str, np.ndarray]:
    """The folder's weights, float32. Raises OSError (FileNotFoundError without a weights file)
    or ValueError (a file that is not such weights)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = weights_file(model_dir)
    if path is None:
        raise FileNotFoundError(f"no {FULL} or {COMPACT} in {model_dir}")
    try:
        tensors = load_file(str(path))
        return dequantized(tensors) if path.name == COMPACT else tensors
    except (SafetensorError, KeyError) as exc:  # not safetensors; an int8 matrix without its scale
        raise ValueError(f"{path}: {exc}") from exc


def write_full_copy(model_dir: Path, target: Path) -> Path:
    """A copy of a compact folder that transformers can load: its other files, and the weights
    as a float32 `model.safetensors` (the same values the numpy path computes with)."""
    from safetensors.numpy import save_file

    shutil.copytree(model_dir, target, ignore=shutil.ignore_patterns(COMPACT), dirs_exist_ok=True)
    save_file(read_float32(model_dir), str(target / FULL), metadata={"format": "pt"})
    return target
