"""A chunk's layout (its heading path and its blocks' kinds and spans) as stored text.

Stores keep it beside the chunk's text, so that answers read the structure found at index time
instead of parsing markup again. Compact JSON: one small array per block, a block's own heading
path only where it differs from the chunk's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from voicerag_cli.structure.blocks import KINDS
from voicerag_cli.structure.chunks import ChunkBlock


def dump_layout(heading_path: Sequence[str], blocks: Sequence[ChunkBlock]) -> str:
    chunk_path = list(heading_path)
    rows = []
    for block in blocks:
        row: list[object] = [block.kind, block.start, block.end, block.term]
        if list(block.heading_path) != chunk_path:
            row.append(list(block.heading_path))
        rows.append(row)
    return json.dumps({"h": chunk_path, "b": rows}, ensure_ascii=False, separators=(",", ":"))


def load_layout(text: str | None, length: int) -> tuple[tuple[str, ...], tuple[ChunkBlock, ...]]:
    """The heading path and blocks stored as `text` for a chunk of `length` characters; nothing
    (empty path, no blocks) for an index from before layouts or a malformed value, whose chunk
    then reads as plain paragraphs."""
    if not text:
        return (), ()
    try:
        data = json.loads(text)
        path = tuple(str(h) for h in data["h"])
        blocks = []
        for row in data["b"]:
            kind, start, end, term = str(row[0]), int(row[1]), int(row[2]), str(row[3])
            own = tuple(str(h) for h in row[4]) if len(row) > 4 else path
            if kind not in KINDS or not 0 <= start <= end <= length:
                return path, ()
            blocks.append(ChunkBlock(kind, start, end, term, own))
        return path, tuple(blocks)
    except (ValueError, KeyError, TypeError, IndexError):
        return (), ()
