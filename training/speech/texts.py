"""Training texts and their split: entity-rich questions and Wikipedia sentences from
../shared/data/text, how-to/API texts from training-list docs (docs_texts.py), and the
transcripts of recorded speech (real or neural voices).

A text is held out (never trained on; the dev set) when the SHA-1 of its lower-cased form falls
in `HELD_OUT_PERCENT`: the same text is always on the same side, whichever file it came from.
Each row is `{"text", "spoken", "kind"}`: the teacher embeds `text`, a rendered clip says `spoken`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HELD_OUT_PERCENT = 3
MAX_WORDS = 24  # HotpotQA sentences are cut at clause boundaries to stay a few seconds long
MIN_WORDS = 3


def is_held_out(text: str) -> bool:
    digest = hashlib.sha1(text.strip().lower().encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % 100 < HELD_OUT_PERCENT


def split_long(sentence: str) -> list[str]:
    """Cut a long sentence at commas/semicolons into pieces of at most MAX_WORDS words."""
    words = sentence.split()
    if len(words) <= MAX_WORDS:
        return [sentence]
    pieces: list[str] = []
    current: list[str] = []
    for word in words:
        current.append(word)
        if (len(current) >= MAX_WORDS // 2 and word[-1:] in ",;:") or len(current) >= MAX_WORDS:
            pieces.append(" ".join(current).rstrip(",;:"))
            current = []
    if current:
        pieces.append(" ".join(current))
    return pieces


def hotpot_sentences(path: Path) -> list[str]:
    """HotpotQA distractor context sentences (cut to at most MAX_WORDS words), in file order."""
    out: list[str] = []
    for record in json.loads(path.read_text(encoding="utf-8")):
        for _title, sentences in record["context"]:
            for sentence in sentences:
                out += [p for p in split_long(" ".join(sentence.split())) if len(p.split()) >= MIN_WORDS]
    return out


def shared_texts(folder: Path, questions: int, sentences: int, seed: int) -> list[dict[str, str]]:
    """`questions` shuffled questions and the first `sentences` Wikipedia sentences of
    ../shared/data/text (`folder`)."""
    rng = random.Random(seed)
    with gzip.open(folder / "questions_en.jsonl.gz", "rt", encoding="utf-8") as f:
        qs = [json.loads(line)["text"] for line in f]
    rng.shuffle(qs)
    sents: list[str] = []
    with gzip.open(folder / "wiki_sentences_en.txt.gz", "rt", encoding="utf-8") as f:
        for line in f:
            if len(sents) >= sentences:
                break
            sents.append(line.strip())
    return [row(q, "question") for q in qs[:questions]] + [row(s, "sentence") for s in sents]


def row(text: str, kind: str, spoken: str | None = None) -> dict[str, str]:
    return {"text": text, "spoken": spoken or text, "kind": kind}


def write_texts(path: Path, rows: Iterable[dict[str, str]]) -> None:
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=9) as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def read_texts(path: Path) -> list[dict[str, Any]]:
    """The rows of a texts file, de-duplicated by text (case-insensitive), each marked
    `held_out`; rows written before `spoken` existed say their text."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    seen: set[str] = set()
    out = []
    for r in rows:
        key = r["text"].strip().lower()
        if not key or key in seen:
            continue
        seen.add(key)
        out.append({**r, "spoken": r.get("spoken") or r["text"], "held_out": is_held_out(r["text"])})
    return out
