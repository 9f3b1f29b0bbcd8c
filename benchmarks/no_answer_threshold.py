"""Calibrate the extractive generator's "found nothing" threshold (generator.min_score).

For every RGB-en and HotpotQA question, all passages of both datasets form one pooled index
(as `voicerag index` would hold them). Answerable: the question's best cosine similarity over
the whole pool (its own passages are in it). Unanswerable: the best similarity once every
passage of that question (positives and distractors) is removed, so the best hit is another
question's page: what a user meets when the documents do not cover the question.

The threshold is chosen on the even-numbered questions and reported on the odd-numbered ones,
per dataset and overall: the largest threshold at which "found nothing" is right at least
`--precision` (1.0) of the times it is said. Refusing a question the documents answer costs
the user more than an answer from an unrelated page, so precision is fixed and recall bought
with what is left: the F1-best threshold (0.69) kept only 55 % of answerable questions, and
precision 0.95 (0.50) refused "who built the running machine?" on the demo documents (0.44).

    python benchmarks/no_answer_threshold.py [--shared ../shared] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from voicerag_cli.config import Settings  # noqa: E402
from voicerag_cli.eval.datasets import load_dataset  # noqa: E402
from voicerag_cli.registry import Registry  # noqa: E402

READ = 8


def scores(shared: Path, reader: bool = False) -> list[dict[str, object]]:
    items = [("rgb-en", item) for item in load_dataset("rgb-en", shared / "data/rgb/en_fact.json")]
    items += [
        ("hotpot", item) for item in load_dataset("hotpot", shared / "data/hotpotqa/hotpot_dev_distractor_100.json")
    ]
    texts: dict[str, int] = {}
    owner: list[set[int]] = []
    for _, item in items:
        own = set()
        for passage in item.passages:
            own.add(texts.setdefault(passage.text, len(texts)))
        owner.append(own)
    registry = Registry(Settings())
    embedder = registry.text_embedder()
    passage_texts = list(texts)
    pool = np.asarray(embedder.embed_texts(list(texts), batch_size=32))
    questions = np.asarray(embedder.embed_texts([item.question for _, item in items], batch_size=32))
    similarity = questions @ pool.T
    rows = []
    for number, ((dataset, item), own) in enumerate(zip(items, owner, strict=True)):
        others = np.ones(len(texts), dtype=bool)
        others[list(own)] = False
        if reader:
            best = registry.reader()
            assert best is not None
            found = np.argsort(-similarity[number])[:READ]
            elsewhere = np.flatnonzero(others)[np.argsort(-similarity[number][others])[:READ]]
            answerable = max(r_.probability for r_ in best.read(item.question, [passage_texts[i] for i in found]))  # type: ignore[attr-defined]
            unanswerable = max(r_.probability for r_ in best.read(item.question, [passage_texts[i] for i in elsewhere]))  # type: ignore[attr-defined]
        else:
            answerable = float(similarity[number].max())
            unanswerable = float(similarity[number][others].max())
        rows.append(
            {"n": number, "dataset": dataset, "qid": item.qid, "answerable": answerable, "unanswerable": unanswerable}
        )
    return rows


def decision_quality(rows: list[dict[str, object]], threshold: float) -> dict[str, float]:
    """Precision/recall of saying "found nothing" (score < threshold) for unanswerable cases."""
    said_nothing_right = sum(float(r["unanswerable"]) < threshold for r in rows)  # type: ignore[arg-type]
    said_nothing_wrong = sum(float(r["answerable"]) < threshold for r in rows)  # type: ignore[arg-type]
    said = said_nothing_right + said_nothing_wrong
    precision = said_nothing_right / said if said else 1.0
    recall = said_nothing_right / len(rows) if rows else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    answered = 1 - said_nothing_wrong / len(rows) if rows else 0.0
    return {
        "precision": round(precision, 3),
        "recall": round(recall, 3),
        "f1": round(f1, 3),
        "answerable_kept": round(answered, 3),
        "n": len(rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--precision", type=float, default=1.0, help="required precision of 'found nothing'")
    parser.add_argument("--reader", action="store_true", help="calibrate the reader's relevance probability")
    args = parser.parse_args()
    rows = scores(args.shared, args.reader)
    calibration = [r for r in rows if int(r["n"]) % 2 == 0]  # type: ignore[call-overload]
    held_out = [r for r in rows if int(r["n"]) % 2 == 1]  # type: ignore[call-overload]
    if args.reader:
        grid = [round(float(t), 4) for t in np.concatenate([np.arange(0.001, 0.05, 0.001), np.arange(0.05, 0.6, 0.01)])]
    else:
        grid = [round(t, 2) for t in np.arange(0.05, 0.80, 0.01)]
    good = [t for t in grid if decision_quality(calibration, t)["precision"] >= args.precision]
    best = max(good) if good else grid[0]
    report = {
        "threshold": best,
        "required_precision": args.precision,
        "calibration": decision_quality(calibration, best),
        "held_out": decision_quality(held_out, best),
        "held_out_by_dataset": {
            name: decision_quality([r for r in held_out if r["dataset"] == name], best) for name in ("rgb-en", "hotpot")
        },
        "median_scores": {
            kind: round(float(np.median([float(r[kind]) for r in rows])), 3)  # type: ignore[arg-type]
            for kind in ("answerable", "unanswerable")
        },
        "curve_held_out": {str(t): decision_quality(held_out, t) for t in grid[::5]},
    }
    print(json.dumps({k: v for k, v in report.items() if k != "curve_held_out"}, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps({**report, "rows": rows}, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
