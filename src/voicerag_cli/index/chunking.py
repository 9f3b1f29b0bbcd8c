"""Split documents into overlapping chunks that end on sentence boundaries."""

from __future__ import annotations

import hashlib
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


def chunk_text(source: str, text: str, chunk_words: int, overlap_words: int) -> list[Chunk]:
    """Greedily pack whole sentences up to `chunk_words`; the next chunk starts with the
    trailing sentences worth about `overlap_words`. A single sentence longer than the budget
    becomes its own chunk (never cut mid-sentence)."""
    sentences = split_sentences(text)
    chunks: list[Chunk] = []
    i = 0
    while i < len(sentences):
        j, words = i, 0
        while j < len(sentences) and (j == i or words + word_count(sentences[j].text) <= chunk_words):
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


def _make_chunk(source: str, ordinal: int, text: str, sentences: list[Sentence]) -> Chunk:
    start, end = sentences[0].start, sentences[-1].end
    return Chunk(source, ordinal, start, end, text[start:end])
