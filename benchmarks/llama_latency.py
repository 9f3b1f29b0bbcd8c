"""First-token and total time of the `llama` generator with the packaged model
(Qwen2.5-Coder-1.5B-Instruct Q4_K_M, voicerag[llama]) for a typical question with 5 passages,
at 1 and 2 threads, plus three grounded questions answered once each.

Each timed run loads a fresh model, so the prompt is processed whole (llama.cpp reuses a
previous prompt's shared start, which later questions of a chat get for the system prompt).
The machine's load average is recorded around every run: the CPU is shared.

    PYTHONPATH=src python benchmarks/llama_latency.py [--repeats 2] [--out benchmarks/results/llama_latency.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from voicerag_cli.config import Settings
from voicerag_cli.models.base import Passage, Query
from voicerag_cli.models.llama.backend import LlamaGenerator
from voicerag_cli.registry import Registry

# Documentation-like passages of typical chunk length (a library's HTTP client docs).
PASSAGES = [
    Passage(
        1,
        "docs/user/advanced.rst",
        "Timeouts\n\nMost requests to external servers should have a timeout attached, in case the server is "
        "not responding in a timely manner. By default, requests do not time out unless a timeout value is set "
        "explicitly. Without a timeout, your code may hang for minutes or more. The connect timeout is the number "
        "of seconds Requests will wait for your client to establish a connection to a remote machine. If you "
        "specify a single value for the timeout, like this: r = requests.get('https://github.com', timeout=5), the "
        "timeout value will be applied to both the connect and the read timeouts. Specify a tuple if you would "
        "like to set the values separately: r = requests.get('https://github.com', timeout=(3.05, 27)).",
    ),
    Passage(
        2,
        "docs/user/quickstart.rst",
        "Make a Request\n\nMaking a request with Requests is very simple. Begin by importing the Requests module: "
        "import requests. Now, let's try to get a webpage: r = requests.get('https://api.github.com/events'). Now, "
        "we have a Response object called r. We can get all the information we need from this object. Requests' "
        "simple API means that all forms of HTTP request are as obvious. For example, this is how you make an HTTP "
        "POST request: r = requests.post('https://httpbin.org/post', data={'key': 'value'}).",
    ),
    Passage(
        3,
        "docs/user/advanced.rst",
        "Session Objects\n\nThe Session object allows you to persist certain parameters across requests. It also "
        "persists cookies across all requests made from the Session instance, and will use urllib3's connection "
        "pooling. So if you're making several requests to the same host, the underlying TCP connection will be "
        "reused, which can result in a significant performance increase. Sessions can also be used to provide "
        "default data to the request methods: s.headers.update({'x-test': 'true'}).",
    ),
    Passage(
        4,
        "docs/user/quickstart.rst",
        "Errors and Exceptions\n\nIn the event of a network problem (e.g. DNS failure, refused connection, etc), "
        "Requests will raise a ConnectionError exception. Response.raise_for_status() will raise an HTTPError if "
        "the HTTP request returned an unsuccessful status code. If a request times out, a Timeout exception is "
        "raised. If a request exceeds the configured number of maximum redirections, a TooManyRedirects exception "
        "is raised. All exceptions that Requests explicitly raises inherit from "
        "requests.exceptions.RequestException.",
    ),
    Passage(
        5,
        "docs/community/updates.rst",
        "Release History\n\n2.4.0 (2014-08-29)\n\nBehavioral Changes: Connection: keep-alive header is now sent "
        "automatically. Improvements: Support for connect timeouts! Timeout now accepts a tuple (connect, read) "
        "which is used to set individual connect and read timeouts. Allow copying of PreparedRequests without "
        "headers/cookies. Updated bundled urllib3 version. Refactored settings loading from environment.",
    ),
]
TYPICAL = "How do I set separate connect and read timeouts?"
GROUNDED = [
    "How do I set separate connect and read timeouts?",
    "What exception does Requests raise for a network problem like a DNS failure?",
    "How do I keep cookies across several requests?",
]


def load(threads: int, cache: str) -> tuple[LlamaGenerator, float]:
    settings = Settings().updated({"models.generator": "llama", "llama.threads": threads, "paths.cache_dir": cache})
    started = time.perf_counter()
    generator = Registry(settings).generator()
    assert isinstance(generator, LlamaGenerator)
    return generator, time.perf_counter() - started


def timed(generator: LlamaGenerator, question: str) -> dict[str, object]:
    before = os.getloadavg()
    answer = generator.generate(Query(question), PASSAGES)
    stats = generator.stats
    return {
        "question": question,
        "first_token_s": round((stats.first_token_ms or 0) / 1000, 2),
        "total_s": round(stats.total_ms / 1000, 2),
        "prompt_tokens": stats.prompt_tokens,
        "generated_tokens": stats.generated_tokens,
        "answer": answer.text,
        "cited": answer.cited,
        "found": answer.found,
        "loadavg_before": [round(x, 2) for x in before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cache-dir", default="", help="voicerag's cache (the joined model); empty: the user cache")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/llama_latency.json"))
    args = parser.parse_args()
    runs = []
    for repeat in range(args.repeats):
        for threads in (1, 2):
            generator, load_s = load(threads, args.cache_dir)
            run = {"threads": threads, "repeat": repeat + 1, "load_s": round(load_s, 2), **timed(generator, TYPICAL)}
            print(json.dumps(run), flush=True)
            runs.append(run)
            del generator
    generator, _ = load(1, args.cache_dir)
    grounded = []
    for question in GROUNDED:
        result = timed(generator, question)
        print(json.dumps(result), flush=True)
        grounded.append(result)
    summary = {
        str(threads): {
            key: sorted(float(r[key]) for r in runs if r["threads"] == threads) for key in ("first_token_s", "total_s")
        }
        for threads in (1, 2)
    }
    result = {
        "model": "Qwen2.5-Coder-1.5B-Instruct Q4_K_M (voicerag[llama])",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "note": "each timed run loads the model afresh (whole prompt processed); the CPU is shared: see loadavg",
        "passages": len(PASSAGES),
        "summary_by_threads": summary,
        "runs": runs,
        "grounded_questions_1_thread": grounded,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
