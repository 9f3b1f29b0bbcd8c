#!/usr/bin/env python3
"""CLI start-up time: `voicerag --help` against a bare interpreter (`python -c pass`).

Both are started N times from this process, alternating, after one warm-up run each; prints the
median and minimum wall time in ms and the ratio of the medians.

    python3 benchmarks/startup.py [-n 20]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def wall_ms(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="runs of each command (default 20)")
    args = parser.parse_args()
    installed = shutil.which("voicerag")
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "voicerag --help": [installed, "--help"] if installed else [sys.executable, "-m", "voicerag_cli", "--help"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for command in commands.values():  # warm-up: file system caches, .pyc files
        wall_ms(command)
    for _ in range(args.n):
        for name, command in commands.items():
            times[name].append(wall_ms(command))
    for name, values in times.items():
        print(f"{name:<18} median {statistics.median(values):7.1f} ms   min {min(values):7.1f} ms   (n={args.n})")
    ratio = statistics.median(times["voicerag --help"]) / statistics.median(times["python -c pass"])
    print(f"ratio (median voicerag --help / median python -c pass): {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
