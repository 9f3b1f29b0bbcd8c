"""End-to-end speech retrieval (`--rag e2e`) vs transcription (`--rag asr`) vs the question text.

RGB-en questions (all 100, never trained on) are spoken by espeak-ng voices held out from the
speech embedder's training (training/speech/voices.py EVAL_VOICES). Passages are embedded with
the text embedder into in-memory hnswlib indexes, two ways:
  per-question: each question searches only its own candidates (positive + negative passages);
  pooled:       every question searches all RGB-en passages together.
Recall@k = a positive passage is among the top k; a "chance" row gives what a random ranking
scores (per question it is high: 3-4 positives among ~10 candidates). Query time is measured per question in the
same process: e2e = speech embedding + search; asr = Whisper transcription + text embedding +
search (the default `voicerag ask` stages). Medians and ratios against asr are printed.

A second part speaks held-out HotpotQA sentences (texts.is_held_out) with held-out voices and
reports how often a clip's query finds its own sentence among all of them (R@1, R@5), for e2e (the
speech vector) and asr (the transcript's text vector), with the median WER of the transcripts.
`--real-speech CORPUS` does the same with real human speech of ../shared/data/speech/CORPUS: the
speakers that training holds out (training/speech/recordings.py) ask, and each utterance must
find its own transcript among all of the corpus's. `--head FILE` measures another trained head
(same front-end) beside the shipped one, on the same clips.

    nice -n 10 python benchmarks/e2e_vs_asr.py --json-out /tmp/e2e_vs_asr.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # training/speech: the held-out voices and speakers, espeak-ng
RGB = ROOT.parent / "shared" / "data" / "rgb" / "en_fact.json"
HOTPOT = ROOT.parent / "shared" / "data" / "hotpotqa" / "hotpot_dev_distractor_100.json"
SPEECH = ROOT.parent / "shared" / "data" / "speech"
KS = (1, 5)
E2E_MAX_SECONDS = 30.0


def load_rgb(path: Path, limit: int) -> list[dict]:
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return items[:limit] if limit else items


def recall(ranked_positive: list[bool], k: int) -> float:
    return float(any(ranked_positive[:k]))


def rgb_items(path: Path, limit: int) -> list[dict]:
    """RGB-en: each question's candidates are its positive and negative passages."""
    return [
        {"query": item["query"], "positive": item["positive"], "candidates": item["positive"] + item["negative"]}
        for item in load_rgb(path, limit)
    ]


def hotpot_items(path: Path, limit: int) -> list[dict]:
    """HotpotQA distractor dev: 10 paragraphs per question ("Title: sentences"), the supporting
    facts' paragraphs are the positives."""
    items = []
    for item in json.loads(path.read_text(encoding="utf-8"))[: limit or None]:
        paragraphs = {title: f"{title}: {' '.join(s.strip() for s in sents)}" for title, sents in item["context"]}
        support = {title for title, _ in item["supporting_facts"]}
        items.append(
            {
                "query": item["question"],
                "positive": [paragraphs[t] for t in support if t in paragraphs],
                "candidates": list(paragraphs.values()),
            }
        )
    return items


def with_spoken(index, query: np.ndarray, spoken_rows: np.ndarray, row: dict[str, int], depth: int) -> list:  # type: ignore[no-untyped-def]
    """e2e as `AskPipeline.speech_ranked` ranks with spoken-passage vectors: the text vectors'
    top `spoken.POOL` rescored with the question's similarity to each passage's spoken vector."""
    from voicerag_cli.config import AskConfig
    from voicerag_cli.index import spoken

    pool = index.search(query, spoken.POOL, 128)
    similar = {p.chunk_id: float(spoken_rows[row[p.text]] @ query) for p in pool}
    by_id = {p.chunk_id: p for p in pool}
    order = spoken.rescore({p.chunk_id: p.score for p in pool}, similar, AskConfig().spoken_weight)
    return [by_id[i] for i in order[:depth]]


def retrieval_set(name: str, items: list[dict], speech: dict, asr, text, voices, speaker=None) -> dict:  # type: ignore[no-untyped-def]
    """Spoken questions against per-question candidates and against every passage pooled, for
    each e2e head, asr and the question text (oracle), on the same clips in one run; with a
    `speaker` (index.spoken_passages) also the shipped head against spoken-passage vectors."""
    from training.speech.espeak import speak

    from voicerag_cli.config import AskConfig
    from voicerag_cli.index.lexical import hybrid_search
    from voicerag_cli.index.memory import MemoryIndex

    lexical_weight = AskConfig().lexical_weight

    audio = [speak(item["query"], voices[i % len(voices)]) for i, item in enumerate(items)]
    all_texts: list[str] = []
    positive_of: dict[str, set[int]] = {}
    for item in items:
        for p in item["candidates"]:
            if p not in positive_of:
                positive_of[p] = set()
                all_texts.append(p)
    for qi, item in enumerate(items):
        for p in item["positive"]:
            positive_of[p].add(qi)
    vectors = text.embed_texts(all_texts, batch_size=64)
    row = {t: i for i, t in enumerate(all_texts)}
    spoken_rows = speaker.embed_spoken(all_texts) if speaker is not None else None
    pooled = MemoryIndex(f"{name}-pooled", text.space)
    pooled.add(all_texts, all_texts, vectors)
    per_question = []
    for item in items:
        cands = list(dict.fromkeys(item["candidates"]))
        index = MemoryIndex(f"{name}-question", text.space)
        index.add(cands, cands, vectors[[row[c] for c in cands]])
        per_question.append(index)

    # Warm-up on one clip so that lazy initialisation stays out of the timings.
    for embedder in speech.values():
        embedder.embed_speech(audio[0], 16_000)
    asr.transcribe(audio[0], 16_000)
    text.embed_texts(["warm up"])
    pooled.search(vectors[0], 5, 128)

    # "+lexical": the same transcript or text, retrieved as `voicerag ask` does by default (the
    # vectors fused with the lexical terms at ask.lexical_weight); e2e has no text to fuse
    modes = [f"e2e:{head}" for head in speech] + ["asr", "asr+lexical", "oracle", "oracle+lexical"]
    if spoken_rows is not None:
        modes.insert(len(speech), "e2e:shipped+spoken")
    hits = {(m, pool, k): [] for m in modes for pool in ("per_question", "pooled") for k in KS}
    times: dict[str, list[float]] = {m: [] for m in modes}
    transcripts = []
    for qi, item in enumerate(items):
        for mode in modes:
            started = time.perf_counter()
            weight = 0.0
            if mode == "e2e:shipped+spoken":
                query = speech["shipped"].embed_speech(audio[qi], 16_000)
                ranked = with_spoken(per_question[qi], query, spoken_rows, row, 5)
                times[mode].append(time.perf_counter() - started)
                ranked_pooled = with_spoken(pooled, query, spoken_rows, row, 5)
                for pool, result in (("per_question", ranked), ("pooled", ranked_pooled)):
                    flags = [qi in positive_of[p.text] for p in result]
                    for k in KS:
                        hits[(mode, pool, k)].append(recall(flags, k))
                continue
            if mode.startswith("e2e:"):
                query, words = speech[mode[4:]].embed_speech(audio[qi], 16_000), None
            elif mode == "asr":
                transcript = asr.transcribe(audio[qi], 16_000).text
                query, words = text.embed_texts([transcript])[0], transcript
            elif mode == "oracle":
                query, words = text.embed_texts([item["query"]])[0], item["query"]
            else:  # its base mode's query, fused: the base mode's time counts too
                started -= times[mode.removesuffix("+lexical")][-1]
                weight = lexical_weight
            ranked = hybrid_search(per_question[qi], query, words, 5, 128, weight)
            times[mode].append(time.perf_counter() - started)
            ranked_pooled = hybrid_search(pooled, query, words, 5, 128, weight)
            for pool, result in (("per_question", ranked), ("pooled", ranked_pooled)):
                flags = [qi in positive_of[p.text] for p in result]
                for k in KS:
                    hits[(mode, pool, k)].append(recall(flags, k))
            if mode == "asr":
                transcripts.append({"query": item["query"], "transcript": transcript})

    report: dict = {"questions": len(items), "passages_pooled": len(all_texts)}
    print(f"{name}: {len(items)} spoken questions (held-out voices), {len(all_texts)} passages pooled")
    print(f"{'mode':22} {'per-q R@1':>9} {'per-q R@5':>9} {'pool R@1':>9} {'pool R@5':>9} {'median ms':>10}")
    for mode in modes:
        r = {f"{pool}_r{k}": float(np.mean(hits[(mode, pool, k)])) for pool in ("per_question", "pooled") for k in KS}
        r["median_ms"] = 1000 * statistics.median(times[mode])
        r["mean_ms"] = 1000 * statistics.mean(times[mode])
        report[mode] = r
        print(
            f"{mode:22} {r['per_question_r1']:9.3f} {r['per_question_r5']:9.3f} "
            f"{r['pooled_r1']:9.3f} {r['pooled_r5']:9.3f} {r['median_ms']:10.1f}"
        )
    # What a random ranking scores: per question, several positives among ~10 candidates make R@5 nearly free.
    chance: dict[str, float] = {}
    for pool in ("per_question", "pooled"):
        for k in KS:
            values = []
            for item in items:
                n = len(dict.fromkeys(item["candidates"])) if pool == "per_question" else len(all_texts)
                p = len(set(item["positive"]))
                values.append(1 - math.comb(n - p, k) / math.comb(n, k))
            chance[f"{pool}_r{k}"] = float(np.mean(values))
    report["chance"] = chance
    print(
        f"{'chance':22} {chance['per_question_r1']:9.3f} {chance['per_question_r5']:9.3f} "
        f"{chance['pooled_r1']:9.3f} {chance['pooled_r5']:9.3f}"
    )
    for mode in [m for m in modes if m.startswith("e2e:")]:  # against asr fused with the lexical terms
        speedup = report["asr+lexical"]["median_ms"] / report[mode]["median_ms"]
        gap = 100 * (report["asr+lexical"]["pooled_r5"] - report[mode]["pooled_r5"])
        report[mode]["speedup_vs_asr"] = speedup
        report[mode]["pooled_r5_gap_points"] = gap
        print(
            f"{mode}: pooled R@5 {-gap:+.1f} points against asr+lexical (target: >= 0); "
            f"{speedup:.1f}x faster (target: >= 8x)"
        )
    report["transcripts"] = transcripts
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rgb", type=Path, default=RGB)
    parser.add_argument("--hotpot", type=Path, default=HOTPOT)
    parser.add_argument("--limit", type=int, default=0, help="first N RGB/HotpotQA questions only")
    parser.add_argument("--heldout-sentences", type=int, default=300, help="0 skips the held-out-sentence part")
    parser.add_argument(
        "--real-speech",
        action="append",
        default=[],
        choices=("librispeech", "librispeech_devclean", "speechocean762"),
        help="a real-speech corpus whose held-out speakers ask (repeatable)",
    )
    parser.add_argument("--real-speech-limit", type=int, default=0, help="first N asking utterances only (smoke runs)")
    parser.add_argument("--skip-rgb", action="store_true")
    parser.add_argument("--skip-hotpot", action="store_true")
    parser.add_argument("--threads", type=int, default=2, help="torch and CTranslate2 threads for every model")
    parser.add_argument(
        "--head",
        type=Path,
        action="append",
        default=[],
        help="also measure this head file (repeatable); the shipped head is always measured",
    )
    parser.add_argument(
        "--spoken-passages", action="store_true", help="also e2e against spoken-passage vectors (index.spoken)"
    )
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    from training.speech.voices import EVAL_RATES, EVAL_VOICES, Voice

    from voicerag_cli.config import Settings
    from voicerag_cli.models.distilled.backend import DistilledSpeechEmbedder
    from voicerag_cli.models.distilled.backend import create as create_speech
    from voicerag_cli.models.distilled.paths import bundled_whisper_dir
    from voicerag_cli.models.sentence_embedder import minilm_weights
    from voicerag_cli.models.whisper_ct2 import FasterWhisperRecognizer
    from voicerag_cli.registry import Registry

    settings = Settings()
    registry = Registry(settings)
    text = registry.text_embedder()
    shipped = create_speech(settings, registry)
    shipped.frontend.model = type(shipped.frontend.model)(
        str(bundled_whisper_dir()), device="cpu", compute_type="int8", intra_threads=args.threads
    )  # same thread count as the ASR below, for a fair timing
    text_model = Path(minilm_weights(settings).location)
    speech = {"shipped": shipped}
    for head in args.head:  # the same front-end object: only the head differs
        speech[head.stem] = DistilledSpeechEmbedder(shipped.frontend, head, shipped.space, text_model)
    whisper_dir = bundled_whisper_dir()
    assert whisper_dir is not None
    asr = FasterWhisperRecognizer(whisper_dir, "en", beam_size=settings.asr.beam_size, compute_type="int8")
    asr.model = type(asr.model)(str(whisper_dir), device="cpu", compute_type="int8", cpu_threads=args.threads)
    asr.model.encoded = OrderedDict()  # the recognizer's encoder cache (models/whisper_ct2.py)
    voices = [Voice(v, r, 50) for v in EVAL_VOICES for r in EVAL_RATES]

    speaker = None
    if args.spoken_passages:
        from voicerag_cli.pipeline.spoken_passages import SpokenPassages

        speaker = SpokenPassages(registry)
    report: dict = {"heads": {"shipped": "shipped", **{h.stem: str(h) for h in args.head}}}
    report["threads"] = args.threads

    def save() -> None:  # after every part: a later part's failure keeps the finished ones
        if args.json_out:
            args.json_out.write_text(json.dumps(report, indent=1), encoding="utf-8")

    if not args.skip_rgb:
        report["rgb_en"] = retrieval_set("RGB-en", rgb_items(args.rgb, args.limit), speech, asr, text, voices, speaker)
        save()
    if not args.skip_hotpot:
        items = hotpot_items(args.hotpot, args.limit)
        report["hotpotqa"] = retrieval_set("HotpotQA", items, speech, asr, text, voices, speaker)
        save()
    if args.heldout_sentences:
        report["heldout_sentences"] = heldout_sentences(args, speech, asr, text, voices)
        save()
    for corpus in args.real_speech:
        report[corpus] = real_speech(SPEECH / corpus, speech, asr, text, speaker, args.real_speech_limit)
        save()
    return 0


def heldout_sentences(args: argparse.Namespace, speech: dict, asr, text, voices) -> dict:  # type: ignore[no-untyped-def]
    """HotpotQA's held-out sentences, spoken by held-out voices, through the real backends:
    each clip's e2e vector and its transcript's text vector rank all the sentences' text vectors."""
    from training.speech.espeak import speak
    from training.speech.texts import hotpot_sentences, is_held_out

    from voicerag_cli.eval.metrics import transcript_error

    held_out = [s for s in dict.fromkeys(hotpot_sentences(args.hotpot)) if is_held_out(s)]
    sentences = held_out[: args.heldout_sentences]
    targets = text.embed_texts(sentences, batch_size=64)
    clips = [speak(s, voices[i % len(voices)]) for i, s in enumerate(sentences)]
    transcripts = [asr.transcribe(clip, 16_000).text for clip in clips]
    queries = {f"e2e:{h}": np.stack([e.embed_speech(clip, 16_000) for clip in clips]) for h, e in speech.items()}
    queries["asr"] = text.embed_texts(transcripts, batch_size=64)
    result: dict = {"sentences": len(sentences)}
    for mode, vectors in queries.items():
        sims = vectors @ targets.T
        rank = (sims > np.diag(sims)[:, None]).sum(1)
        result[mode] = {
            "r1": float((rank < 1).mean()),
            "r5": float((rank < 5).mean()),
            "cos": float(np.diag(sims).mean()),
        }
        print(
            f"held-out sentences x held-out voices, {mode}: {len(sentences)} clips, own sentence R@1 "
            f"{result[mode]['r1']:.3f}, R@5 {result[mode]['r5']:.3f}, mean cosine {result[mode]['cos']:.3f}"
        )
    errors = [transcript_error(t, s)["wer"] for s, t in zip(sentences, transcripts, strict=True)]
    result["asr_median_wer"] = float(statistics.median(errors))
    print(f"held-out sentences: transcripts' median WER {result['asr_median_wer']:.2f}")
    return result


def real_speech(folder: Path, speech: dict, asr, text, speaker=None, limit: int = 0) -> dict:  # type: ignore[no-untyped-def]
    """Real human speech (a ../shared/data/speech corpus): each utterance of a speaker that
    training holds out (`recordings.is_held_out_speaker`) ranks all the corpus's transcripts
    (text vectors); R@1 = it finds its own."""
    from training.speech.recordings import is_held_out_speaker, read_mono, read_transcripts

    rows = read_transcripts(folder)
    targets = text.embed_texts([r.text for r in rows], batch_size=64)
    # e2e embeds at most 30 s (Whisper's window): longer utterances do not ask, and are counted
    held_out = [i for i, r in enumerate(rows) if is_held_out_speaker(folder.name, r.speaker)]
    asking = [i for i in held_out if rows[i].seconds <= E2E_MAX_SECONDS][: limit or None]
    clips = [read_mono(folder / rows[i].file) for i in asking]
    queries = {f"e2e:{h}": np.stack([e.embed_speech(clip, 16_000) for clip in clips]) for h, e in speech.items()}
    transcripts = [asr.transcribe(clip, 16_000).text for clip in clips]
    queries["asr"] = text.embed_texts(transcripts, batch_size=64)
    modes = {mode: vectors @ targets.T for mode, vectors in queries.items()}
    if speaker is not None:  # rescored as AskPipeline.speech_ranked rescores: text top POOL, then fused
        from voicerag_cli.config import AskConfig
        from voicerag_cli.index import spoken

        spoken_targets = speaker.embed_spoken([r.text for r in rows])
        weight, fused = AskConfig().spoken_weight, queries["e2e:shipped"] @ targets.T
        for qi, q in enumerate(queries["e2e:shipped"]):
            pool = np.argsort(-fused[qi])[: spoken.POOL]
            rescored = (1 - weight) * fused[qi, pool] + weight * (spoken_targets[pool] @ q)
            fused[qi] = -np.inf
            fused[qi, pool] = rescored
        modes["e2e:shipped+spoken"] = fused
    speakers = sorted({rows[i].speaker for i in asking})
    result: dict = {"utterances": len(rows), "queries": len(asking), "asking_speakers": speakers}
    result["held_out_over_30s"] = sum(rows[i].seconds > E2E_MAX_SECONDS for i in held_out)
    own = np.array(asking)
    for mode, sims in modes.items():
        rank = (sims > sims[np.arange(len(own)), own][:, None]).sum(1)
        result[mode] = {"r1": float((rank < 1).mean()), "r5": float((rank < 5).mean())}
        print(
            f"{folder.name}, {mode}: {len(asking)} utterances by {len(speakers)} held-out speakers, "
            f"own transcript among {len(rows)}: R@1 {result[mode]['r1']:.3f}, R@5 {result[mode]['r5']:.3f}"
        )
    result["transcripts"] = [{"text": rows[i].text, "transcript": t} for i, t in zip(asking, transcripts, strict=True)]
    return result


if __name__ == "__main__":
    raise SystemExit(main())
