"""Compare the offline ASR candidates that ship inside PyPI wheels on spoken RGB-en questions:
Whisper tiny.en (faster-whisper/CTranslate2, the default) vs pocketsphinx's en-US model.
Prints WER, mean seconds per question, and ratios against the default, all in one process.

    pip install pocketsphinx   # only for this comparison; not a dependency of voicerag
    python benchmarks/asr_candidates.py --limit 30
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from voicerag_cli.audio.io import read_audio
from voicerag_cli.config import Settings
from voicerag_cli.eval.metrics import normalize_answer
from voicerag_cli.models.espeak import create as create_tts
from voicerag_cli.models.whisper_ct2 import create as create_whisper

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "rgb" / "en_fact.json"


def pocketsphinx_transcriber():  # type: ignore[no-untyped-def]
    from pocketsphinx import Decoder

    decoder = Decoder(samprate=16000, loglevel="FATAL")

    def transcribe(samples: np.ndarray) -> str:
        pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        return hyp.hypstr if hyp else ""

    return transcribe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--limit", type=int, default=30)
    args = parser.parse_args()

    import jiwer

    questions = [json.loads(line)["query"] for line in args.data.open(encoding="utf-8")][: args.limit]
    settings = Settings()
    tts = create_tts(settings, None)
    whisper = create_whisper(settings, None)
    candidates = {"whisper-tiny.en (default)": lambda s: whisper.transcribe(s, 16000).text}
    try:
        candidates["pocketsphinx en-us"] = pocketsphinx_transcriber()
    except ImportError:
        print("pocketsphinx not installed: pip install pocketsphinx")

    with tempfile.TemporaryDirectory() as tmp:
        clips = []
        for i, question in enumerate(questions):
            path = tts.synthesize(question, Path(tmp) / f"{i}.wav", voice="en-us", rate=160)
            clips.append(read_audio(path).samples)
        results = {}
        for name, transcribe in candidates.items():
            transcribe(clips[0])  # warm-up
            started = time.perf_counter()
            hypotheses = [transcribe(clip) for clip in clips]
            seconds = (time.perf_counter() - started) / len(clips)
            wer = jiwer.wer([normalize_answer(q) for q in questions], [normalize_answer(h) or "-" for h in hypotheses])
            results[name] = (wer, seconds)
    base_wer, base_s = next(iter(results.values()))
    print(f"{len(questions)} RGB-en questions spoken by espeak-ng en-us, 160 wpm")
    print(f"{'backend':28} {'WER':>6} {'s/question':>11} {'WER ratio':>10} {'time ratio':>11}")
    for name, (wer, seconds) in results.items():
        print(f"{name:28} {wer:6.3f} {seconds:11.3f} {wer / base_wer:10.2f} {seconds / base_s:11.2f}")


if __name__ == "__main__":
    main()
