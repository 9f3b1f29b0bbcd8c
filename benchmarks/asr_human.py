"""ASR error and speed on real human speech, per bundled recognizer: CER on AISHELL (Mandarin),
WER on LibriSpeech (English), and seconds of compute per second of audio, in one process.

    PYTHONPATH=src python3 benchmarks/asr_human.py --aishell 200 --librispeech 100 --json benchmarks/results/asr_human.json

Error rates are pooled (total edits / total reference length, jiwer over the list). WER is on the
eval's normalized text (`eval.metrics.normalize_answer`); CER on `eval.metrics.normalize_cer`
(NFKC, punctuation and spaces dropped, Arabic numerals as Chinese numerals: AISHELL writes 三十二
where Whisper writes 32). whisper-base is the zh profile's recognizer (language zh + Simplified
prompt + OpenCC t2s on AISHELL, language en on LibriSpeech); `--raw` adds whisper-base on AISHELL
without prompt and t2s (Whisper's own output, partly Traditional)."""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import jiwer

from voicerag_cli.audio.io import read_audio
from voicerag_cli.config import ZH_SIMPLIFIED_PROMPT, load_settings
from voicerag_cli.eval.metrics import normalize_answer, normalize_cer
from voicerag_cli.registry import Registry

SPEECH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "speech"


def utterances(corpus: str, limit: int) -> list[tuple[Path, str]]:
    folder = SPEECH / corpus
    with (folder / "transcripts.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    rows.sort(key=lambda row: row["file"])
    # Every k-th row so the sample spans all speakers, not the first one only.
    step = max(1, len(rows) // limit)
    return [(folder / row["file"], row["transcript"]) for row in rows[::step][:limit]]


def recognizer(backend: str, language: str, prompt: str):  # type: ignore[no-untyped-def]
    # With the prompt: the zh profile exactly (prompt + OpenCC t2s); without: Whisper's raw output.
    overrides = {
        "models.asr": backend,
        "asr.language": language,
        "asr.initial_prompt": prompt,
        "asr.simplified": bool(prompt) and language == "zh",
    }
    return Registry(load_settings(None, overrides=overrides)).asr()


def run(backend: str, corpus: str, language: str, prompt: str, limit: int) -> dict[str, object]:
    asr = recognizer(backend, language, prompt)
    refs, hyps, audio_s, compute_s = [], [], 0.0, 0.0
    for path, reference in utterances(corpus, limit):
        audio = read_audio(path)
        started = time.perf_counter()
        text = asr.transcribe(audio.samples, audio.sample_rate).text
        compute_s += time.perf_counter() - started
        audio_s += len(audio.samples) / audio.sample_rate
        normalize = normalize_cer if language == "zh" else normalize_answer
        refs.append(normalize(reference))
        hyps.append(normalize(text) or " ")
    error = {"cer": jiwer.cer(refs, hyps)} if language == "zh" else {"wer": jiwer.wer(refs, hyps)}
    return {
        "asr": backend,
        "corpus": corpus,
        "n": len(refs),
        "audio_s": round(audio_s, 1),
        **{key: round(float(value), 4) for key, value in error.items()},
        "s_per_audio_s": round(compute_s / audio_s, 3),
        "example": [refs[0], hyps[0]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aishell", type=int, default=200, help="AISHELL utterances (200 = all)")
    parser.add_argument("--librispeech", type=int, default=100, help="LibriSpeech utterances (of 475; 0 skips)")
    parser.add_argument("--raw", action="store_true", help="add whisper-base on AISHELL without prompt and t2s")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--corpus", choices=["aishell", "librispeech"], help="only this corpus' rows")
    args = parser.parse_args()
    plan = [
        ("whisper-base", "aishell", "zh", ZH_SIMPLIFIED_PROMPT),
        ("whisper-tiny-en", "librispeech", "en", ""),
        ("whisper-base", "librispeech", "en", ""),
    ]
    if args.raw:  # no prompt: shows the Traditional-output problem
        plan.insert(1, ("whisper-base", "aishell", "zh", ""))
    limits = {"aishell": args.aishell, "librispeech": args.librispeech}
    results = []
    for backend, corpus, language, prompt in plan:
        if (args.corpus and corpus != args.corpus) or limits[corpus] <= 0:
            continue
        row = run(backend, corpus, language, prompt, limits[corpus])
        row["prompt"] = bool(prompt)
        print(json.dumps(row, ensure_ascii=False), flush=True)
        results.append(row)
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
