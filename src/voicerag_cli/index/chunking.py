"""Split documents into overlapping chunks that end on sentence boundaries."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

from voicerag_cli.sentences import Sentence, split_sentences, word_count


@dataclass(frozen=True)
class Chunk:
    source: str
    ordinal: int
    start: int  # character offsets into the document's text
    end: int
    text: str

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]


CHARS_PER_WORD = 20  # a chunk holds at most chunk_words * this many characters
# A sentence up to this many times the budget stays whole (cutting one hurts its embedding);
# beyond, it is no sentence but a run-on line or a table, and is cut.
LONG_FACTOR = 4


def chunk_text(source: str, text: str, chunk_words: int, overlap_words: int) -> list[Chunk]:
    """Greedily pack whole sentences up to `chunk_words`; the next chunk starts with the
    trailing sentences worth about `overlap_words`. A "sentence" longer than the budget (a
    50 MB single line, a table without full stops) is cut at word boundaries into pieces of
    `chunk_words` words and at most `chunk_words * CHARS_PER_WORD` characters when it exceeds
    `LONG_FACTOR` times that, so no chunk is unbounded."""
    sentences = [piece for s in split_sentences(text) for piece in _bounded(s, chunk_words)]
    chunks: list[Chunk] = []
    i = 0
    while i < len(sentences):
        j, words = i, 0
        max_chars = LONG_FACTOR * chunk_words * CHARS_PER_WORD
        while j < len(sentences) and (
            j == i
            or (
                words + word_count(sentences[j].text) <= chunk_words
                and sentences[j].end - sentences[i].start <= max_chars
            )
        ):
            words += word_count(sentences[j].text)
            j += 1
        chunks.append(_make_chunk(source, len(chunks), text, sentences[i:j]))
        if j >= len(sentences):
            break
        # Step back over trailing sentences for overlap, but always advance at least one.
        back, overlap = j, 0
        while back - 1 > i and overlap + word_count(sentences[back - 1].text) <= overlap_words:
            back -= 1
            overlap += word_count(sentences[back].text)
        i = back
    return chunks


_TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\s\u3400-\u9fff\uf900-\ufaff]+")


def _bounded(sentence: Sentence, chunk_words: int) -> Iterator[Sentence]:
    max_chars = chunk_words * CHARS_PER_WORD
    if len(sentence.text) <= LONG_FACTOR * max_chars and word_count(sentence.text) <= LONG_FACTOR * chunk_words:
        yield sentence
        return
    base, text = sentence.start, sentence.text
    start = end = words = 0
    for match in _TOKEN.finditer(text):
        token_start, token_end = match.span()
        while token_end - token_start > max_chars:  # one "word" longer than a chunk: slice it
            if words:
                yield Sentence(text[start:end], base + start, base + end)
            yield Sentence(
                text[token_start : token_start + max_chars], base + token_start, base + token_start + max_chars
            )
            token_start += max_chars
            start = end = token_start
            words = 0
        if words and (words >= chunk_words or token_end - start > max_chars):
            yield Sentence(text[start:end], base + start, base + end)
            words = 0
        if not words:
            start = token_start
        end = token_end
        words += 1
    if words:
        yield Sentence(text[start:end], base + start, base + end)


def _make_chunk(source: str, ordinal: int, text: str, sentences: list[Sentence]) -> Chunk:
    start, end = sentences[0].start, sentences[-1].end
    return Chunk(source, ordinal, start, end, text[start:end])
