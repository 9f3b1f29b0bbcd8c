#!/usr/bin/env python3
"""What checking the bundled model files against their pins costs (models/pinned.py).

1. In this process: the default models' bundles (MiniLM, Whisper tiny.en, the reader, the speech
   head) verified with an empty stamps folder (every file hashed: a first start) and then again
   (stamps only: every later start), N times each.
2. Warm `voicerag ask q.wav` and `voicerag ask --text` as new processes, this tree against a
   baseline source tree (e.g. main before the pins, which hashed the reader on every start),
   interleaved in the same run on one index and one cache.

    python3 benchmarks/model_checks.py --baseline /work/main/src [-n 7] [--out FILE]
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from voicerag_cli.models.bundled import MINILM, READER, SPEECH_HEAD, WHISPER_TINY_EN  # noqa: E402
from voicerag_cli.models.pinned import verified_folder  # noqa: E402

QUESTION = "Who won a Nobel prize for decoding the honey bee dance?"
DEFAULT_BUNDLES = (MINILM, WHISPER_TINY_EN, READER, SPEECH_HEAD)


def check_ms(stamps: Path) -> float:
    started = time.perf_counter()
    for bundle in DEFAULT_BUNDLES:
        verified_folder(bundle, stamps)
    return (time.perf_counter() - started) * 1000


def in_process(folder: Path, runs: int) -> dict[str, object]:
    cold = [check_ms(folder / f"cold-{n}") for n in range(runs)]
    check_ms(folder / "warm")
    warm = [check_ms(folder / "warm") for _ in range(runs)]
    files = sum(len(b.files) for b in DEFAULT_BUNDLES)
    megabytes = sum(p.size for b in DEFAULT_BUNDLES for p in b.files) / 1e6
    return {
        "files": files,
        "megabytes": round(megabytes, 1),
        "first_start_ms_median": round(statistics.median(cold), 1),
        "later_start_ms_median": round(statistics.median(warm), 2),
    }


def wall_ms(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, env=env, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed: {done.stderr.decode(errors='replace')[-400:]}")
    return (time.perf_counter() - started) * 1000


def end_to_end(folder: Path, baseline: Path, runs: int) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICERAG_")}
    env.update(
        VOICERAG_DATA_DIR=str(folder / "data"),
        VOICERAG_CACHE_DIR=str(folder / "cache"),
        VOICERAG_CONFIG=str(folder / "empty.toml"),
        HF_HUB_OFFLINE="1",
    )
    (folder / "empty.toml").write_text("", encoding="utf-8")
    trees = {"baseline": baseline, "this tree": REPO / "src"}
    wav = folder / "question.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), QUESTION], check=True, capture_output=True)
    voicerag = [sys.executable, "-m", "voicerag_cli"]
    first = dict(env, PYTHONPATH=str(trees["this tree"]))
    subprocess.run([*voicerag, "index", str(REPO / "examples" / "docs")], env=first, check=True, capture_output=True)
    commands = {"ask q.wav": [*voicerag, "ask", str(wav)], "ask --text": [*voicerag, "ask", "--text", QUESTION]}
    times: dict[str, list[float]] = {f"{c} · {t}": [] for c in commands for t in trees}
    for tree in trees.values():  # warm-up: stamps written, file system cache, .pyc files
        for command in commands.values():
            wall_ms(command, dict(env, PYTHONPATH=str(tree)))
    for _ in range(runs):
        for command_name, command in commands.items():
            for tree_name, tree in trees.items():
                times[f"{command_name} · {tree_name}"].append(wall_ms(command, dict(env, PYTHONPATH=str(tree))))
    medians = {name: round(statistics.median(values), 1) for name, values in times.items()}
    ratios = {c: round(medians[f"{c} · this tree"] / medians[f"{c} · baseline"], 3) for c in commands}
    return {"median_ms": medians, "ratio_this_tree_to_baseline": ratios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="a source tree (its src/) to compare with")
    parser.add_argument("-n", type=int, default=7)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="voicerag-checks-") as tmp:
        result = {
            "in_process": in_process(Path(tmp) / "stamps", args.n),
            "warm_processes": end_to_end(Path(tmp), args.baseline.resolve(), args.n),
            "baseline": str(args.baseline),
            "runs": args.n,
            "load_average_before": load_before,
            "load_average_after": os.getloadavg()[0],
            "cores": os.cpu_count(),
        }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
