"""The bounded prompt: the question and the best passages, each numbered [n] and trimmed to its
share of a token budget. On a CPU the prompt's processing is most of an answer's time, so the
passages keep their best sentences and drop the rest: those the reader scores highest where one
is configured, else those that share most words with the question."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from voicerag_cli.models.base import Passage, PassageReader, read_passages
from voicerag_cli.sentences import Sentence, split_sentences
from voicerag_cli.stopwords import FUNCTION_WORDS
from voicerag_cli.structure import searchable_text

# A budget counted in characters needs no tokenizer; English prose runs about 4 characters a
# token and code about 3, so this errs towards a shorter prompt.
CHARS_PER_TOKEN = 3.5
NOT_FOUND = "NOT FOUND"
SYSTEM_PROMPT = (
    "Use the numbered passages to answer the question directly, in your own words. End each sentence "
    "with the passage it comes from, as [n]. Keep it to three sentences at most, plus one short code "
    f"example if it helps. Only if none of the passages answers the question, reply: {NOT_FOUND}"
)
_WORD = re.compile(r"[A-Za-z0-9_]{3,}")
_GAP = " … "


@dataclass(frozen=True)
class Prompt:
    messages: list[dict[str, str]]
    passages: int  # how many passages it numbers: valid citations are 1..passages
    texts: list[str]  # each numbered passage as the prompt shows it
    chars: int  # its length without the chat template's markers


def _keys(text: str) -> set[str]:
    """Lower-cased content words, cut to 5 letters so that "uploads" meets "upload"."""
    return {word.lower()[:5] for word in _WORD.findall(text) if word.lower() not in FUNCTION_WORDS}


def _cut(text: str, limit: int) -> str:
    """`text` cut at a word boundary to at most `limit` characters."""
    if len(text) <= limit:
        return text
    head = text[: max(0, limit - 1)]
    space = head.rfind(" ")
    return (head[:space] if space > limit // 2 else head).rstrip() + "…"


SentenceScores = Callable[[Sequence[Sentence]], Sequence[float]]


def trim(text: str, question: str, limit: int, scores: SentenceScores | None = None) -> str:
    """The passage's best sentences, in their order, within `limit` characters: by `scores` (the
    reader's, for the sentences' spans of `text`), else by the words they share with the question."""
    if len(text) <= limit:
        return text
    sentences = split_sentences(text)
    if len(sentences) <= 1:
        return _cut(text, limit)
    if scores is not None:
        given = list(scores(sentences))
        ranked = sorted(range(len(sentences)), key=lambda i: (-given[i], i))
    else:
        asked = _keys(question)
        ranked = sorted(range(len(sentences)), key=lambda i: (-len(asked & _keys(sentences[i].text)), i))
    chosen: set[int] = set()
    used = 0
    for i in ranked:
        cost = len(sentences[i].text) + len(_GAP)
        if used + cost <= limit:
            chosen.add(i)
            used += cost
    if not chosen:
        return _cut(sentences[ranked[0]].text, limit)
    pieces: list[str] = []
    last = -1
    for i in sorted(chosen):
        if pieces and i != last + 1:
            pieces.append(_GAP.strip())
        pieces.append(sentences[i].text)
        last = i
    return " ".join(pieces)


def _shares(lengths: list[int], total: int) -> list[int]:
    """Split `total` characters over texts of these lengths: short texts keep all of theirs,
    the rest share what is left evenly."""
    shares = [0] * len(lengths)
    left, remaining = total, len(lengths)
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        shares[i] = min(lengths[i], left // remaining)
        left -= shares[i]
        remaining -= 1
    return shares


def _label(source: str) -> str:
    """A passage's file name, without folders and anchors: a hint of what it is, in few tokens."""
    return PurePosixPath(source.split("#", 1)[0].replace("\\", "/")).name or source


def build_prompt(
    question: str, passages: list[Passage], budget_tokens: int, reader: PassageReader | None = None
) -> Prompt:
    """System prompt, then the numbered passages (each with its innermost headings) and the
    question, within `budget_tokens`."""
    headers = [f"[{n}] ({_label(p.source)})\n" for n, p in enumerate(passages, start=1)]
    texts = [searchable_text(p.text, p.heading_path) for p in passages]
    scorers: list[SentenceScores | None] = [None] * len(passages)
    if reader is not None:
        readings = read_passages(reader, question, passages)
        scorers = [
            (lambda sentences, r=r: [r.span_score(s.start, s.end) for s in sentences])  # type: ignore[misc]
            for r in readings
        ]
    tail = f"\n\nQuestion: {question}"
    fixed = len(SYSTEM_PROMPT) + len("Passages:\n") + len(tail) + sum(len(h) + 2 for h in headers)
    room = max(0, int(budget_tokens * CHARS_PER_TOKEN) - fixed)
    shares = _shares([len(t) for t in texts], room)
    blocks = [
        h + trim(t, question, share, scorer).replace("\n\n", "\n")
        for h, t, share, scorer in zip(headers, texts, shares, scorers, strict=True)
    ]
    user = "Passages:\n" + "\n\n".join(blocks) + tail
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
    return Prompt(messages, len(passages), [b.split("\n", 1)[-1] for b in blocks], len(SYSTEM_PROMPT) + len(user))
