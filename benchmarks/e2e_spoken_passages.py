"""e2e retrieval against spoken passages: each passage's first words rendered by espeak-ng and
embedded by the same distilled speech head as the question, fused with the passage's text vector.

The head maps speech into MiniLM's space with errors of its own; a passage spoken by espeak-ng
goes through the same head and picks up similar errors, so speech compared with speech can
match where speech compared with text does not. This measures that idea before it becomes an
index feature: pooled RGB-en and HotpotQA (questions as `voicerag eval` renders them: en-us/en-gb,
rates 150/175, seed 0, cached with its clips) and the shared LibriSpeech (real speech of the 5
speakers training never saw (training/speech/recordings.py `LIBRISPEECH_HELD_OUT`), each finding its own
transcript among all). Scores: `alpha * (q . text) + (1 - alpha) * (q . spoken)`, brute force over
all passages; asr (Whisper tiny.en, vectors alone) and the typed question in the same run.

    PYTHONPATH=src python3 benchmarks/e2e_spoken_passages.py --json benchmarks/results/e2e_spoken_passages.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from voicerag_cli.audio.io import read_audio, resample
from voicerag_cli.config import load_settings
from voicerag_cli.eval.datasets import load_dataset
from voicerag_cli.eval.runner import passage_key
from voicerag_cli.eval.speech import QuestionAudio, voice_plan
from voicerag_cli.paths import cache_dir
from voicerag_cli.registry import Registry

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # training/speech: the held-out speakers
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SETS = {
    "rgb-en": SHARED / "rgb" / "en_fact.json",
    "hotpot": SHARED / "hotpotqa" / "hotpot_dev_distractor_100.json",
}
LIBRISPEECH = SHARED / "speech" / "librispeech"
ALPHAS = (1.0, 0.6, 0.5, 0.4, 0.0)
MAX_S = 30.0  # the head's window


class SpokenPassages:
    """Passages' first `words` words spoken by the default TTS (espeak-ng) and embedded by the head."""

    def __init__(self, registry: Registry, words: int, voice: str, rate: int) -> None:
        self.tts, self.head = registry.tts(), registry.speech_embedder()
        self.words, self.voice, self.rate = words, voice, rate
        self.seconds = 0.0

    def embed(self, texts: list[str]) -> np.ndarray:
        started = time.perf_counter()
        out = []
        with tempfile.TemporaryDirectory() as tmp:
            for i, text in enumerate(texts):
                path = self.tts.synthesize(
                    " ".join(text.split()[: self.words]), Path(tmp) / f"{i}.wav", self.voice, self.rate
                )
                clip = read_audio(path)
                samples = resample(clip.samples, clip.sample_rate, 16_000)[: int(MAX_S * 16_000)]
                out.append(self.head.embed_speech(samples, 16_000))
        self.seconds = (time.perf_counter() - started) / max(len(texts), 1)
        return np.stack(out)


def hits(scores: np.ndarray, golds: list[set[int]], k: int) -> float:
    top = np.argsort(-scores, axis=1)[:, :k]
    return float(np.mean([bool(set(row) & gold) for row, gold in zip(top, golds, strict=True)]))


def table(queries: dict[str, np.ndarray], text_vectors: np.ndarray, spoken: np.ndarray, golds: list[set[int]]) -> dict:
    rows: dict[str, dict[str, float]] = {}
    for alpha in ALPHAS:
        scores = alpha * (queries["e2e"] @ text_vectors.T) + (1 - alpha) * (queries["e2e"] @ spoken.T)
        rows[f"e2e_alpha{alpha:g}"] = {"hit1": hits(scores, golds, 1), "hit5": hits(scores, golds, 5)}
    for mode in ("asr", "text"):
        scores = queries[mode] @ text_vectors.T
        rows[mode] = {"hit1": hits(scores, golds, 1), "hit5": hits(scores, golds, 5)}
    return rows


def pooled(name: str, registry: Registry, spoken: SpokenPassages, limit: int) -> dict:
    items = load_dataset(name, SETS[name], limit)
    texts: dict[str, str] = {}
    for item in items:
        for passage in item.passages:
            texts.setdefault(passage_key(passage), passage.text)
    keys = list(texts)
    position = {key: i for i, key in enumerate(keys)}
    golds = [{position[passage_key(p)] for p in item.passages if p.pid in item.gold_ids} for item in items]
    audio = QuestionAudio(registry, cache_dir(registry.settings.paths.cache_dir) / "eval-questions")
    plan = voice_plan([item.qid for item in items], ["en-us", "en-gb"], [150, 175], seed=0)
    clips = [read_audio(audio.path_for(item, plan[item.qid])) for item in items]
    text_embedder, head, asr = registry.text_embedder(), registry.speech_embedder(), registry.asr()
    text_vectors = text_embedder.embed_texts([texts[k] for k in keys], batch_size=64)
    queries = {
        "e2e": np.stack([head.embed_speech(c.samples, c.sample_rate) for c in clips]),
        "asr": text_embedder.embed_texts([asr.transcribe(c.samples, c.sample_rate).text for c in clips]),
        "text": text_embedder.embed_texts([item.question for item in items]),
    }
    vectors = spoken.embed([texts[k] for k in keys])
    return {"questions": len(items), "passages": len(keys), "spoken_s_per_passage": round(spoken.seconds, 3),
            **table(queries, text_vectors, vectors, golds)}  # fmt: skip


def librispeech(registry: Registry, spoken: SpokenPassages) -> dict:
    import soundfile as sf
    from training.speech.recordings import is_held_out_speaker, read_transcripts

    rows = read_transcripts(LIBRISPEECH)
    asking = [i for i, r in enumerate(rows) if is_held_out_speaker("librispeech", r.speaker)]
    clips = []
    for i in asking:
        samples, rate = sf.read(str(LIBRISPEECH / rows[i].file), dtype="float32")
        clips.append(resample(samples.reshape(len(samples), -1).mean(1), rate, 16_000))
    text_embedder, head, asr = registry.text_embedder(), registry.speech_embedder(), registry.asr()
    text_vectors = text_embedder.embed_texts([r.text for r in rows], batch_size=64)
    queries = {
        "e2e": np.stack([head.embed_speech(c, 16_000) for c in clips]),
        "asr": text_embedder.embed_texts([asr.transcribe(c, 16_000).text for c in clips]),
        "text": text_embedder.embed_texts([rows[i].text for i in asking]),
    }
    vectors = spoken.embed([r.text for r in rows])
    return {
        "queries": len(asking),
        "targets": len(rows),
        **table(queries, text_vectors, vectors, [{i} for i in asking]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="rgb-en,hotpot,librispeech")
    parser.add_argument("--limit", type=int, default=100, help="questions per pooled set")
    parser.add_argument("--words", type=int, default=30, help="a passage's first words that are spoken")
    parser.add_argument("--voice", default="en-us")
    parser.add_argument("--rate", type=int, default=165)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    registry = Registry(load_settings(None))
    spoken = SpokenPassages(registry, args.words, args.voice, args.rate)
    report: dict = {"words": args.words, "voice": args.voice, "rate": args.rate}
    for name in args.sets.split(","):
        report[name] = (
            librispeech(registry, spoken) if name == "librispeech" else pooled(name, registry, spoken, args.limit)
        )
        print(name, json.dumps(report[name]), flush=True)
        if args.json:
            args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
