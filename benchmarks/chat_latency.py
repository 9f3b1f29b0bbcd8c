"""End of speech -> first answer audio in `voicerag chat`, on the embedded default (CPU).

Builds the demo index in a temp dir, speaks ~5 s questions with espeak-ng, feeds each as a
conversation through the real VAD, pipeline and TTS (a virtual speaker stands in for the
device), and prints the latency breakdown per stage and its median. Baseline in the same
process: the same question through `AskPipeline.ask_audio` + TTS alone (no VAD), so the
ratio shows what the conversation loop adds.

    python benchmarks/chat_latency.py [--rag asr|e2e] [--silence-ms 500] [--index-prompt-below B | --no-index-prompt]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from voicerag_cli.audio.io import read_audio
from voicerag_cli.audio.stream import FileSource, VirtualSink
from voicerag_cli.audio.vad import SileroVad, UtteranceSegmenter, VadConfig
from voicerag_cli.config import Settings
from voicerag_cli.index.builder import build_index
from voicerag_cli.index.hnsw_store import IndexRoot
from voicerag_cli.pipeline.ask import AskPipeline
from voicerag_cli.pipeline.chat import ChatSession
from voicerag_cli.registry import Registry

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "In which city did Karl Drais build the first running machine, and in which year?",
    "Which planet has the tallest volcano in the solar system, and how high is it?",
    "Who received a share of the Nobel Prize for decoding the waggle dance of honey bees?",
    "Through which lake does the Rhine pass before it forms the border with Germany?",
    "What did John Boyd Dunlop patent in 1888, and why did it matter to cyclists?",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rag", default="asr", choices=["asr", "e2e"])
    parser.add_argument("--silence-ms", type=int, default=500)
    parser.add_argument("--index-prompt-below", type=float, help="chat.index_prompt_below (0: always decode again)")
    parser.add_argument("--no-index-prompt", action="store_true", help="asr.index_prompt off: always decode once")
    args = parser.parse_args()

    settings = Settings()
    settings = dataclasses.replace(
        settings, asr=dataclasses.replace(settings.asr, index_prompt=not args.no_index_prompt)
    )
    if args.index_prompt_below is not None:
        settings = dataclasses.replace(
            settings, chat=dataclasses.replace(settings.chat, index_prompt_below=args.index_prompt_below)
        )
    registry = Registry(settings)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        root = IndexRoot(tmp / "indexes")
        build_index(root, "demo", [REPO / "examples" / "docs"], settings.index, registry.text_embedder)
        pipeline = AskPipeline(registry, root.open("demo"), settings.ask.k, settings.index.hnsw_ef_search)
        warm = np.zeros(16_000, dtype=np.float32)
        registry.asr().transcribe(warm, 16_000) if args.rag == "asr" else registry.speech_embedder().embed_speech(
            warm, 16_000
        )
        registry.text_embedder().embed_texts(["warm up"])
        registry.tts()

        rows, baseline_ms, durations = [], [], []
        for i, question in enumerate(QUESTIONS):
            raw = tmp / f"q{i}.wav"
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), question], check=True)
            speech, rate = sf.read(str(raw), dtype="float32")
            durations.append(len(speech) / rate)
            pad = np.zeros(rate, dtype=np.float32)
            conversation = tmp / f"conv{i}.wav"
            sf.write(str(conversation), np.concatenate([pad, speech, pad, pad]), rate)

            session = ChatSession(
                pipeline,
                UtteranceSegmenter(SileroVad(), VadConfig(silence_ms=args.silence_ms)),
                VirtualSink(),
                rag=args.rag,
                save_dir=tmp / f"save{i}",
            )
            [turn] = session.run(FileSource(conversation))
            rows.append(turn)

            started = time.perf_counter()  # baseline: the same question without the conversation loop
            result = pipeline.ask_audio(read_audio(raw), args.rag, prompt_below=settings.chat.index_prompt_below)
            pipeline.speak(result, tmp / f"b{i}.wav")
            baseline_ms.append((time.perf_counter() - started) * 1000)

    stages = [
        "vad_tail",
        "asr",
        "embed_speech",
        "embed_text",
        "search_prompt",
        "asr_round2",
        "search",
        "generate",
        "tts",
    ]
    stages = [s for s in stages if any(s in t.latency_ms for t in rows)]
    gate = f"below {settings.chat.index_prompt_below:g}" if settings.asr.index_prompt else "off"
    print(
        f"voicerag chat latency · rag={args.rag} · silence_ms={args.silence_ms} · index prompt {gate} · {len(rows)} questions"
    )
    print(f"question length: {statistics.mean(durations):.1f} s on average")
    print(" ".join(f"{s:>12}" for s in [*stages, "eos->audio"]))
    for turn in rows:
        print(" ".join(f"{turn.latency_ms.get(s, 0):12.0f}" for s in stages) + f" {turn.eos_to_audio_ms:12.0f}")
    median = statistics.median(t.eos_to_audio_ms for t in rows)
    processing = statistics.median(t.latency_ms["processing"] for t in rows)
    base = statistics.median(baseline_ms)
    print(f"median end of speech -> first answer audio: {median:.0f} ms (target <= 1500 ms)")
    print(f"median processing after the VAD tail: {processing:.0f} ms; ask+tts baseline alone: {base:.0f} ms")
    print(f"ratio processing / baseline: {processing / base:.2f}")


if __name__ == "__main__":
    main()
