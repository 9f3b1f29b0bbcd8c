"""Plain text (.txt and anything without a reader): paragraphs become prose."""

from __future__ import annotations

import re
from collections.abc import Iterator

from voicerag_cli.structure.blocks import Block

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n")


def iter_paragraphs(text: str) -> Iterator[str]:
    """Paragraphs one at a time (split at blank lines), so a huge file is not copied into a list
    of pieces; the joined lines of each are single-spaced."""
    position = 0
    for match in _PARAGRAPH_BREAK.finditer(text):
        paragraph = " ".join(text[position : match.start()].split())
        if paragraph:
            yield paragraph
        position = match.end()
    paragraph = " ".join(text[position:].split())
    if paragraph:
        yield paragraph


def parse_plain(text: str, heading_path: tuple[str, ...] = ()) -> list[Block]:
    """Every paragraph as prose. No field or heading guessing: a .txt file's `Key: value` lines
    are as likely a transcript or a log as a setting."""
    return [Block("prose", paragraph, heading_path) for paragraph in iter_paragraphs(text)]
