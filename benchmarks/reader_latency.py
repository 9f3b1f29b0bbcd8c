"""Time the reader on 8 passages of about 200 tokens (onnxruntime int8, 2 intra-op threads).

PYTHONPATH=src python3 benchmarks/reader_latency.py   ->  benchmarks/results/reader_latency.json
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

from voicerag_cli.models.reader import load_reader
from voicerag_cli.models.reader.reader import MODEL_PATH

SENTENCES = [
    "The worker process reads its settings from the configuration file at start-up.",
    "Set the timeout option to the number of seconds a request may take before it is cancelled.",
    "When the queue is full, new tasks wait until a slot frees up or the caller gives up.",
    "Each connection pool keeps at most ten idle connections, which are closed after five minutes.",
    "Environment variables override values from the file, and command line flags override both.",
    "Logs go to standard error unless a log file is named with the --log-file option.",
]


def passage(i: int, tokens: int = 200) -> str:
    tok = load_reader()._tok
    words: list[str] = []
    k = i
    while len(tok.encode(" ".join(words), add_special_tokens=False).ids) < tokens:
        words.extend(SENTENCES[k % len(SENTENCES)].split())
        k += 1
    text = " ".join(words)
    while len(tok.encode(text, add_special_tokens=False).ids) > tokens:
        text = text.rsplit(" ", 1)[0]
    return text


def main(runs: int = 20) -> dict:
    reader = load_reader()
    passages = [passage(i) for i in range(8)]
    question = "How long may a request take before it is cancelled?"
    for _ in range(3):
        reader.read(question, passages)
    times = []
    load_before = os.getloadavg()
    for _ in range(runs):
        t = time.perf_counter()
        reader.read(question, passages)
        times.append((time.perf_counter() - t) * 1000)
    result = {
        "what": "Reader.read(question, 8 passages x 200 tokens): tokenise + one int8 onnxruntime pass, 2 intra-op threads",
        "model_bytes": MODEL_PATH.stat().st_size,
        "passage_tokens": [len(reader._tok.encode(p, add_special_tokens=False).ids) for p in passages],
        "runs": runs,
        "median_ms": round(statistics.median(times), 1),
        "min_ms": round(min(times), 1),
        "max_ms": round(max(times), 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "onnxruntime": __import__("onnxruntime").__version__,
    }
    out = Path(__file__).parent / "results" / "reader_latency.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
