"""Parse speed of the structure readers on a real documentation set.

    pip download --no-deps --no-binary :all: sqlalchemy==2.0.36 -d /tmp/x
    tar xzf /tmp/x/sqlalchemy-2.0.36.tar.gz -C /tmp/x
    PYTHONPATH=src python3 benchmarks/structure_speed.py /tmp/x/sqlalchemy-2.0.36/doc \
        --label "SQLAlchemy 2.0.36 doc/"

Reads every .rst/.md/.html/.txt file under the folder with `structure.parse` (the readers'
fallbacks included) and writes files/s, MB/s, per-suffix figures, the slowest files, the block
kinds found, and the files whose own reader raised (read as plain text instead).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import Counter
from pathlib import Path

from voicerag_cli.structure import _reader, chunk_blocks, parse

SUFFIXES = (".rst", ".md", ".markdown", ".html", ".htm", ".txt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--label", default="")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "structure_speed.json")
    args = parser.parse_args()

    files = sorted(p for p in args.folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    texts = [(p, p.read_text(encoding="utf-8", errors="replace")) for p in files]
    parse("warm *up*", ".md")  # imports and the parsers' setup are not what is timed
    parse("warm *up*", ".rst")
    per_suffix: dict[str, dict[str, float]] = {}
    kinds: Counter[str] = Counter()
    timings: list[tuple[float, str]] = []
    failed: list[str] = []
    chunks = 0
    chunk_seconds = 0.0
    started = time.perf_counter()
    for path, text in texts:
        begin = time.perf_counter()
        blocks = parse(text, path.suffix)
        seconds = time.perf_counter() - begin
        timings.append((seconds, str(path.relative_to(args.folder))))
        stats = per_suffix.setdefault(path.suffix.lower(), {"files": 0, "bytes": 0, "seconds": 0.0})
        stats["files"] += 1
        stats["bytes"] += len(text.encode("utf-8"))
        stats["seconds"] += seconds
        kinds.update(block.kind for block in blocks)
        begin = time.perf_counter()
        chunks += len(chunk_blocks(str(path), blocks, 200, 40))
        chunk_seconds += time.perf_counter() - begin
    total = time.perf_counter() - started - chunk_seconds
    # Which files' own reader raised (parse fell back to plain text for them): parsed again, untimed.
    for path, text in texts:
        reader = _reader(path.suffix)
        if reader is None:
            continue
        try:
            reader(text)
        except Exception as error:
            failed.append(f"{path.relative_to(args.folder)}: {type(error).__name__}")
    size = sum(stats["bytes"] for stats in per_suffix.values())
    result = {
        "docs": args.label or str(args.folder),
        "machine": f"{platform.processor() or platform.machine()}, Python {platform.python_version()}",
        "files": len(texts),
        "megabytes": round(size / 1e6, 2),
        "parse_seconds": round(total, 2),
        "files_per_second": round(len(texts) / total, 1),
        "megabytes_per_second": round(size / 1e6 / total, 3),
        "chunk_blocks_seconds": round(chunk_seconds, 2),
        "chunks": chunks,
        "per_suffix": {
            suffix: {
                "files": int(s["files"]),
                "megabytes": round(s["bytes"] / 1e6, 2),
                "files_per_second": round(s["files"] / s["seconds"], 1),
                "megabytes_per_second": round(s["bytes"] / 1e6 / s["seconds"], 3),
            }
            for suffix, s in sorted(per_suffix.items())
        },
        "slowest": [{"file": name, "seconds": round(s, 3)} for s, name in sorted(timings, reverse=True)[:5]],
        "block_kinds": dict(kinds.most_common()),
        "reader_failures": failed,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
