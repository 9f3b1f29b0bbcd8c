"""Markdown and MyST (Markdown for Sphinx) with markdown-it-py and its plugins: CommonMark plus
tables, definition lists, footnotes, front matter, MyST roles, targets and colon fences."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.admon import admon_plugin
from mdit_py_plugins.colon_fence import colon_fence_plugin
from mdit_py_plugins.deflist import deflist_plugin
from mdit_py_plugins.footnote import footnote_plugin
from mdit_py_plugins.front_matter import front_matter_plugin
from mdit_py_plugins.myst_blocks import myst_block_plugin
from mdit_py_plugins.myst_role import myst_role_plugin

from voicerag_cli.structure.blocks import Block, field_lines, role_text, squash, table_row_text
from voicerag_cli.structure.html import parse_html
from voicerag_cli.structure.names import ADMONITIONS, CODE, VERSION_NOTES, base_name, is_description, is_skipped

_DIRECTIVE_INFO = re.compile(r"^\{(?P<name>[^}\s]+)\}\s*(?P<args>.*)$", re.DOTALL)
_OPTION = re.compile(r"^:[\w-]+:(?:\s.*)?$")
# A line this long is no Markdown a person wrote (minified data, a dump), and markdown-it's
# emphasis and link matching can take quadratic time on one: the caller reads the file as plain text.
LINE_LIMIT = 20_000
_LONG_LINE = re.compile(rf"[^\n]{{{LINE_LIMIT},}}")
# Nested MyST directives deeper than this are read as prose (a guard against crafted input).
_MAX_DEPTH = 20


@functools.cache
def _markdown() -> MarkdownIt:
    return (
        MarkdownIt("commonmark", {"html": True})
        .enable(["table", "strikethrough"])
        .use(front_matter_plugin)
        .use(myst_block_plugin)
        .use(myst_role_plugin)
        .use(colon_fence_plugin)
        .use(admon_plugin)
        .use(deflist_plugin)
        .use(footnote_plugin)
    )


def inline_text(token: Token) -> str:
    """An inline token's words: inline code as written, a role as its text, links as their
    text, images as their alt text, HTML tags and footnote references gone. Source line breaks
    stay "\n" (field lines are told apart by them); callers squash."""
    parts: list[str] = []
    for child in token.children or []:
        kind = child.type
        if kind in {"text", "code_inline"}:
            parts.append(child.content)
        elif kind in {"softbreak", "hardbreak"}:
            parts.append("\n")
        elif kind == "myst_role":
            parts.append(role_text(str(child.meta.get("name", "")), child.content))
        elif kind == "image":
            parts.append(inline_text(child))
        elif kind in {"html_inline", "footnote_ref"} or kind.endswith(("_open", "_close")):
            continue
        else:
            parts.append(child.content)
    return _ANCHOR.sub("", "".join(parts))


def _split_options(content: str) -> str:
    """A MyST directive's body without its options (":caption: x" lines or a `---` YAML block)."""
    lines = content.split("\n")
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        if end is not None:
            return "\n".join(lines[end + 1 :])
    index = 0
    while index < len(lines) and _OPTION.match(lines[index].strip()):
        index += 1
    return "\n".join(lines[index:])


class _Reader:
    def __init__(self, base: tuple[str, ...], depth: int) -> None:
        self.base = base
        self.depth = depth
        self.levels: list[tuple[int, str]] = []
        self.blocks: list[Block] = []

    def path(self) -> tuple[str, ...]:
        return self.base + tuple(title for _, title in self.levels)

    def read(self, text: str) -> list[Block]:
        tokens = _markdown().parse(text)
        self._tokens(tokens)
        return self.blocks

    def _tokens(self, tokens: Sequence[Token]) -> None:
        context: list[str] = []  # open containers: list_item, blockquote, dd, footnote, th/td
        term = ""
        body: list[str] = []  # the paragraphs of a definition being read
        header: list[str] = []
        cells: list[str] = []
        in_head = False
        index = 0
        while index < len(tokens):
            token = tokens[index]
            kind = token.type
            if kind == "heading_open":
                title = squash(inline_text(tokens[index + 1])) if index + 1 < len(tokens) else ""
                title = _ATTRIBUTE_LIST.sub("", title).strip()
                self._heading(int(token.tag[1:]) if token.tag[1:].isdigit() else 1, title)
                index += 3
                continue
            if kind == "inline":
                raw = inline_text(token)
                text = squash(raw)
                if context and context[-1] in {"th", "td"}:
                    cells[-1] = text
                elif not text:
                    pass
                elif context and context[-1] == "dt":
                    term = text
                elif "dd" in context and context[-1] in {"dd"}:
                    body.append(text)
                elif "list_item" in context:
                    self._emit("list_item", text)
                else:
                    fields = field_lines(raw) if "footnote" not in context else None
                    if fields:
                        for name, value in fields:
                            self.blocks.append(Block("field", f"{name}: {value}", self.path(), name))
                    else:
                        self._emit("admonition" if "admonition" in context else "prose", text)
            elif kind == "admonition_open":  # Python-Markdown / MkDocs "!!! note": its title is a label
                context.append("admonition")
            elif kind == "admonition_title_open":
                index += 3
                continue
            elif kind == "admonition_close":
                if context:
                    context.pop()
            elif kind in {"th_open", "td_open"}:
                context.append(token.tag)
                cells.append("")
            elif kind in {"th_close", "td_close"}:
                if context:
                    context.pop()
            elif kind == "tr_open":
                cells = []
            elif kind == "thead_open":
                in_head = True
            elif kind == "thead_close":
                in_head = False
            elif kind == "tr_close":
                if in_head:
                    header = cells
                elif any(cells):
                    text = table_row_text(header, cells)
                    self.blocks.append(Block("table_row", text, self.path()))
            elif kind == "table_close":
                header = []
            elif kind == "list_item_open":
                context.append("list_item")
            elif kind in {"blockquote_open", "footnote_open", "dt_open", "dd_open"}:
                context.append(kind.removesuffix("_open"))
                if kind == "dd_open":
                    body = []
            elif kind in {"list_item_close", "blockquote_close", "footnote_close", "dt_close"}:
                if context:
                    context.pop()
            elif kind == "dd_close":
                if context:
                    context.pop()
                joined = " ".join(body)
                if term and joined:
                    self.blocks.append(Block("field", f"{term}: {joined}", self.path(), term))
                elif joined:
                    self._emit("prose", joined)
                body = []
            elif kind in {"fence", "colon_fence"}:
                self._fence(token)
            elif kind == "code_block":
                self._code(token.content)
            elif kind == "html_block":
                self.blocks.extend(parse_html(token.content, self.path()))
            index += 1

    def _emit(self, kind: str, text: str) -> None:
        self.blocks.append(Block(kind, text, self.path()))

    def _code(self, content: str) -> None:
        code = content.strip("\n")
        if code.strip():
            self.blocks.append(Block("code", code, self.path()))

    def _heading(self, level: int, title: str) -> None:
        while self.levels and self.levels[-1][0] >= level:
            self.levels.pop()
        if title:
            self.blocks.append(Block("heading", title, self.path()))
            self.levels.append((level, title))

    def _fence(self, token: Token) -> None:
        info = token.info.strip()
        directive = _DIRECTIVE_INFO.match(info)
        if directive is None:
            if token.type == "colon_fence":  # ::: without a directive name: a container
                self._nested(token.content, "prose")
            else:
                self._code(token.content)
            return
        name, args = directive.group("name"), squash(directive.group("args"))
        base = base_name(name)
        content = _split_options(token.content)
        if base in CODE:
            self._code(content)
        elif is_skipped(name):
            return
        elif base == "eval-rst":
            from voicerag_cli.structure.rst import parse_rst

            self.blocks.extend(parse_rst(content, self.path()))
        elif is_description(name):
            signature = args or base
            self.blocks.append(Block("signature", signature, self.path()))
            self._nested(content, "prose", extra=(signature,))
        elif base in ADMONITIONS:
            label = VERSION_NOTES.get(base)
            inner = self._read_nested(content, "admonition")
            if label:  # "Changed in version 2.0: Now faster." as Sphinx shows it
                version, _, rest = args.partition(" ")
                label = f"{label} {version}" if version else label
                if rest.strip():
                    inner.insert(0, Block("admonition", squash(rest), self.path()))
                if inner and inner[0].kind == "admonition":
                    inner[0] = Block("admonition", f"{label}: {inner[0].text}", self.path())
                else:
                    inner.insert(0, Block("admonition", f"{label}.", self.path()))
            elif args:
                self._emit("admonition", args)
            self.blocks.extend(inner)
        else:
            self._nested(content, "prose")

    def _nested(self, content: str, as_kind: str, extra: tuple[str, ...] = ()) -> None:
        self.blocks.extend(self._read_nested(content, as_kind, extra))

    def _read_nested(self, content: str, as_kind: str, extra: tuple[str, ...] = ()) -> list[Block]:
        """A directive's body read as Markdown under the current path; its prose becomes
        `as_kind` (an admonition's paragraphs are admonition blocks)."""
        path = self.path() + extra
        if self.depth >= _MAX_DEPTH:
            return [Block("prose", squash(p), path) for p in content.split("\n\n") if p.strip()]
        found = []
        for block in _Reader(path, self.depth + 1).read(content):
            if as_kind != "prose" and block.kind in {"prose", "list_item"}:
                block = Block(as_kind, block.text, block.heading_path, block.term)
            found.append(block)
        return found


# An anchor attribute list inside a line ("**`option`**{ #option }: ..."): markup, not words.
_ANCHOR = re.compile(r"\{:?\s*#[\w-]+(?:\s+[.#][\w-]+)*\s*\}")
# An attribute list after a heading ("## Usage { #usage }", Python-Markdown's "{: .note }"),
# which MkDocs sites use for anchors: markup, not words of the title.
_ATTRIBUTE_LIST = re.compile(r"\s*\{:?\s*(?:[#.][\w-]+|[\w-]+=\S+)(?:\s+(?:[#.][\w-]+|[\w-]+=\S+))*\s*\}\s*$")


def parse_markdown(text: str, heading_path: tuple[str, ...] = ()) -> list[Block]:
    """Blocks of a Markdown/MyST document. Raises on what it will not read (the caller falls back)."""
    if _LONG_LINE.search(text):
        raise ValueError("a line too long for Markdown")
    return _Reader(heading_path, 0).read(text)
