"""Spoken-question retrieval, pooled: Hit@5 of the asr path (question spoken by a TTS voice,
transcribed) against the text oracle (the typed question), per text embedder and per ASR
variant, with every miss listed for diagnosis. One process, so the rows compare directly.

    PYTHONPATH=src python3 benchmarks/asr_retrieval.py --dataset rgb-zh --questions 50 --json benchmarks/results/asr_retrieval_rgb_zh.json
    PYTHONPATH=src python3 benchmarks/asr_retrieval.py --dataset cmrc2018 --questions 50 --json benchmarks/results/asr_retrieval_cmrc.json
    PYTHONPATH=src python3 benchmarks/asr_retrieval.py --dataset rgb-en --questions 100 --embedders minilm,e5-small --json benchmarks/results/asr_retrieval_rgb_en.json

Corpus: the candidate passages of the first N questions (after `--offset`), deduplicated by
text, one vector each (no chunking); for CMRC 2018 the first `--paragraphs` paragraphs (each question's gold is its own
paragraph). Questions are rendered by `eval.speech.QuestionAudio` (cached like `voicerag eval`),
voices rotating over `--voices` at `--rate`. ASR variants (Chinese): `zh` is the zh profile
(Whisper base, Simplified prompt, OpenCC t2s) decoding once; `zh-beam5` the same with beam search
(5); `zh-noprompt` drops the prompt and t2s; `zh-ctx` decodes again with the start of the passages
that the `zh` transcript retrieved (fused at 0.7) as Whisper's prompt, `zh-ctx0.8` only where the
first transcript's mean token log-prob is under -0.8 (`asr.index_prompt_below`, the zh profile as
`ask` runs it); English: `en` is the default Whisper tiny.en (decoding once), `en-base` Whisper
base in English. CER (Chinese) / WER is
pooled over the questions on `eval.metrics` normalisation. Rows `..._lexical<w>` retrieve as
`voicerag ask` does with `ask.lexical_weight` = w (vectors and lexical terms fused, `index.lexical`)."""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections import Counter
from pathlib import Path

import jiwer
import numpy as np

from voicerag_cli.audio.io import read_audio
from voicerag_cli.config import ZH_SIMPLIFIED_PROMPT, load_settings
from voicerag_cli.eval.datasets import load_dataset
from voicerag_cli.eval.metrics import normalize_answer, normalize_cer
from voicerag_cli.eval.speech import QuestionAudio, voice_plan
from voicerag_cli.index.lexical import hybrid_search
from voicerag_cli.index.memory import MemoryIndex
from voicerag_cli.models.base import embed_queries
from voicerag_cli.paths import cache_dir
from voicerag_cli.pipeline.ask import index_prompt, merge_rankings, needs_second_decoding
from voicerag_cli.registry import Registry

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DATA = {
    "rgb-zh": SHARED / "rgb" / "zh_refine.json",
    "rgb-en": SHARED / "rgb" / "en_fact.json",
    "cmrc2018": SHARED / "cmrc2018" / "cmrc2018_dev.json",
}
ASR_VARIANTS = {
    "zh": {"models.asr": "whisper-base", "asr.language": "zh", "asr.initial_prompt": ZH_SIMPLIFIED_PROMPT,
           "asr.simplified": True},
    "zh-beam5": {"models.asr": "whisper-base", "asr.language": "zh", "asr.initial_prompt": ZH_SIMPLIFIED_PROMPT,
                 "asr.simplified": True, "asr.beam_size": 5},
    "zh-noprompt": {"models.asr": "whisper-base", "asr.language": "zh", "asr.initial_prompt": "",
                    "asr.simplified": False},
    "en": {"models.asr": "whisper-tiny-en", "asr.language": "en"},
    "en-base": {"models.asr": "whisper-base", "asr.language": "en"},
}  # fmt: skip
EMBEDDERS = {"e5-small": {"models.text_embedder": "e5-small"}, "minilm": {"models.text_embedder": "minilm"}}
BENCH_CACHE = Path.home() / ".cache" / "voicerag-bench"


def pooled_corpus(
    dataset: str, questions: int, paragraphs: int, offset: int = 0
) -> tuple[list, list[str], list[set[int]]]:
    """`questions` items after the first `offset`, the pooled passage texts and each item's gold indices."""
    if dataset == "cmrc2018":
        every = load_dataset(dataset, DATA[dataset])
        pids = list(dict.fromkeys(item.passages[0].pid for item in every))[:paragraphs]
        keep = set(pids)
        items = [item for item in every if item.passages[0].pid in keep][offset : offset + questions]
        by_pid = {item.passages[0].pid: item.passages[0].text for item in every}
        texts = [by_pid[pid] for pid in pids]
        return items, texts, [{pids.index(item.passages[0].pid)} for item in items]
    items = load_dataset(dataset, DATA[dataset], offset + questions)[offset:]
    index: dict[str, int] = {}
    golds = []
    for item in items:
        gold = set()
        for passage in item.passages:
            position = index.setdefault(passage.text, len(index))
            if passage.pid in item.gold_ids:
                gold.add(position)
        golds.append(gold)
    return items, list(index), golds


def embed_passages(embedder, texts: list[str]) -> tuple[np.ndarray, float]:  # type: ignore[no-untyped-def]
    """Passage vectors, cached on disk by (space, texts): the slow part, identical across runs."""
    digest = hashlib.sha1("\0".join([embedder.space.space_id, *texts]).encode()).hexdigest()[:20]
    path = BENCH_CACHE / "passage-vectors" / f"{digest}.npy"
    if path.exists():
        return np.load(path), float("nan")
    started = time.perf_counter()
    matrix = embedder.embed_texts(texts)
    seconds = (time.perf_counter() - started) / len(texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, matrix)
    return matrix, seconds


def ranks(vectors: np.ndarray, matrix: np.ndarray, golds: list[set[int]]) -> list[int]:
    """1-based rank of each question's best gold passage."""
    order = np.argsort(-(vectors @ matrix.T), axis=1)
    return [int(min(np.flatnonzero(np.isin(row, list(gold))))) + 1 for row, gold in zip(order, golds, strict=True)]


def fused_hits(
    index: MemoryIndex,
    queries: list[str],
    vectors: np.ndarray,
    golds: list[set[int]],
    weight: float,
    earlier: tuple[list[str], np.ndarray] | None = None,
) -> list[bool]:
    """Gold in the top 5 as `voicerag ask` retrieves (`index.lexical.hybrid_search`): the vectors
    and the lexical terms fused at `ask.lexical_weight` = weight (0: vectors alone); `earlier`:
    the first decoding's transcripts and vectors, whose rankings are merged in as `ask` merges
    them after a second decoding (`pipeline.ask.merge_rankings`, depth 10 as `voicerag eval`)."""
    ef = max(128, len(index))
    found = [hybrid_search(index, v, q, 10, ef, weight) for q, v in zip(queries, vectors, strict=True)]
    if earlier is not None:
        first = [hybrid_search(index, v, q, 10, ef, weight) for q, v in zip(*earlier, strict=True)]
        found = [merge_rankings(now, before) for now, before in zip(found, first, strict=True)]
    return [bool({p.chunk_id for p in ps[:5]} & gold) for ps, gold in zip(found, golds, strict=True)]


def error_rate(refs: list[str], hyps: list[str], chinese: bool) -> float:
    if chinese:
        return float(jiwer.cer([normalize_cer(r) for r in refs], [normalize_cer(h) or " " for h in hyps]))
    return float(jiwer.wer([normalize_answer(r) for r in refs], [normalize_answer(h) or " " for h in hyps]))


def context_pass(clips: list, first: list, embedder, index: MemoryIndex, weight: float, below: float) -> list[str]:  # type: ignore[no-untyped-def]
    """A second decoding prompted with the start of the passages that the first transcript
    retrieved (fused, as `ask` retrieves): `asr.index_prompt` as `voicerag ask` runs it, only for
    a first transcript whose mean token log-probability is under `below` (0: every question)."""
    asr = Registry(load_settings(None, overrides=ASR_VARIANTS["zh"])).asr()
    vectors = embed_queries(embedder, [t.text for t in first])
    out = []
    for clip, transcript, vector in zip(clips, first, vectors, strict=True):
        if not needs_second_decoding(transcript, below):
            out.append(transcript.text)
            continue
        found = hybrid_search(index, vector, transcript.text, 3, max(128, len(index)), weight)
        prompt = index_prompt(ZH_SIMPLIFIED_PROMPT, [p.text for p in found])
        out.append(asr.transcribe(clip.samples, clip.sample_rate, prompt=prompt).text or transcript.text)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DATA), default="rgb-zh")
    parser.add_argument("--questions", type=int, default=50)
    parser.add_argument("--offset", type=int, default=0, help="skip the first N questions (a held-out slice)")
    parser.add_argument(
        "--lexical-weights", default="0.5,0.7", help="comma-separated ask.lexical_weight values to fuse at (0: none)"
    )
    parser.add_argument("--paragraphs", type=int, default=848, help="CMRC 2018: paragraphs pooled (848 = all)")
    parser.add_argument("--voices", help="comma-separated; default: the five Kokoro styles (zh), en-us,en-gb (en)")
    parser.add_argument("--rate", type=int, default=175, help="words per minute (Kokoro speed = rate / 170)")
    parser.add_argument("--asr", help="comma-separated ASR variants (default zh,zh-noprompt or en,en-base)")
    parser.add_argument("--embedders", default="e5-small", help="comma-separated: e5-small, minilm")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    chinese = args.dataset != "rgb-en"
    voices = args.voices or ("jf_alpha,jf_gongitsune,jf_nezumi,jf_tebukuro,jm_kumo" if chinese else "en-us,en-gb")
    variants = (args.asr or ("zh,zh-noprompt" if chinese else "en,en-base")).split(",")
    items, texts, golds = pooled_corpus(args.dataset, args.questions, args.paragraphs, args.offset)
    questions = [item.question for item in items]
    base = Registry(load_settings(None))
    audio_maker = QuestionAudio(base, cache_dir(base.settings.paths.cache_dir) / "eval-questions")
    plan = voice_plan([item.qid for item in items], voices.split(","), [args.rate], seed=0)
    clips = [read_audio(audio_maker.path_for(item, plan[item.qid])) for item in items]
    audio_s = sum(c.samples.size / c.sample_rate for c in clips)
    result: dict[str, object] = {
        "dataset": args.dataset, "questions": len(items), "offset": args.offset, "passages": len(texts),
        "voices": voices.split(","),
        "rate": args.rate, "audio_s": round(audio_s, 1),
    }  # fmt: skip
    print(json.dumps(result, ensure_ascii=False), flush=True)

    embedders, matrices = {}, {}
    for name in args.embedders.split(","):
        embedders[name] = Registry(load_settings(None, overrides=EMBEDDERS[name])).text_embedder()
        matrices[name], per_passage = embed_passages(embedders[name], texts)
        result[f"{name}_embed_s_per_passage"] = round(per_passage, 4)

    transcripts: dict[str, list[str]] = {}
    decoded: dict[str, list] = {}  # type: ignore[type-arg]
    for variant in variants:
        started = time.perf_counter()
        if variant.startswith("zh-ctx"):  # zh-ctx: every question; zh-ctx<b>: under log-prob -b
            first = next(iter(embedders))
            index = MemoryIndex("prompt", embedders[first].space)
            index.add([str(i) for i in range(len(texts))], texts, matrices[first])
            below = -float(variant.removeprefix("zh-ctx") or 0)
            transcripts[variant] = context_pass(clips, decoded["zh"], embedders[first], index, 0.7, below)
        else:
            asr = Registry(load_settings(None, overrides=ASR_VARIANTS[variant])).asr()
            decoded[variant] = [asr.transcribe(c.samples, c.sample_rate) for c in clips]
            transcripts[variant] = [t.text for t in decoded[variant]]
        result[f"asr_{variant}"] = {
            "error_rate": round(error_rate(questions, transcripts[variant], chinese), 4),
            "s_per_audio_s": round((time.perf_counter() - started) / audio_s, 3),
        }
        print(variant, json.dumps(result[f"asr_{variant}"]), flush=True)
    result["transcripts"] = transcripts

    for name, embedder in embedders.items():
        matrix = matrices[name]
        row: dict[str, object] = {}
        oracle = ranks(embed_queries(embedder, questions), matrix, golds)
        row["hit5_text"] = round(float(np.mean([r <= 5 for r in oracle])), 3)
        for variant in variants:
            spoken = ranks(embed_queries(embedder, transcripts[variant]), matrix, golds)
            row[f"hit5_asr_{variant}"] = round(float(np.mean([r <= 5 for r in spoken])), 3)
            by_voice: dict[str, list[bool]] = {}
            for item, rank in zip(items, spoken, strict=True):
                by_voice.setdefault(plan[item.qid].name, []).append(rank <= 5)
            row[f"hit5_asr_{variant}_by_voice"] = {v: round(float(np.mean(h)), 2) for v, h in by_voice.items()}
            misses = []
            for i, (text_rank, rank) in enumerate(zip(oracle, spoken, strict=True)):
                if rank > 5 >= text_rank:  # lost by speaking it: the diagnosis wants these
                    misses.append({
                        "question": questions[i], "transcript": transcripts[variant][i], "rank": rank,
                        "voice": plan[items[i].qid].name,
                        "error_rate": round(error_rate([questions[i]], [transcripts[variant][i]], chinese), 3),
                    })  # fmt: skip
            row[f"misses_{variant}"] = misses
        index = MemoryIndex(f"{args.dataset}-pooled", embedder.space)
        index.add([str(i) for i in range(len(texts))], texts, matrix)
        for label, queries in [("text", questions), *((f"asr_{v}", transcripts[v]) for v in variants)]:
            vectors = embed_queries(embedder, queries)
            # a second decoding's ranking is merged with the first's, as `ask` merges them
            earlier = (transcripts["zh"], embed_queries(embedder, transcripts["zh"])) if "ctx" in label else None
            for weight in (float(w) for w in args.lexical_weights.split(",") if w):
                hits = fused_hits(index, queries, vectors, golds, weight, earlier)
                row[f"hit5_{label}_lexical{weight:g}"] = round(float(np.mean(hits)), 3)
        result[name] = row
        print(name, json.dumps({k: v for k, v in row.items() if not k.startswith("misses")}), flush=True)
    voice_counts = Counter(plan[item.qid].name for item in items)
    result["questions_per_voice"] = dict(voice_counts)
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
