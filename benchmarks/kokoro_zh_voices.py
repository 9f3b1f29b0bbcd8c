"""Which Kokoro voice, speed and text preprocessing make Chinese answers intelligible: Whisper
base (the zh profile's recognizer) CER on Kokoro's renderings of RGB-zh answer sentences.

    PYTHONPATH=src python3 benchmarks/kokoro_zh_voices.py --sentences 12 --json benchmarks/results/kokoro_zh_voices.json

Sentences: the first two 8-60 character sentences of the first RGB-zh positive passages (as in
zh_speech.py). CER is pooled (total edits / total reference characters, jiwer over the list) on
`eval.metrics.normalize_cer` text: NFKC, punctuation and spaces removed, Arabic numerals written
as Chinese numerals on both sides (Kokoro reads "2019" as 二零一九; Whisper writes it back as
digits), the usual Mandarin CER normalisation. Each configuration is "voice@speed", optionally
followed by "/cN" (cut sentences longer than N characters at clause punctuation, the synthesizer's
`clause_chars`) and "/nolatin" (Latin words left to misaki, which drops most letters). The
native Mandarin styles (zf_*, zm_*) need `voicerag voices --install` first (user cache)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jiwer
import numpy as np
from zh_speech import rows, zh_answers  # the answers zh_speech.py renders (benchmarks/ is on sys.path)

from voicerag_cli.audio.io import resample
from voicerag_cli.config import load_settings
from voicerag_cli.eval.metrics import normalize_cer
from voicerag_cli.models.kokoro import GAP_S, SAMPLE_RATE
from voicerag_cli.registry import Registry

DEFAULT_GRID = [
    "jf_alpha@1.0",
    "jf_gongitsune@1.0",
    "jf_nezumi@1.0",
    "jf_tebukuro@1.0",
    "jm_kumo@1.0",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=12)
    parser.add_argument("--skip", type=int, default=0, help="start after this many sentences (a held-out set)")
    parser.add_argument("--grid", nargs="*", default=DEFAULT_GRID, help="voice@speed entries")
    parser.add_argument("--beam-size", type=int, default=None, help="override the zh profile's asr.beam_size")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    overrides = {} if args.beam_size is None else {"asr.beam_size": args.beam_size}
    asr = Registry(load_settings(None, profile="zh", overrides=overrides)).asr()
    kokoro = Registry(load_settings(None, overrides={"models.tts": "kokoro"})).tts()
    next(kokoro.stream("你好。"))  # loads the Mandarin G2P (jieba) outside the timings
    texts = zh_answers(rows(sys.maxsize), args.sentences + args.skip)[args.skip :]
    refs = [normalize_cer(t) for t in texts]
    results = []
    for entry in args.grid:
        spec, *flags = entry.split("/")
        voice, _, speed = spec.partition("@")
        kokoro.clause_chars = next((int(f[1:]) for f in flags if f.startswith("c")), 0)
        kokoro.read_latin = "nolatin" not in flags
        hyps, render_s, audio_s, firsts = [], 0.0, 0.0, []
        for text in texts:
            started = time.perf_counter()
            pieces = []
            for piece in kokoro.stream(text, voice, float(speed or 1.0)):
                pieces.append(piece)
                if len(pieces) == 1:  # what a sentence-streaming player waits for
                    firsts.append(time.perf_counter() - started)
            render_s += time.perf_counter() - started
            gap = np.zeros(int(GAP_S * SAMPLE_RATE), dtype=np.float32)
            samples = np.concatenate([x for piece in pieces for x in (piece, gap)])  # as synthesize() writes
            audio_s += sum(piece.size for piece in pieces) / SAMPLE_RATE  # speech only, gaps aside
            hyps.append(normalize_cer(asr.transcribe(resample(samples, 24_000, 16_000), 16_000).text))
        row = {
            "config": entry,
            "cer": round(float(jiwer.cer(refs, [h or " " for h in hyps])), 4),
            "rtf": round(render_s / audio_s, 3),
            "ttfa_s_median": round(float(np.median(firsts)), 2),
            "example": [refs[0], hyps[0]],
        }
        results.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
        if args.json:  # after every row: a long sweep stopped midway keeps what it measured
            payload = {"sentences": len(texts), "skip": args.skip, "beam_size": asr.beam_size, "results": results}
            args.json.write_text(json.dumps(payload, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
