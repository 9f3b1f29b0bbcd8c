"""HTML (hand-written pages and Sphinx's output) with the standard library's tolerant parser:
it never rejects a page, keeps going past unclosed tags, and needs no dependency."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

from voicerag_cli.structure.blocks import Block, field_lines, squash, table_row_text
from voicerag_cli.structure.names import DESCRIPTIONS

_SKIPPED = frozenset(["script", "style", "nav", "head", "noscript", "template", "svg", "button", "select"])
_SKIPPED_CLASSES = frozenset(["headerlink", "viewcode-link", "admonition-title", "sphinxsidebar", "related"])
_VOID = frozenset(["br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "wbr"])
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
# Elements that end the text before them (a paragraph does not run into a list).
_BLOCK = frozenset(
    [*_HEADINGS, "p", "li", "dt", "dd", "pre", "table", "tr", "th", "td", "div", "section", "article",
     "blockquote", "ul", "ol", "dl", "main", "aside", "footer", "header", "figure", "figcaption", "body",
     "caption", "details", "summary", "form", "fieldset", "address", "hr"]
)  # fmt: skip
_ADMONITION_CLASSES = frozenset(
    ["admonition", "note", "warning", "tip", "important", "hint", "caution", "attention", "danger", "seealso"]
)


@dataclass
class _Open:
    tag: str
    classes: frozenset[str]
    skip: bool = False
    cells: list[str] = field(default_factory=list)  # a row's cells
    body: list[str] = field(default_factory=list)  # a dd's paragraphs, a cell's text
    term: str = ""  # a dl's last term
    signature: bool = False  # a dl that is a Sphinx object description


class _Reader(HTMLParser):
    def __init__(self, heading_path: tuple[str, ...]) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self.base = heading_path
        self.levels: list[tuple[int, str]] = []  # (heading level, title)
        self.signatures: list[tuple[int, str]] = []  # (depth of its dl in the stack, signature)
        self.stack: list[_Open] = []
        self.text: list[str] = []
        self.skipping = 0
        self.header: list[str] = []

    # --- where text goes --------------------------------------------------------------------
    def path(self) -> tuple[str, ...]:
        return self.base + tuple(title for _, title in self.levels) + tuple(sig for _, sig in self.signatures)

    def _innermost(self, tags: frozenset[str] | set[str]) -> _Open | None:
        for element in reversed(self.stack):
            if element.tag in tags:
                return element
        return None

    def _inside(self, tag: str) -> bool:
        return any(element.tag == tag for element in self.stack)

    def flush(self, closing: _Open | None = None) -> None:
        """Turn the text gathered so far into a block, by the element holding it."""
        raw = "".join(self.text)
        self.text.clear()
        holder = closing or (self._innermost(_BLOCK) if self.stack else None)
        tag = holder.tag if holder else "body"
        if tag == "pre" or self._inside("pre"):
            code = raw.strip("\n")
            if code.strip():
                self.blocks.append(Block("code", code, self.path()))
            return
        lines = "\n".join(squash(line) for line in raw.splitlines())
        text = squash(raw)
        if not text:
            return
        cell = self._innermost({"td", "th"})
        if cell is not None:
            cell.body.append(text)
            return
        if tag in _HEADINGS:
            self._heading(_HEADINGS[tag], text)
            return
        if tag == "dt":
            dl = self._innermost({"dl"})
            if dl is not None and dl.signature:
                self.blocks.append(Block("signature", text, self.path()))
                self.signatures.append((self.stack.index(dl), text))
            elif dl is not None:
                dl.term = text
            return
        dd = self._innermost({"dd"})
        if dd is not None and not self._dd_is_description(dd):
            dd.body.append(text)
            return
        if self._innermost({"li"}) is not None:
            self.blocks.append(Block("list_item", text, self.path()))
        elif any(element.classes & _ADMONITION_CLASSES for element in self.stack):
            self.blocks.append(Block("admonition", text, self.path()))
        else:
            fields = field_lines(lines)
            if fields:
                self.blocks.extend(Block("field", f"{t}: {v}", self.path(), t) for t, v in fields)
            else:
                self.blocks.append(Block("prose", text, self.path()))

    def _dd_is_description(self, dd: _Open) -> bool:
        index = self.stack.index(dd)
        parent = next((e for e in reversed(self.stack[:index]) if e.tag == "dl"), None)
        return parent is not None and parent.signature

    def _heading(self, level: int, title: str) -> None:
        while self.levels and self.levels[-1][0] >= level:
            self.levels.pop()
        self.signatures.clear()
        self.blocks.append(Block("heading", title, self.path()))
        self.levels.append((level, title))

    # --- parser events --------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = frozenset(" ".join(value or "" for name, value in attrs if name == "class").split())
        if tag in _VOID:
            if tag == "br":
                self.text.append("\n")
            elif tag == "hr":
                self.flush()
            return
        skip = tag in _SKIPPED or bool(classes & _SKIPPED_CLASSES)
        if tag in _BLOCK and not self.skipping:
            self.flush()
        element = _Open(tag, classes, skip)
        if tag == "dl":
            element.signature = bool(classes & DESCRIPTIONS)
        self.stack.append(element)
        if skip:
            self.skipping += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID or not any(element.tag == tag for element in self.stack):
            return  # a stray end tag
        while self.stack:  # close what was left open inside it
            element = self.stack[-1]
            if element.skip:
                self.skipping -= 1
            elif not self.skipping and element.tag in _BLOCK:
                self.flush(element)
                self._closed(element)
            self.stack.pop()
            if element.tag == tag:
                break

    def _closed(self, element: _Open) -> None:
        if element.tag in {"td", "th"}:
            row = self._innermost({"tr"})
            if row is not None and row is not element:
                row.cells.append(" ".join(element.body))
            if element.tag == "th" and row is not None:
                row.term = "header"
        elif element.tag == "tr":
            header = (element.term == "header" and all(c for c in element.cells)) or self._inside("thead")
            if header and not any(e.tag == "tbody" for e in self.stack):
                self.header = element.cells
            elif any(element.cells):
                text = table_row_text(self.header, element.cells)
                self.blocks.append(Block("table_row", text, self.path()))
        elif element.tag == "table":
            self.header = []
        elif element.tag == "dd":
            dl = self._innermost({"dl"})
            if dl is not None and dl is not element and not dl.signature:
                body = " ".join(element.body)
                if dl.term and body:
                    self.blocks.append(Block("field", f"{dl.term}: {body}", self.path(), dl.term))
                elif body:
                    self.blocks.append(Block("prose", body, self.path()))
            elif dl is not None and dl.signature:
                depth = self.stack.index(dl)
                while self.signatures and self.signatures[-1][0] >= depth:
                    self.signatures.pop()
        elif element.tag == "dl":
            depth = len(self.stack) - 1
            while self.signatures and self.signatures[-1][0] >= depth:
                self.signatures.pop()

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.text.append(data)

    def close(self) -> None:
        super().close()
        self.flush()


def parse_html(text: str, heading_path: tuple[str, ...] = ()) -> list[Block]:
    reader = _Reader(heading_path)
    reader.feed(text)
    reader.close()
    return reader.blocks
