"""Sentence segmentation shared by chunking and extractive answering.

A regex splitter is enough here: it must be fast, dependency-free, keep character offsets,
and handle both Latin punctuation and CJK full stops (RGB has Chinese passages).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A sentence ends at . ! ? (optionally followed by quotes/brackets) plus whitespace, at a CJK
# terminator, or at a blank line. Abbreviations like "e.g. x" may split early; harmless for retrieval.
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=\S)|(?<=[。！？；])|\n\s*\n")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class Sentence:
    text: str
    start: int
    end: int


def split_sentences(text: str) -> list[Sentence]:
    sentences: list[Sentence] = []
    position = 0
    for match in _BOUNDARY.finditer(text):
        gap = match.group(0)
        # Closing quotes/brackets after the full stop belong to the sentence, not to the gap.
        _add(text, position, match.start() + len(gap) - len(gap.lstrip("\"')]")), sentences)
        position = match.end()
    _add(text, position, len(text), sentences)
    return sentences


def _add(text: str, start: int, end: int, out: list[Sentence]) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if stripped:
        lead = len(piece) - len(piece.lstrip())
        out.append(Sentence(stripped, start + lead, start + lead + len(stripped)))


def word_count(text: str) -> int:
    """Words for Latin script; each CJK character counts as one word (no spaces there)."""
    cjk = len(_CJK.findall(text))
    return cjk + len(_CJK.sub(" ", text).split())
