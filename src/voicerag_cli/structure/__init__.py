"""Documents read as structure: whole files parsed into typed blocks (headings, prose, code,
list items, fields, table rows, admonitions, object signatures), and blocks packed into chunks
that follow sections. A shared low layer: the standard library, voicerag_cli.errors and
voicerag_cli.sentences, and its parsers (markdown-it-py, mdit-py-plugins, docutils) only.

`parse` never raises: a reader that fails on a file (or takes too long on it) gives way to the
plain-text reader, so one odd file never stops an index run."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from voicerag_cli.structure.blocks import KINDS, Block
from voicerag_cli.structure.chunks import ChunkBlock, StructuredChunk, chunk_blocks, searchable_text
from voicerag_cli.structure.plain import parse_plain

__all__ = [
    "KINDS",
    "READER_VERSION",
    "Block",
    "ChunkBlock",
    "StructuredChunk",
    "chunk_blocks",
    "parse",
    "searchable_text",
]

# Bump when a reader's output changes, so that stored indexes are re-read.
READER_VERSION = 2

MARKDOWN_SUFFIXES = frozenset([".md", ".markdown", ".mdown", ".mkd", ".myst"])
RST_SUFFIXES = frozenset([".rst", ".rest"])
HTML_SUFFIXES = frozenset([".html", ".htm", ".xhtml"])
MARKUP_SUFFIXES = MARKDOWN_SUFFIXES | RST_SUFFIXES | HTML_SUFFIXES  # read as structure; others are plain
# Beyond this size a file is read as plain text: a markup parser's pure-Python cost grows with
# the file, and a file this big is data or a dump, not a page a person wrote.
MAX_MARKUP_CHARS = 2_000_000
# A markup parse that runs longer than PARSE_SECONDS plus one second per CHARS_PER_SECOND
# characters (far slower than any real page parses) gives way to the plain reader: docutils
# and markdown-it have pathological inputs. Enforced where a timer signal can be used (the
# main thread); elsewhere the size and line-length limits are the guard.
PARSE_SECONDS = 2.0
CHARS_PER_SECOND = 25_000


class ParseTimeout(Exception):
    pass


@contextmanager
def _time_box(seconds: float) -> Iterator[None]:
    if (
        threading.current_thread() is not threading.main_thread()
        or not hasattr(signal, "setitimer")
        or signal.getitimer(signal.ITIMER_REAL)[0] > 0  # the caller's own timer is running: leave it be
    ):
        yield
        return

    def expired(signum: int, frame: object) -> None:
        raise ParseTimeout

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _reader(suffix: str) -> Callable[[str], list[Block]] | None:
    suffix = suffix.lower()
    if suffix in MARKDOWN_SUFFIXES:
        from voicerag_cli.structure.markdown import parse_markdown

        return parse_markdown
    if suffix in RST_SUFFIXES:
        from voicerag_cli.structure.rst import parse_rst

        return parse_rst
    if suffix in HTML_SUFFIXES:
        from voicerag_cli.structure.html import parse_html

        return parse_html
    return None


def parse(text: str, suffix: str, timeout: float | None = None) -> list[Block]:
    """The blocks of a file's text, read by its suffix (".md", ".rst", ".html"...; anything else
    is plain text). Never raises on bad input."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    reader = _reader(suffix)
    if reader is not None and len(text) <= MAX_MARKUP_CHARS:
        try:
            seconds = timeout if timeout is not None else PARSE_SECONDS + len(text) / CHARS_PER_SECOND
            with _time_box(seconds):
                return reader(text)
        except (Exception, RecursionError):
            pass  # malformed or pathological: the plain reader below still gives the words
    return parse_plain(text)
