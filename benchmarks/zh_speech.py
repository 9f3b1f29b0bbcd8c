"""Chinese profile on spoken questions, and Kokoro vs espeak-ng as answer voices, in one process.

    PYTHONPATH=src python3 benchmarks/zh_speech.py --questions 50 --tts-sentences 10 --json benchmarks/results/zh_speech.json

1. TTS: time to first audio (the first sentence rendered) and real-time factor (compute / audio
   seconds) for espeak-ng (English only: Debian's espeak-ng cannot read Chinese characters) and
   Kokoro (English, Chinese), over two-sentence answers; Whisper base (zh profile) CER on
   Kokoro's Chinese answers (first two sentences of RGB-zh positive passages).
2. RGB-zh retrieval, pooled: the first N questions' positive and negative passages form one
   corpus (one vector per passage, no chunking); Hit@5 = a positive among the top 5. Text
   oracle (typed question) vs asr (question spoken by Kokoro, voices rotating, transcribed by
   Whisper base with the Simplified prompt), multilingual-e5-small; MiniLM text oracle for scale.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from voicerag_cli.audio.io import read_audio
from voicerag_cli.config import load_settings
from voicerag_cli.eval.metrics import transcript_error
from voicerag_cli.models.base import embed_queries
from voicerag_cli.registry import Registry
from voicerag_cli.sentences import split_sentences

RGB_ZH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "rgb" / "zh_refine.json"
EN_ANSWERS = [
    "The Eiffel Tower is in Paris. It was completed in 1889 for the World's Fair.",
    "Photosynthesis turns light into chemical energy. Plants store it as sugar.",
    "The Great Barrier Reef lies off Queensland. It is the largest coral reef system.",
    "Mount Everest is 8849 metres high. It stands on the border of Nepal and China.",
    "The Amazon is the largest rainforest. It spans nine countries in South America.",
]
VOICES = ["jf_alpha", "jm_kumo", "jf_alpha:0.5+jm_kumo:0.5", "jf_nezumi"]


def rows(limit: int) -> list[dict]:
    with RGB_ZH.open(encoding="utf-8") as handle:
        return [json.loads(line) for line, _ in zip(handle, range(limit), strict=False)]


def tts_timing(tts, text: str, voice: str | None) -> dict[str, float]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    if hasattr(tts, "stream"):
        first, samples = None, 0
        for audio in tts.stream(text, voice):
            first = first or time.perf_counter() - started
            samples += audio.size
        seconds, audio_s = time.perf_counter() - started, samples / 24_000
    else:  # espeak writes the whole file; its first audio is the whole render (an upper bound)
        with tempfile.TemporaryDirectory() as tmp:
            path = tts.synthesize(text, Path(tmp) / "a.wav")
            seconds = time.perf_counter() - started
            clip = read_audio(path)
            audio_s = clip.samples.size / clip.sample_rate
        first = seconds
    return {"ttfa_s": first or seconds, "rtf": seconds / max(audio_s, 1e-6)}


def summarize(timings: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(float(np.median([t[key] for t in timings])), 3) for key in timings[0]}


def zh_answers(data: list[dict], n: int) -> list[str]:
    out = []
    for row in data:
        sentences = [s.text for s in split_sentences(row["positive"][0]) if 8 <= len(s.text) <= 60]
        if len(sentences) >= 2:
            out.append(sentences[0] + sentences[1])
        if len(out) == n:
            break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=50)
    parser.add_argument("--tts-sentences", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    data = rows(args.questions)
    zh = Registry(load_settings(None, profile="zh"))
    kokoro = Registry(load_settings(None, overrides={"models.tts": "kokoro"})).tts()
    espeak = Registry(load_settings(None)).tts()
    asr, e5 = zh.asr(), zh.text_embedder()
    result: dict[str, object] = {"questions": len(data)}

    # 1. voices
    en = EN_ANSWERS[: args.tts_sentences]
    zh_texts = zh_answers(data, args.tts_sentences)
    kokoro.stream("Warm up.").__next__()
    kokoro.stream("你好。").__next__()  # loads the Mandarin G2P (jieba) outside the timings
    result["tts"] = {
        "espeak_en": summarize([tts_timing(espeak, t, None) for t in en]),
        "kokoro_en": summarize([tts_timing(kokoro, t, "jf_alpha") for t in en]),
        "kokoro_zh": summarize([tts_timing(kokoro, t, "jf_alpha") for t in zh_texts]),
        "n_en": len(en),
        "n_zh": len(zh_texts),
    }
    print(json.dumps(result["tts"]), flush=True)
    refs, hyps = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i, text in enumerate(zh_texts):
            clip = read_audio(kokoro.synthesize(text, Path(tmp) / f"a{i}.wav", voice=VOICES[i % len(VOICES)]))
            refs.append(text)
            hyps.append(asr.transcribe(clip.samples, clip.sample_rate).text)
    result["kokoro_zh_answer_cer"] = round(
        float(np.mean([transcript_error(h, r)["cer"] for h, r in zip(hyps, refs, strict=True)])), 4
    )
    print("answer CER", result["kokoro_zh_answer_cer"], hyps[:2], flush=True)

    # 2. RGB-zh pooled retrieval
    passages: list[str] = []
    positive_ids: list[set[int]] = []
    seen: dict[str, int] = {}
    for row in data:
        ids = set()
        for kind in ("positive", "negative"):
            for text in row[kind]:
                index = seen.setdefault(text, len(passages))
                if index == len(passages):
                    passages.append(text)
                if kind == "positive":
                    ids.add(index)
        positive_ids.append(ids)
    started = time.perf_counter()
    matrix = e5.embed_texts(passages)
    result["passages"] = len(passages)
    result["e5_embed_s_per_passage"] = round((time.perf_counter() - started) / len(passages), 4)

    def hit5(vectors: np.ndarray, mat: np.ndarray) -> float:
        top = np.argsort(-(vectors @ mat.T), axis=1)[:, :5]
        return float(np.mean([bool(set(t.tolist()) & g) for t, g in zip(top, positive_ids, strict=True)]))

    questions = [row["query"] for row in data]
    result["hit5_text_e5"] = round(hit5(embed_queries(e5, questions), matrix), 3)
    transcripts, cers, asr_s, audio_s = [], [], 0.0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for i, question in enumerate(questions):
            clip = read_audio(kokoro.synthesize(question, Path(tmp) / f"q{i}.wav", voice=VOICES[i % len(VOICES)]))
            started = time.perf_counter()
            text = asr.transcribe(clip.samples, clip.sample_rate).text
            asr_s += time.perf_counter() - started
            audio_s += clip.samples.size / clip.sample_rate
            transcripts.append(text)
            cers.append(transcript_error(text, question)["cer"])
    result["hit5_asr_e5"] = round(hit5(embed_queries(e5, transcripts), matrix), 3)
    result["question_cer"] = round(float(np.mean(cers)), 4)
    result["asr_s_per_audio_s"] = round(asr_s / audio_s, 3)
    result["examples"] = list(zip(questions[:3], transcripts[:3], strict=True))
    print(json.dumps(result, ensure_ascii=False), flush=True)
    minilm = Registry(load_settings(None)).text_embedder()
    result["hit5_text_minilm"] = round(hit5(minilm.embed_texts(questions), minilm.embed_texts(passages)), 3)
    print(json.dumps(result, ensure_ascii=False), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
