"""Issue 8's benchmarks in one command: build throughput vs a bare baseline, top-5 query
latency/recall/memory/disk by index size, the `ask` stage breakdown cold and warm, and
cold start (`--help`, `ask q.wav`, `ask --text`). Each part runs in its own process (so memory and cold starts are
its own); results go to benchmarks/results/<part>.json and a summary is printed.

    python benchmarks/scale.py                        # all parts, query sizes 10k and 100k
    python benchmarks/scale.py --sizes 1000000        # the 1 M size alone (long: run it once)
    python benchmarks/scale.py --parts query --sizes 10000,100000,1000000

Query sizes not run this time are read from their stored result, when there is one, and
marked "stored" in the summary; `device_query_*.json` were measured with query_latency.py
`--threads 16` on a lent 16-core machine (the 1 M build takes hours on this shared 2-core one). Run it with `nice -n 10` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PARTS = ("build", "query", "ask", "startup")


def run(script: str, out: Path, *args: str) -> dict[str, Any]:
    print(f"== {script} {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, str(HERE / script), *args, "--out", str(out)], check=True)
    return json.loads(out.read_text(encoding="utf-8"))


def startup(out: Path) -> dict[str, Any]:
    """benchmarks/startup.py: cold --help, ask q.wav and ask --text against python -c pass."""
    return run("startup.py", out, "-n", "7")


def query_rows(sizes: list[int], ran: set[int]) -> list[str]:
    lines = [
        "| vectors | ef | p50 ms | p95 ms | recall@5 | index RSS MiB | disk MiB | build s (threads) | source |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for path in sorted(RESULTS.glob("*query_*.json"), key=lambda p: (json.loads(p.read_text())["size"], p.name)):
        r = json.loads(path.read_text(encoding="utf-8"))
        machine = "16-core lent machine" if path.name.startswith("device_") else "2-core dev machine"
        ran_now = path.name == f"query_{r['size']}.json" and r["size"] in ran
        where = f"{machine}, {'this run' if ran_now else 'stored ' + path.name}"
        for row in r["by_ef"]:
            lines.append(
                f"| {r['size']:,} (M={r['M']}) | {row['ef']} | {row['p50_ms']:.3f} | {row['p95_ms']:.3f} | "
                f"{row['recall_at_k']:.4f} | {r['index_rss_mib']:.0f} | {r['disk_mib']:.0f} | "
                f"{r['build_s']} ({r['build_threads']}) | {where} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated: {', '.join(PARTS)}")
    parser.add_argument("--sizes", default="10000,100000", help="query benchmark sizes to run now")
    parser.add_argument("--files", default="60", help="build benchmark: number of files")
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    RESULTS.mkdir(parents=True, exist_ok=True)
    summary: list[str] = []

    if "build" in parts:
        b = run("build_throughput.py", RESULTS / "build.json", "--files", args.files)
        summary.append(
            f"build: {b['chunks']} chunks from {b['files']} files: voicerag {b['voicerag_chunks_per_s']} chunks/s, "
            f"bare embed+add_items {b['baseline_chunks_per_s']} chunks/s, ratio {b['ratio']:.2f} (target >= 0.90)"
        )
    if "query" in parts:
        for size in sizes:
            run("query_latency.py", RESULTS / f"query_{size}.json", "--size", str(size))
        stored = {json.loads(p.read_text())["size"] for p in RESULTS.glob("query_*.json")}
        summary += query_rows(sorted(set(sizes) | stored), set(sizes))
    if "ask" in parts:
        a = run("ask_latency.py", RESULTS / "ask.json")
        summary.append(
            f"ask (cold): import {a['import_s']} s, model loads {a['model_load_s']} s, "
            f"first question {a['first_question_ms']} ms"
        )
        summary.append(f"ask (warm median): {a['warm_median_ms']} ms; CLI wall per question {a['cli_ask_wall_s']} s")
    if "startup" in parts:
        s = startup(RESULTS / "startup.json")
        summary.append(
            f"startup: voicerag --help median {s['voicerag_help_ms']} ms (python -c pass {s['python_bare_ms']} ms, "
            f"ratio {s['ratio']}); heavy modules imported by --help: {s['heavy_modules_imported'] or 'none'}"
        )
        summary.append(f"startup: cold ask q.wav {s['ask_wav_ms']} ms, ask --text {s['ask_text_ms']} ms (medians)")
    print("\n".join(["", "== summary", *summary]))


if __name__ == "__main__":
    main()
