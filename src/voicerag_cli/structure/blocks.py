"""Typed blocks: what a documentation file is made of once its markup is read."""

from __future__ import annotations

import re
from dataclasses import dataclass

KINDS = frozenset(["heading", "prose", "code", "list_item", "field", "table_row", "admonition", "signature"])


@dataclass(frozen=True)
class Block:
    """One unit of a document. `text` is plain text (markup gone, a paragraph's lines joined by
    spaces; code keeps its lines). `heading_path` names the sections the block sits in (a
    heading's or a signature's own title is not in its path; the blocks under it have it as
    their last element). `term` is a field's term ("Default", a definition-list term)."""

    kind: str
    text: str
    heading_path: tuple[str, ...]
    term: str = ""


def squash(text: str) -> str:
    """Whitespace runs (line breaks included) as single spaces."""
    return " ".join(text.split())


# "Default: 4", "Type: int", "Environment variable: FOO": a short capitalised term, a colon, a value.
_FIELD_LINE = re.compile(r"^(?P<term>[A-Z][\w ./()-]{0,40}?)\s*:\s+(?P<value>\S.*)$")
_FIELD_TERM_WORDS = 4
_FIELD_VALUE_WORDS = 40
# Labels that open a remark, not a field: "Note: ..." is a sentence.
_NOT_FIELD_TERMS = frozenset(
    ["note", "notes", "warning", "tip", "hint", "important", "caution", "danger", "example", "examples", "see also"]
)


def field_lines(text: str) -> list[tuple[str, str]] | None:
    """The (term, value) pairs of a paragraph every line of which is a `Term: value` field line
    ("Default: 4" under a setting's heading), else None. `text` keeps its source line breaks."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    found = []
    for line in lines:
        match = _FIELD_LINE.match(line)
        if match is None:
            return None
        term, value = match.group("term").strip(), match.group("value").strip()
        if (
            len(term.split()) > _FIELD_TERM_WORDS
            or term.lower() in _NOT_FIELD_TERMS
            or len(value.split()) > _FIELD_VALUE_WORDS
            or "://" in line[: match.end("term") + 3]
        ):
            return None
        found.append((term, value))
    return found


def role_text(name: str, text: str) -> str:
    """What a Sphinx/MyST role shows: its title when it has one (`title <target>`), else the
    target, `~` shortening a dotted name to its last part, a page reference to its last path
    component (the page's title is not known here), `!` (no link) dropped."""
    text = text.strip()
    titled = re.fullmatch(r"(?s)(.*?\S)\s*<([^<>]*)>", text)
    if titled:
        return squash(titled.group(1))
    text = text.lstrip("!").removeprefix(".")  # "!": no link; ".Session": a relative target
    if text.startswith("~"):
        text = text[1:].rsplit(".", 1)[-1]
    if name.rsplit(":", 1)[-1] == "doc":
        text = text.rstrip("/").rsplit("/", 1)[-1]
    return squash(text)


def table_row_text(header: list[str], cells: list[str]) -> str:
    """A table row as "header1: cell1; header2: cell2" (empty cells left out), or its cells
    joined by "; " when the table has no header (or one of another width)."""
    if header and len(header) == len(cells):
        return "; ".join(f"{h}: {c}" if h else c for h, c in zip(header, cells, strict=True) if c)
    return "; ".join(c for c in cells if c)
