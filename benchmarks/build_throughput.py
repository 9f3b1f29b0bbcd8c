"""Index build throughput, end to end from files, against a bare baseline in the same run.

Corpus: `--files` text files of `--words` words each, sentences drawn (seeded) from
examples/docs, written to a temp dir. Then, alternating for `--rounds` rounds:

- voicerag: `build_index` from the folder into a fresh store (scan, hash, read, chunk, embed,
  write vectors + chunk table, commit): the same code as `voicerag index`.
- baseline: the same chunk texts (chunked beforehand, not timed), the same embedder object
  called directly in batches of `index.batch_size`, and `hnswlib.add_items` into an index with
  the same M/ef_construction. Nothing else.

The embedder is loaded once before both and is warm; its load time is reported separately.
The result is the median chunks/s of each and their ratio.

    python benchmarks/build_throughput.py [--files 60 --words 600 --rounds 3] [--store milvus-lite]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from voicerag_cli.config import Settings
from voicerag_cli.index.base import parse_store
from voicerag_cli.index.builder import build_index
from voicerag_cli.index.chunking import chunk_text
from voicerag_cli.index.hnsw_store import new_hnsw
from voicerag_cli.index.selection import open_store
from voicerag_cli.registry import Registry
from voicerag_cli.sentences import split_sentences

REPO = Path(__file__).resolve().parents[1]


def write_corpus(folder: Path, files: int, words: int, seed: int) -> list[Path]:
    sentences = [
        " ".join(s.text.split())
        for path in sorted((REPO / "examples" / "docs").iterdir())
        for s in split_sentences(path.read_text(encoding="utf-8"))
        if len(s.text.split()) >= 4
    ]
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(files):
        chosen: list[str] = []
        while sum(len(s.split()) for s in chosen) < words:
            chosen.append(rng.choice(sentences))
        path = folder / f"doc{i:04d}.txt"
        path.write_text(" ".join(chosen) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def baseline(texts: list[str], embedder: Any, settings: Settings) -> float:
    """Seconds for: embed in batches + hnswlib.add_items, nothing else."""
    started = time.perf_counter()
    index = new_hnsw(embedder.space.dim, len(texts), settings.index.hnsw_m, settings.index.hnsw_ef_construction)
    size = settings.index.batch_size
    for start in range(0, len(texts), size):
        vectors = np.asarray(embedder.embed_texts(texts[start : start + size], batch_size=size), dtype=np.float32)
        index.add_items(vectors, np.arange(start, start + len(vectors)))
    return time.perf_counter() - started


def voicerag(corpus: Path, tmp: Path, store: str, settings: Settings, registry: Registry, round_: int) -> float:
    spec = parse_store("" if store == "hnswlib" else f"milvus-lite:{tmp / f'lite{round_}.db'}")
    root = open_store(spec, tmp / f"indexes{round_}")
    started = time.perf_counter()
    report = build_index(root, "bench", [corpus], settings.index, registry.text_embedder)
    seconds = time.perf_counter() - started
    assert report.manifest is not None and report.chunks_embedded == report.manifest.chunks
    if spec.is_milvus:
        from milvus_lite import server_manager_instance

        server_manager_instance.release_server(spec.uri)
    return seconds


def measure(files: int, words: int, rounds: int, store: str) -> dict[str, Any]:
    settings = Settings()
    registry = Registry(settings)
    started = time.perf_counter()
    embedder = registry.text_embedder()
    load_s = time.perf_counter() - started
    embedder.embed_texts(["warm up the embedder"])
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        corpus = tmp / "corpus"
        write_corpus(corpus, files, words, seed=0)
        texts = [
            chunk.text
            for path in sorted(corpus.iterdir())
            for chunk in chunk_text(
                str(path.resolve()),
                path.read_text(encoding="utf-8"),
                settings.index.chunk_words,
                settings.index.overlap_words,
            )
        ]
        ours, bare = [], []
        for round_ in range(rounds):
            bare.append(baseline(texts, embedder, settings))
            ours.append(voicerag(corpus, tmp, store, settings, registry, round_))
            print(
                f"  round {round_ + 1}: baseline {len(texts) / bare[-1]:.1f} chunks/s, "
                f"voicerag ({store}) {len(texts) / ours[-1]:.1f} chunks/s",
                flush=True,
            )
    ours_rate = len(texts) / statistics.median(ours)
    bare_rate = len(texts) / statistics.median(bare)
    return {
        "store": store,
        "files": files,
        "words_per_file": words,
        "chunks": len(texts),
        "rounds": rounds,
        "batch_size": settings.index.batch_size,
        "embedder_load_s": round(load_s, 2),
        "voicerag_s": [round(s, 2) for s in ours],
        "baseline_s": [round(s, 2) for s in bare],
        "voicerag_chunks_per_s": round(ours_rate, 1),
        "baseline_chunks_per_s": round(bare_rate, 1),
        "ratio": round(ours_rate / bare_rate, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=60)
    parser.add_argument("--words", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--store", choices=["hnswlib", "milvus-lite"], default="hnswlib")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = measure(args.files, args.words, args.rounds, args.store)
    print(json.dumps(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
