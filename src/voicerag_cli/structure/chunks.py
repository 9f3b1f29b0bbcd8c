"""Blocks packed into chunks that follow sections.

A chunk holds whole blocks up to `chunk_words` words, never spans two top-level sections,
repeats trailing blocks worth about `overlap_words` from the chunk before it (within its
section), and records each block's kind, term and character span in its text. The heading path
is a field, not part of the text: whoever embeds the chunk decides whether to prefix it."""

from __future__ import annotations

import hashlib
import re
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from voicerag_cli.sentences import iter_sentences, word_count
from voicerag_cli.structure.blocks import Block

SEPARATOR = "\n\n"
# How many of the innermost headings above a chunk go before its text when it is embedded, its
# terms are indexed or a reader reads it: a section's body rarely repeats the name its heading
# gives it.
CONTEXT_HEADINGS = 2
CHARS_PER_WORD = 20  # a piece holds at most chunk_words * this many characters


@dataclass(frozen=True)
class ChunkBlock:
    """A block inside a chunk: `text[start:end]` is its text (or the piece of it this chunk
    holds, for a block longer than a chunk). `heading_path` is the block's own path (added to
    the interface: blocks of one chunk may sit in different subsections)."""

    kind: str
    start: int
    end: int
    term: str = ""
    heading_path: tuple[str, ...] = ()


@dataclass(frozen=True)
class StructuredChunk:
    source: str
    ordinal: int
    text: str
    heading_path: tuple[str, ...]  # the path where the chunk starts
    blocks: tuple[ChunkBlock, ...]

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class _Piece:
    block: Block
    text: str
    words: int


def _section(block: Block) -> tuple[str, ...]:
    """The top-level section a block belongs to. A heading or a signature heads its own section,
    so it belongs to the one it opens."""
    if block.kind in {"heading", "signature"}:
        return (*block.heading_path, block.text)[:1]
    return block.heading_path[:1]


def _own_path(block: Block) -> tuple[str, ...]:
    """The path of what a block opens (a heading's section), else where it sits."""
    if block.kind in {"heading", "signature"}:
        return (*block.heading_path, block.text)
    return block.heading_path


# A word: one CJK character, or a run of other non-space characters.
_TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\s\u3400-\u9fff\uf900-\ufaff]+")


def cut_spans(text: str, max_words: int, max_chars: int) -> Iterator[tuple[int, int]]:
    """The spans of `text` in pieces of at most `max_words` words and `max_chars` characters, cut
    between words (inside a word only when one word is longer than `max_chars`)."""
    start = end = words = 0
    for match in _TOKEN.finditer(text):
        token_start, token_end = match.span()
        while token_end - token_start > max_chars:
            if words:
                yield start, end
                words = 0
            yield token_start, token_start + max_chars
            token_start += max_chars
        if words and (words >= max_words or token_end - start > max_chars):
            yield start, end
            words = 0
        if not words:
            start = token_start
        end = token_end
        words += 1
    if words:
        yield start, end


def _cut(text: str, max_words: int, max_chars: int) -> Iterator[str]:
    return (text[start:end] for start, end in cut_spans(text, max_words, max_chars))


def _units(block: Block) -> Iterator[tuple[int, int]]:
    """Spans of `block.text` that may not be cut further: its lines for code, else its sentences."""
    text = block.text
    if block.kind == "code":
        position = 0
        for line in text.split("\n"):
            if line.strip():
                yield position, position + len(line)
            position += len(line) + 1
        return
    for sentence in iter_sentences(text):
        yield sentence.start, sentence.end


def _pieces(block: Block, chunk_words: int) -> Iterator[_Piece]:
    """A block whole when it fits the budget, else cut at sentence (code: line) boundaries,
    sentences packed greedily; a sentence over the budget is cut between words."""
    max_chars = chunk_words * CHARS_PER_WORD
    words = word_count(block.text)
    if words <= chunk_words and len(block.text) <= max_chars:
        if block.text.strip():
            yield _Piece(block, block.text, words)
        return
    text = block.text
    start = end = count = 0
    for unit_start, unit_end in _units(block):
        unit = text[unit_start:unit_end]
        unit_words = word_count(unit)
        if count and (count + unit_words > chunk_words or unit_end - start > max_chars):
            yield _Piece(block, text[start:end], count)
            count = 0
        if unit_words > chunk_words or len(unit) > max_chars:
            for part in _cut(unit, chunk_words, max_chars):
                yield _Piece(block, part, word_count(part))
            continue
        if not count:
            start = unit_start
        end = unit_end
        count += unit_words
    if count:
        yield _Piece(block, text[start:end], count)


def chunk_blocks(source: str, blocks: Iterable[Block], chunk_words: int, overlap_words: int) -> list[StructuredChunk]:
    """Pack `blocks` (in document order) into chunks; see the module's docstring. Blocks stream
    through a window of one chunk, so memory beyond the input is the chunks themselves."""
    chunk_words = max(1, chunk_words)
    max_chars = chunk_words * CHARS_PER_WORD
    chunks: list[StructuredChunk] = []
    window: deque[_Piece] = deque()
    words = chars = 0
    section: tuple[str, ...] | None = None

    def emit(count: int) -> None:
        chunks.append(_make_chunk(source, len(chunks), [window[i] for i in range(count)]))

    for block in blocks:
        block_section = _section(block)
        if window and block_section != section:  # a new top-level section starts a new chunk
            emit(len(window))
            window.clear()
            words = chars = 0
        section = block_section
        for piece in _pieces(block, chunk_words):
            size = len(piece.text) + len(SEPARATOR)
            if window and (words + piece.words > chunk_words or chars + size > max_chars):
                # A heading (or signature) at the end belongs with what follows it.
                held = 0
                while held < len(window) - 1 and window[-1 - held].block.kind in {"heading", "signature"}:
                    held += 1
                emit(len(window) - held)
                # Trailing blocks worth at most overlap_words repeat; always move on by one.
                kept = kept_words = 0
                while (
                    kept < len(window) - held - 1
                    and kept_words + window[-1 - held - kept].words <= overlap_words
                    and window[-1 - held - kept].block.kind not in {"heading", "signature"}
                ):
                    kept_words += window[-1 - held - kept].words
                    kept += 1
                for _ in range(len(window) - held - kept):
                    window.popleft()
                # The overlap is a nicety: it goes where the new piece would not fit with it.
                words = sum(p.words for p in window)
                chars = sum(len(p.text) + len(SEPARATOR) for p in window)
                while window and (words + piece.words > chunk_words or chars + size > max_chars):
                    dropped = window.popleft()
                    words -= dropped.words
                    chars -= len(dropped.text) + len(SEPARATOR)
            window.append(piece)
            words += piece.words
            chars += size
    if window:
        emit(len(window))
    return chunks


def _make_chunk(source: str, ordinal: int, pieces: list[_Piece]) -> StructuredChunk:
    parts: list[str] = []
    spans: list[ChunkBlock] = []
    position = 0
    for piece in pieces:
        if parts:
            position += len(SEPARATOR)
        parts.append(piece.text)
        block = piece.block
        spans.append(ChunkBlock(block.kind, position, position + len(piece.text), block.term, block.heading_path))
        position += len(piece.text)
    path = _own_path(pieces[0].block) if pieces else ()
    return StructuredChunk(source, ordinal, SEPARATOR.join(parts), path, tuple(spans))


def searchable_text(text: str, heading_path: Sequence[str]) -> str:
    """A chunk's text as it is embedded, indexed for terms and read: its innermost headings, then
    the text (which then starts `len(searchable_text) - len(text)` characters in)."""
    context = " > ".join(heading_path[-CONTEXT_HEADINGS:])
    return f"{context}{SEPARATOR}{text}" if context else text
