#!/usr/bin/env python3
"""Cold start: `voicerag --help`, `voicerag ask q.wav` and `voicerag ask --text` against a bare
interpreter (`python -c pass`), each a new process, in the same run.

Sets up its own data dir in a temporary folder (examples/docs indexed with the embedded default)
and a ~3 s spoken question (espeak-ng). Every command runs once to warm the file-system cache,
then N times, interleaved; prints the median and minimum wall time and writes them as JSON with
--out. Also lists which heavy modules each command imports (python -X importtime).

    python3 benchmarks/startup.py [-n 7] [--out benchmarks/results/startup.json]
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
QUESTION = "Who won a Nobel prize for decoding the honey bee dance?"
HEAVY = ("torch", "transformers", "sentence_transformers", "sklearn", "onnxruntime", "faster_whisper", "ctranslate2")


def voicerag() -> list[str]:
    # The console script next to this interpreter (what `pip install` puts on PATH), not a
    # version-manager shim that adds its own start-up; else the module.
    script = Path(sys.executable).parent / "voicerag"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "voicerag_cli"]


def wall_ms(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False)
    elapsed = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.decode(errors='replace')[-500:]}")
    return elapsed


def imported(command: list[str], env: dict[str, str]) -> list[str]:
    trace = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "voicerag_cli", *command[len(voicerag()) :]],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stderr
    names = {line.rsplit("|", 1)[-1].strip() for line in trace.splitlines() if "|" in line}
    return sorted(names & set(HEAVY))


def prepare(folder: Path) -> tuple[dict[str, str], Path, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICERAG_")}
    env["VOICERAG_DATA_DIR"] = str(folder / "data")
    # Built-in defaults (the embedded models) from an empty file: a missing one is an error (exit 6).
    (folder / "empty.toml").write_text("")
    env["VOICERAG_CONFIG"] = str(folder / "empty.toml")
    env["HF_HUB_OFFLINE"] = "1"
    started = time.perf_counter()
    subprocess.run([*voicerag(), "index", str(REPO / "examples" / "docs")], env=env, check=True, capture_output=True)
    index_s = time.perf_counter() - started
    wav = folder / "question.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), QUESTION], check=True, capture_output=True)
    return env, wav, index_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=7, help="runs of each command (default 7)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    import soundfile as sf

    load_before = os.getloadavg()[0]  # the cores may be shared: say how busy they were
    with tempfile.TemporaryDirectory(prefix="voicerag-startup-") as tmp:
        env, wav, index_s = prepare(Path(tmp))
        seconds = sf.info(str(wav)).duration
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "voicerag --help": [*voicerag(), "--help"],
            "voicerag ask q.wav": [*voicerag(), "ask", str(wav)],
            "voicerag ask --text": [*voicerag(), "ask", "--text", QUESTION],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for command in commands.values():  # warm-up: file system cache, .pyc files
            wall_ms(command, env)
        for _ in range(args.n):
            for name, command in commands.items():
                times[name].append(wall_ms(command, env))
        heavy = {name: imported(command, env) for name, command in commands.items() if name.startswith("voicerag")}
        stages = json.loads(
            subprocess.run([*commands["voicerag ask q.wav"], "--json"], env=env, capture_output=True, check=True).stdout
        )["timings_ms"]

    medians = {name: statistics.median(values) for name, values in times.items()}
    bare = medians["python -c pass"]
    print(f"question: {seconds:.1f} s of espeak-ng speech; index: examples/docs ({index_s:.1f} s to build, cold)")
    for name, values in times.items():
        extra = "" if name == "python -c pass" else f"   (+{medians[name] - bare:.0f} ms over python -c pass)"
        print(f"{name:<20} median {medians[name]:7.1f} ms   min {min(values):7.1f} ms{extra}   (n={args.n})")
    print(f"ratio (median voicerag --help / median python -c pass): {medians['voicerag --help'] / bare:.2f}x")
    print(f"1-minute load average: {load_before:.1f} before, {os.getloadavg()[0]:.1f} after ({os.cpu_count()} cores)")
    print("stages of one more `ask q.wav` (ms): " + ", ".join(f"{k} {v:.0f}" for k, v in stages.items()))
    for name, modules in heavy.items():
        print(f"{name:<20} imports {', '.join(modules) or 'none'} of {', '.join(HEAVY)}")
    if args.out:
        result = {
            "python_bare_ms": round(bare, 1),
            "voicerag_help_ms": round(medians["voicerag --help"], 1),
            "ratio": round(medians["voicerag --help"] / bare, 2),
            "heavy_modules_imported": heavy["voicerag --help"],
            "ask_wav_ms": round(medians["voicerag ask q.wav"], 1),
            "ask_text_ms": round(medians["voicerag ask --text"], 1),
            "min_ms": {name: round(min(values), 1) for name, values in times.items()},
            "question_seconds": round(seconds, 2),
            "ask_wav_stages_ms": stages,
            "heavy_modules_by_command": heavy,
            "runs": args.n,
            "load_average_before": load_before,
            "load_average": os.getloadavg()[0],
        }
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
