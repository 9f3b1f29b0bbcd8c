"""Split documents into overlapping chunks: a markup file (Markdown, reST, HTML) read as
structure (typed blocks) and packed into chunks that follow its sections (`voicerag_cli.structure`);
plain text by sentences (`chunk_text`), whose offsets point into the file's own text and whose
memory stays bounded on huge files."""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from voicerag_cli.sentences import Sentence, iter_sentences, word_count
from voicerag_cli.structure import MARKUP_SUFFIXES, ChunkBlock, chunk_blocks, parse, searchable_text
from voicerag_cli.structure.chunks import cut_spans


@dataclass(frozen=True)
class Chunk:
    source: str
    ordinal: int
    start: int  # character offsets into the document's text (as read: plain text for structured files)
    end: int
    text: str
    heading_path: tuple[str, ...] = ()  # the headings above the chunk's start, outermost first
    blocks: tuple[ChunkBlock, ...] = ()  # its blocks' kinds and spans in `text`

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]

    @property
    def searchable_text(self) -> str:
        return searchable_text(self.text, self.heading_path)


def chunk_document(source: str, text: str, suffix: str, chunk_words: int, overlap_words: int) -> list[Chunk]:
    """A file's text read as structure by its `suffix` (".md", ".rst", ".html") and packed into
    chunks that follow its sections, `start`/`end` locating each chunk in the blocks' text joined
    as the chunks join them; any other text by sentences (`chunk_text`)."""
    if suffix.lower() not in MARKUP_SUFFIXES:
        return chunk_text(source, text, chunk_words, overlap_words)
    found = parse(text, suffix)
    document = "\n\n".join(block.text for block in found)
    chunks = []
    cursor = 0
    for piece in chunk_blocks(source, found, chunk_words, overlap_words):
        first = piece.text[: piece.blocks[0].end] if piece.blocks else piece.text
        at = document.find(first, cursor)
        start = at if at >= 0 else cursor
        cursor = start
        chunks.append(
            Chunk(source, piece.ordinal, start, start + len(piece.text), piece.text, piece.heading_path, piece.blocks)
        )
    return chunks


CHARS_PER_WORD = 20  # a chunk holds at most chunk_words * this many characters
# A sentence up to this many times the budget stays whole (cutting one hurts its embedding);
# beyond, it is no sentence but a run-on line or a table, and is cut.
LONG_FACTOR = 4


def chunk_text(source: str, text: str, chunk_words: int, overlap_words: int) -> list[Chunk]:
    """Greedily pack whole sentences up to `chunk_words`; the next chunk starts with the
    trailing sentences worth about `overlap_words`. A "sentence" longer than the budget (a
    50 MB single line, a table without full stops) is cut at word boundaries into pieces of
    `chunk_words` words and at most `chunk_words * CHARS_PER_WORD` characters when it exceeds
    `LONG_FACTOR` times that, so no chunk is unbounded. Sentences stream through a window of
    one chunk, so memory beyond the text is the chunks themselves (a 50 MB file of short
    sentences would otherwise hold millions of sentence objects at once)."""
    max_chars = LONG_FACTOR * chunk_words * CHARS_PER_WORD
    chunks: list[Chunk] = []
    window: deque[tuple[Sentence, int]] = deque()  # the chunk being packed: (sentence, its words)
    words = 0
    for sentence in (piece for s in iter_sentences(text) for piece in _bounded(s, chunk_words)):
        count = word_count(sentence.text)
        if window and (words + count > chunk_words or sentence.end - window[0][0].start > max_chars):
            chunks.append(_make_chunk(source, len(chunks), text, [s for s, _ in window]))
            # Keep trailing sentences worth at most overlap_words, but always advance one.
            kept, words = 0, 0
            while kept < len(window) - 1 and words + window[-1 - kept][1] <= overlap_words:
                words += window[-1 - kept][1]
                kept += 1
            for _ in range(len(window) - kept):
                window.popleft()
            # The overlap is a nicety: give it up where the next sentence would not fit with it.
            while window and (words + count > chunk_words or sentence.end - window[0][0].start > max_chars):
                words -= window.popleft()[1]
        window.append((sentence, count))
        words += count
    if window:
        chunks.append(_make_chunk(source, len(chunks), text, [s for s, _ in window]))
    return chunks


def _bounded(sentence: Sentence, chunk_words: int) -> Iterator[Sentence]:
    max_chars = chunk_words * CHARS_PER_WORD
    if len(sentence.text) <= LONG_FACTOR * max_chars and word_count(sentence.text) <= LONG_FACTOR * chunk_words:
        yield sentence
        return
    base, text = sentence.start, sentence.text
    for start, end in cut_spans(text, chunk_words, max_chars):
        yield Sentence(text[start:end], base + start, base + end)


def _make_chunk(source: str, ordinal: int, text: str, sentences: list[Sentence]) -> Chunk:
    start, end = sentences[0].start, sentences[-1].end
    return Chunk(source, ordinal, start, end, text[start:end])
