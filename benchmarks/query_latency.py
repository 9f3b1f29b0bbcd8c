"""Top-k search latency, recall@k, memory and disk size of the hnswlib store at a given size.

One size per process (so RSS is that index's alone): builds an HNSW index over N synthetic
vectors of the default dimension with the store's own `new_hnsw` (the configured `M` and
`ef_construction`), saves and reloads it the way `IndexReader` does, then times top-k queries
through the store's `knn` at each `ef`, and scores recall@k against exact (brute-force cosine)
search over the same vectors.

Synthetic vectors: Gaussian with a decaying per-dimension spectrum (scale (1+i)^-0.7),
L2-normalized, which gives them a low effective dimension like sentence embeddings; isotropic
Gaussian vectors (`--distribution iso`) are the hard case where all distances concentrate.
Queries are fresh draws from the same distribution (not in the index).

    python benchmarks/query_latency.py --size 100000 [--ef 32,64,128,256] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from voicerag_cli.config import IndexConfig
from voicerag_cli.index.hnsw_store import knn, new_hnsw

DIM = 384


def rss_mib() -> float:
    """Current resident set size of this process (Linux /proc), in MiB."""
    with open("/proc/self/statm", encoding="ascii") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic(n: int, dim: int, seed: int, distribution: str, block: int = 100_000) -> np.ndarray:
    """n L2-normalized float32 vectors, generated in blocks to bound temporary memory."""
    rng = np.random.default_rng(seed)
    scale = (1.0 + np.arange(dim, dtype=np.float32)) ** -0.7 if distribution == "decay" else np.ones(dim, np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, block):
        rows = min(block, n - start)
        x = rng.standard_normal((rows, dim), dtype=np.float32) * scale
        out[start : start + rows] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def exact_top_k(data: np.ndarray, queries: np.ndarray, k: int, block: int = 100_000) -> np.ndarray:
    """Brute-force cosine top-k ids (vectors are normalized, so inner product)."""
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(data), block):
        scores = queries @ data[start : start + block].T
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        cand_scores = np.concatenate([best_scores, np.take_along_axis(scores, part, axis=1)], axis=1)
        cand_ids = np.concatenate([best_ids, part + start], axis=1)
        order = np.argsort(-cand_scores, axis=1)[:, :k]
        best_scores = np.take_along_axis(cand_scores, order, axis=1)
        best_ids = np.take_along_axis(cand_ids, order, axis=1)
    return best_ids


def loaded_rss_mib(path: Path) -> float:
    """RSS that loading the saved index adds to a fresh interpreter (what a reader process pays)."""
    code = (
        "import sys, hnswlib; from query_latency import rss_mib; before = rss_mib(); "
        f"i = hnswlib.Index(space='cosine', dim={DIM}); i.load_index(sys.argv[1], max_elements=0); "
        "print(rss_mib() - before)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], cwd=Path(__file__).parent, capture_output=True, text=True, check=True
    )
    return float(done.stdout.strip())


def percentile_ms(seconds: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(seconds) * 1000, q))


def measure(
    size: int, efs: list[int], k: int, queries: int, distribution: str, m: int, ef_construction: int, threads: int
) -> dict[str, Any]:
    data = synthetic(size, DIM, seed=1, distribution=distribution)
    probe = synthetic(queries, DIM, seed=2, distribution=distribution)
    started = time.perf_counter()
    index = new_hnsw(DIM, size, m, ef_construction)
    index.add_items(data, np.arange(size), num_threads=threads)
    build_s = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vectors.hnsw"
        index.save_index(str(path))
        disk_bytes = path.stat().st_size
        del index
        truth = exact_top_k(data, probe, k)
        del data  # the reader holds only the HNSW file's contents
        import hnswlib

        index_rss = loaded_rss_mib(path)
        reader = hnswlib.Index(space="cosine", dim=DIM)
        started = time.perf_counter()
        reader.load_index(str(path), max_elements=0)
        load_s = time.perf_counter() - started

    rows = []
    for ef in efs:
        reader.set_num_threads(1)
        for vector in probe[:20]:  # warm caches
            knn(reader, vector, k, ef)
        latencies, hits = [], 0
        for vector, expected in zip(probe, truth, strict=True):
            started = time.perf_counter()
            labels, _ = knn(reader, vector, k, ef)
            latencies.append(time.perf_counter() - started)
            hits += len(set(labels) & set(expected.tolist()))
        rows.append(
            {
                "ef": ef,
                "p50_ms": round(percentile_ms(latencies, 50), 3),
                "p95_ms": round(percentile_ms(latencies, 95), 3),
                "recall_at_k": round(hits / (k * len(probe)), 4),
            }
        )
        print(
            f"  N={size:>9,} ef={ef:<4} p50 {rows[-1]['p50_ms']:.3f} ms  p95 {rows[-1]['p95_ms']:.3f} ms  "
            f"recall@{k} {rows[-1]['recall_at_k']:.4f}",
            flush=True,
        )
    return {
        "size": size,
        "dim": DIM,
        "k": k,
        "queries": queries,
        "distribution": distribution,
        "M": m,
        "ef_construction": ef_construction,
        "build_threads": threads,
        "build_s": round(build_s, 1),
        "build_vectors_per_s": round(size / build_s, 1),
        "load_s": round(load_s, 2),
        "disk_mib": round(disk_bytes / 2**20, 1),
        "index_rss_mib": round(index_rss, 1),
        "process_rss_mib": round(rss_mib(), 1),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "by_ef": rows,
    }


def main() -> None:
    defaults = IndexConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--ef", default=f"32,64,{defaults.hnsw_ef_search},256", help="comma-separated ef values")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--distribution", choices=["decay", "iso"], default="decay")
    parser.add_argument("--m", type=int, default=defaults.hnsw_m)
    parser.add_argument("--ef-construction", type=int, default=defaults.hnsw_ef_construction)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="build threads")
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    args = parser.parse_args()
    result = measure(
        args.size,
        [int(e) for e in args.ef.split(",")],
        args.k,
        args.queries,
        args.distribution,
        args.m,
        args.ef_construction,
        args.threads,
    )
    print(json.dumps({key: value for key, value in result.items() if key != "by_ef"}))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
