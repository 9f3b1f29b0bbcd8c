"""Sentence segmentation shared by chunking and extractive answering.

A regex splitter is enough here: it must be fast, dependency-free, keep character offsets,
and handle both Latin punctuation and CJK full stops (RGB has Chinese passages).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

# A sentence ends at . ! ? (optionally followed by quotes/brackets) plus whitespace, at a CJK
# terminator, or at a blank line; a full stop after an abbreviation or an initial is not an end.
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=\S)|(?<=[。！？；])|\n\s*\n")
# Never end a sentence (lowercase, with the full stop).
_ABBREVIATIONS = frozenset(
    [
        "e.g.",
        "i.e.",
        "cf.",
        "vs.",
        "viz.",
        "mr.",
        "mrs.",
        "ms.",
        "dr.",
        "prof.",
        "sr.",
        "jr.",
        "st.",
        "mt.",
        "no.",
        "nos.",
        "fig.",
        "figs.",
        "eq.",
        "eqs.",
        "sec.",
        "ch.",
        "vol.",
        "pp.",
        "p.",
        "approx.",
        "ca.",
        "inc.",
        "ltd.",
        "co.",
        "corp.",
        "dept.",
        "univ.",
        "jan.",
        "feb.",
        "mar.",
        "apr.",
        "jun.",
        "jul.",
        "aug.",
        "sep.",
        "sept.",
        "oct.",
        "nov.",
        "dec.",
        "ver.",
        "v.",
        "al.",
    ]
)
# End a sentence only before an uppercase word: "and so on etc. Then" ends, "etc. and" does not.
_SOFT_ABBREVIATIONS = frozenset(["etc.", "a.m.", "p.m.", "u.s.", "u.k.", "e.u.", "u.n."])
_LAST_TOKEN = re.compile(r"(\S+)$")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class Sentence:
    text: str
    start: int
    end: int


def _is_end(text: str, match: re.Match[str]) -> bool:
    """Whether a candidate boundary after a full stop really ends the sentence."""
    gap = match.group(0)
    if not gap or gap.count("\n") >= 2:
        return True  # a CJK terminator (zero-width) or a blank line
    before = text[max(0, match.start() - 40) : match.start()]
    token = _LAST_TOKEN.search(before)
    if token is None or not token.group(1).endswith("."):
        return True
    word = token.group(1).lstrip("(\"'[").lower()
    following = text[match.end() : match.end() + 1]
    if word in _ABBREVIATIONS:
        return False
    if word.endswith("...") and following.islower():  # an ellipsis inside a sentence: "with ... and"
        return False
    if re.fullmatch(r"[a-z]\.", word) and token.group(1)[-2:-1].isupper():  # an initial: "J. Smith"
        return False
    if word in _SOFT_ABBREVIATIONS or re.fullmatch(r"(?:[a-z]\.){2,}", word):
        return following.isupper()
    return True


def split_sentences(text: str) -> list[Sentence]:
    return list(iter_sentences(text))


def iter_sentences(text: str) -> Iterator[Sentence]:
    """The sentences of `text` one at a time, so a consumer of a huge text need not hold them all."""
    position = 0
    for match in _BOUNDARY.finditer(text):
        if not _is_end(text, match):
            continue
        gap = match.group(0)
        # Closing quotes/brackets after the full stop belong to the sentence, not to the gap.
        sentence = _sentence(text, position, match.start() + len(gap) - len(gap.lstrip("\"')]")))
        if sentence is not None:
            yield sentence
        position = match.end()
    last = _sentence(text, position, len(text))
    if last is not None:
        yield last


def _sentence(text: str, start: int, end: int) -> Sentence | None:
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        return None
    lead = len(piece) - len(piece.lstrip())
    return Sentence(stripped, start + lead, start + lead + len(stripped))


def word_count(text: str) -> int:
    """Words for Latin script; each CJK character counts as one word (no spaces there)."""
    cjk = len(_CJK.findall(text))
    return cjk + len(_CJK.sub(" ", text).split())
