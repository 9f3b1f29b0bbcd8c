"""Split documents into overlapping chunks: a file's text read as structure (typed blocks) and
packed into chunks that follow its sections (`voicerag_cli.structure`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from voicerag_cli.structure import ChunkBlock, chunk_blocks, parse, searchable_text


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
    """A file's text read as structure by its `suffix` (".md", ".rst", ".html"; anything else as
    plain paragraphs) and packed into chunks that follow its sections. `start`/`end` locate each
    chunk in the blocks' text joined as the chunks join them."""
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
