#!/usr/bin/env python3
"""Real-docs trial: click 8.1.7's docs/ folder (pinned PyPI sdist, sha256 checked, cached under
~/.cache/voicerag-bench), 12 spoken questions (espeak-ng) from docs_trial.json, asked through the
real CLI (`voicerag index`, `voicerag ask q.wav --json`, default settings, or `--set` ones) with --rag
asr and e2e, and `text` (the typed question: the answerer without speech recognition).

Reports per question: answering file in the top 5, useful answer (every key fact present: one of
its alternatives, case-insensitive), and the answer text, so a human can check.

    python3 benchmarks/docs_trial.py [--rag asr e2e] [--out benchmarks/results/docs_trial.json]

`--trial benchmarks/docs_trial_flask.json` (or `docs_trial_pytest.json`) runs a held-out trial
the same way: Flask's or pytest's docs, questions written before any of their answers was seen.
`--voice kokoro:af_heart` speaks the questions with a Kokoro style (`voicerag voices --install`
for the native English ones) instead of espeak-ng: a voice closer to a person's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "voicerag-bench"


def voicerag() -> list[str]:
    script = Path(sys.executable).parent / "voicerag"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "voicerag_cli"]


def docs_folder(package: dict) -> Path:
    """The sdist's docs/ folder, downloaded once and checked against the pinned sha256."""
    CACHE.mkdir(parents=True, exist_ok=True)
    sdist = CACHE / package["sdist"]
    if not sdist.is_file():
        # pip, the ordinary client: it finds the sdist on whatever index pip is configured for
        pin = f"{package['name']}=={package['version']}"
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", pin, "-d", str(CACHE)],
            check=True,
        )
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != package["sha256"]:
        sys.exit(f"{sdist}: sha256 {digest} is not the pinned {package['sha256']}")
    docs = CACHE / package["docs"]
    if not docs.is_dir():
        with tarfile.open(sdist) as tar:
            tar.extractall(
                CACHE, members=[m for m in tar.getmembers() if m.name.startswith(package["docs"])], filter="data"
            )
    return docs


MAX_WORDS = 150


def norm(text: str) -> str:
    return " ".join(text.lower().split())


def useful(answer: str, key_facts: list[list[str]]) -> bool:
    """The rule fixed with the questions: every key fact has one alternative in the answer."""
    text = norm(answer)
    return all(any(norm(alt) in text for alt in alternatives) for alternatives in key_facts)


def settings_toml(assignments: list[str]) -> str:
    """`section.key=value` pairs (value in TOML syntax) as a config file's text."""
    sections: dict[str, list[str]] = {}
    for item in assignments:
        key, _, value = item.partition("=")
        section, _, name = key.strip().rpartition(".")
        sections.setdefault(section, []).append(f"{name} = {value.strip()}")
    return "".join(f"[{section}]\n" + "\n".join(lines) + "\n" for section, lines in sections.items())


def question_speaker(voice: str) -> Callable[[str, Path], object]:
    """What writes a question's WAV: espeak-ng, or the project's Kokoro synthesizer in a style."""
    if voice == "espeak":

        def espeak(text: str, wav: Path) -> object:
            return subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), text], check=True, capture_output=True)

        return espeak
    from voicerag_cli.config import Settings
    from voicerag_cli.models import kokoro
    from voicerag_cli.registry import Registry

    synthesizer = kokoro.create(Settings(), Registry(Settings()))
    style = voice.removeprefix("kokoro:")
    return lambda text, wav: synthesizer.synthesize(text, wav, voice=style)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rag", nargs="+", default=["asr", "e2e"], help="asr, e2e, or text (the typed question)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=TOML", help="a setting, e.g. asr.index_prompt=true"
    )
    parser.add_argument("--trial", type=Path, default=HERE / "docs_trial.json", help="the package and questions")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--voice", default="espeak", help="espeak (espeak-ng en-us) or kokoro:STYLE")
    parser.add_argument("--generator", help="ask's --generator (default: the configured one, extractive)")
    args = parser.parse_args()
    speak = question_speaker(args.voice)
    spec = json.loads(args.trial.read_text())
    docs = docs_folder(spec["package"])
    generator = ["--generator", args.generator] if args.generator else []
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="voicerag-trial-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOICERAG_")}
        env.update(VOICERAG_DATA_DIR=f"{tmp}/data", VOICERAG_CONFIG=f"{tmp}/empty.toml", HF_HUB_OFFLINE="1")
        # built-in defaults (a missing file is an error now), and the --set settings
        Path(f"{tmp}/empty.toml").write_text(settings_toml(args.set))
        subprocess.run([*voicerag(), "index", str(docs)], env=env, check=True, capture_output=True)
        for rag in args.rag:
            rows = results.setdefault(rag, [])
            for q in spec["questions"]:
                if rag == "text":
                    question = ["--text", q["question"]]
                else:
                    wav = Path(tmp) / f"q{q['id']}.wav"
                    speak(q["question"], wav)
                    question = [str(wav), "--rag", rag]
                done = subprocess.run(
                    [*voicerag(), "ask", *question, "--json", *generator], env=env, capture_output=True, text=True
                )
                if done.returncode != 0:
                    rows.append({"id": q["id"], "error": done.stderr.strip()[-300:], "found": False, "useful": False})
                    continue
                reply = json.loads(done.stdout.splitlines()[-1])
                sources = [Path(str(s.get("path") or s.get("source") or "")).name for s in reply.get("sources", [])][:5]
                answer = str(reply.get("answer") or "")
                rows.append(
                    {
                        "id": q["id"],
                        "question": q["question"],
                        "transcript": reply.get("transcript"),
                        "top5": sources,
                        "found": any(f in sources for f in q["files"]),
                        # the key-term rule, for an answer a person would read: at most MAX_WORDS words
                        "useful": useful(answer, q["key_facts"]) and len(answer.split()) <= MAX_WORDS,
                        "key_terms": useful(answer, q["key_facts"]),
                        "words": len(answer.split()),
                        "answer": answer,
                        # what the sources table shows for each source: the sentence cited from it
                        "quotes": [s.get("quote") for s in reply.get("sources", [])][:5],
                    }
                )
    for rag, rows in results.items():
        print(
            f"== rag {rag}: found in top 5 {sum(r['found'] for r in rows)}/{len(rows)}, "
            f"useful {sum(r['useful'] for r in rows)}/{len(rows)}"
        )
        for r in rows:
            print(f"[{r['id']:>2}] found={r['found']} useful={r['useful']} top5={r.get('top5')}")
            print(f"     Q: {r.get('question')}  (heard: {r.get('transcript')})")
            print(f"     A: {r.get('answer') or r.get('error')}")
    if args.out:
        summary = {
            rag: {"n": len(rows), "found": sum(r["found"] for r in rows), "useful": sum(r["useful"] for r in rows)}
            for rag, rows in results.items()
        }
        args.out.write_text(json.dumps({"summary": summary, **results}, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
