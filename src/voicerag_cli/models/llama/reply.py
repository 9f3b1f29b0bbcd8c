"""What the model writes, shaped into an answer: at most three sentences plus one example,
citations only of passages it was given, and "not found" recognised."""

from __future__ import annotations

import re

from voicerag_cli.models.llama.prompt import NOT_FOUND
from voicerag_cli.sentences import split_sentences

MAX_SENTENCES = 3
_FENCE = re.compile(r"^[ \t]*(```|~~~)", re.MULTILINE)
_CITATIONS = re.compile(r"(\s*)\[(\d+(?:\s*,\s*\d+)*)\]")
# Small models sometimes say it in words instead of the marker they were asked for.
_NO_ANSWER = re.compile(
    r"^\W*(not found|i (do not|don't) know|the (given |provided )?passages do not (contain|mention|say))",
    re.IGNORECASE,
)


def allowed_length(text: str) -> tuple[int, bool]:
    """How much of `text` the answer keeps (a prefix), and whether it is complete: the prefix
    ends before a 4th prose sentence or a 2nd code block begins."""
    sentences = 0
    code_blocks = 0
    position = 0
    fences = list(_FENCE.finditer(text))
    # prose and code alternate: even segments are prose, odd ones are inside a fence
    bounds = [0, *(m.start() for m in fences), len(text)]
    for index in range(len(bounds) - 1):
        start, end = bounds[index], bounds[index + 1]
        if index % 2 == 1:
            code_blocks += 1
            if code_blocks > 1:
                return len(text[:start].rstrip()), True
            continue
        prose = text[start:end]
        if index > 0:  # skip the closing fence's own line
            newline = prose.find("\n")
            if newline < 0:
                continue
            position = start + newline + 1
            prose = text[position:end]
        else:
            position = start
        for sentence in split_sentences(prose):
            sentences += 1
            if sentences > MAX_SENTENCES:
                return len(text[: position + sentence.start].rstrip()), True
    return len(text), False


def is_no_answer(text: str) -> bool:
    return bool(_NO_ANSWER.match(text.strip()))


def could_become_no_answer(text: str) -> bool:
    """True while `text` is still the start of the not-found marker (streaming holds it back)."""
    stripped = text.strip().upper()
    return NOT_FOUND.startswith(stripped) if stripped else True


def drop_foreign_citations(text: str, passages: int) -> str:
    """`text` without citations of passages outside 1..`passages` ("[2, 9]" keeps "[2]")."""

    def keep(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.findall(r"\d+", match.group(2))]
        valid = [n for n in dict.fromkeys(numbers) if 1 <= n <= passages]
        return (match.group(1) + " ".join(f"[{n}]" for n in valid)) if valid else ""

    return _CITATIONS.sub(keep, text)


def citations(text: str) -> list[int]:
    """The passage numbers `text` cites, ascending."""
    return sorted({int(n) for group in _CITATIONS.findall(text) for n in re.findall(r"\d+", group[1])})


_WORD = re.compile(r"[A-Za-z0-9_]{3,}")
MIN_SHARED_WORDS = 2  # a sentence is attributed to a passage sharing at least this many words


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def attribute(text: str, passages: list[str]) -> str:
    """`text` with each uncited sentence of the final paragraph group cited by the passage it
    shares most words with (at least MIN_SHARED_WORDS): a small model often forgets to cite, and
    an answer must say where each claim comes from. Sentences that share too little stay uncited."""
    vocab = [_words(p) for p in passages]
    out = []
    for paragraph in text.split("\n\n"):
        pieces = []
        for sentence in split_sentences(paragraph):
            said = sentence.text
            if not _CITATIONS.search(said) and vocab:
                shared = [len(_words(said) & v) for v in vocab]
                best = max(range(len(shared)), key=lambda i: (shared[i], -i))
                if shared[best] >= MIN_SHARED_WORDS and not said.endswith(":"):
                    said = f"{said} [{best + 1}]"
            pieces.append(said)
        out.append(" ".join(pieces) if pieces else paragraph)
    return "\n\n".join(out)
