"""Whole `ask` latency per stage on the embedded default, cold and warm.

Builds the demo index (examples/docs) in a temp data dir and speaks `QUESTIONS` with
espeak-ng. Then:

- cold, in a fresh interpreter (a child process): import time, each model's load time
  (registry.load_seconds: asr, text embedder, generator), and the stages of the first
  question (its first calls pay one-off warm-up costs);
- warm, in that same process: the median of each stage over the remaining questions, repeated;
- the CLI as a user runs it: wall time of `voicerag ask q.wav --json` in a new process
  (everything included: start-up, model loads, the question).

    python benchmarks/ask_latency.py [--repeats 3] [--store milvus-lite] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "Who built the running machine, and in which city?",
    "Which planet has the tallest volcano in the solar system?",
    "How do honey bees tell each other where the flowers are?",
    "Through which lake does the Rhine flow?",
    "What did John Boyd Dunlop patent in 1888?",
]


def child(data_dir: Path, wavs: list[Path], repeats: int) -> dict[str, Any]:
    """Runs in a fresh interpreter: everything from the first import is cold."""
    started = time.perf_counter()
    from voicerag_cli.audio.io import read_audio
    from voicerag_cli.config import load_settings
    from voicerag_cli.index.base import parse_store
    from voicerag_cli.index.selection import open_store
    from voicerag_cli.paths import indexes_root
    from voicerag_cli.pipeline.ask import AskPipeline
    from voicerag_cli.registry import Registry

    import_s = time.perf_counter() - started
    settings = load_settings(overrides={"paths.data_dir": str(data_dir)})
    registry = Registry(settings)
    opened = time.perf_counter()
    reader = open_store(parse_store(settings.index.store), indexes_root(data_dir)).open(settings.index.name)
    open_index_s = time.perf_counter() - opened
    pipeline = AskPipeline(registry, reader, settings.ask.k, settings.index.hnsw_ef_search)
    for role in ("asr", "text_embedder", "generator"):
        registry.get(role)
    loads = dict(registry.load_seconds)

    def ask(path: Path) -> dict[str, float]:
        read = time.perf_counter()
        clip = read_audio(str(path))
        read_ms = (time.perf_counter() - read) * 1000
        result = pipeline.ask_audio(clip, "asr")
        return {"read_audio": read_ms, **result.timings_ms}

    first = ask(wavs[0])
    warm: dict[str, list[float]] = {}
    for _ in range(repeats):
        for path in wavs[1:]:
            for stage, ms in ask(path).items():
                warm.setdefault(stage, []).append(ms)
    return {
        "import_s": round(import_s, 3),
        "open_index_s": round(open_index_s, 3),
        "model_load_s": {role: round(s, 3) for role, s in loads.items()},
        "first_question_ms": {stage: round(ms, 1) for stage, ms in first.items()},
        "warm_median_ms": {stage: round(statistics.median(v), 1) for stage, v in warm.items()},
        "warm_questions": len(warm.get("asr", [])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--store", choices=["hnswlib", "milvus-lite"], default="hnswlib")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # internal: the cold process
    args = parser.parse_args()
    if args.child:
        spec = json.loads(args.child.read_text(encoding="utf-8"))
        print(json.dumps(child(Path(spec["data_dir"]), [Path(p) for p in spec["wavs"]], spec["repeats"])))
        return

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data_dir = tmp / "data"
        env = {**os.environ, "VOICERAG_DATA_DIR": str(data_dir), "VOICERAG_CONFIG": os.devnull}
        if args.store == "milvus-lite":
            env["VOICERAG_INDEX__STORE"] = f"milvus-lite:{tmp / 'idx.db'}"
        cli = [sys.executable, "-m", "voicerag_cli"]
        subprocess.run(
            [*cli, "index", str(REPO / "examples" / "docs"), "--json"], env=env, check=True, capture_output=True
        )
        wavs = []
        for i, question in enumerate(QUESTIONS):
            wav = tmp / f"q{i}.wav"
            subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), question], check=True)
            wavs.append(wav)
        spec = tmp / "child.json"
        spec.write_text(
            json.dumps({"data_dir": str(data_dir), "wavs": [str(w) for w in wavs], "repeats": args.repeats})
        )
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(spec)], env=env, check=True, capture_output=True, text=True
        )
        result: dict[str, Any] = {"store": args.store, **json.loads(done.stdout.strip().splitlines()[-1])}

        walls = []
        for wav in wavs[:2]:
            started = time.perf_counter()
            subprocess.run([*cli, "ask", str(wav), "--json"], env=env, check=True, capture_output=True)
            walls.append(time.perf_counter() - started)
        result["cli_ask_wall_s"] = [round(w, 2) for w in walls]

    print(f"  cold: import {result['import_s']} s, model loads {result['model_load_s']} s")
    print(f"  first question (ms): {result['first_question_ms']}")
    print(f"  warm median (ms):    {result['warm_median_ms']}")
    print(f"  `voicerag ask q.wav` in a new process: {result['cli_ask_wall_s']} s")
    print(json.dumps(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
