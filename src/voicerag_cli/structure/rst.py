"""reStructuredText with docutils, made to read Sphinx sources: directives and roles docutils
does not know degrade to their content (never to errors or raw markup), object descriptions
become a signature then their body, and docutils reports nothing and reads no other file."""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from docutils import nodes, utils
from docutils.core import publish_doctree
from docutils.parsers.rst import Directive, directives, roles

from voicerag_cli.structure.blocks import Block, field_lines, role_text, squash, table_row_text
from voicerag_cli.structure.names import ADMONITIONS, CODE, VERSION_NOTES, base_name, is_description, is_skipped

_SETTINGS = {
    "report_level": 5,
    "halt_level": 5,
    "warning_stream": io.StringIO(),  # replaced per parse: nothing reaches stderr
    "file_insertion_enabled": False,
    "raw_enabled": False,
    "traceback": True,  # an internal error raises (the caller falls back) instead of sys.exit
    "doctitle_xform": False,  # keep the document title as a section: it heads the path
    "sectsubtitle_xform": False,
    "docinfo_xform": False,  # a leading field list stays a field list
    "syntax_highlight": "none",  # no Pygments lexing of code blocks
    "input_encoding": "unicode",
    "character_level_inline_markup": False,
    "pep_references": False,
    "rfc_references": False,
    "embed_stylesheet": False,
    "smart_quotes": False,
    "id_prefix": "",
    "auto_id_prefix": "%",
}
# Lines longer than this are no reST a person wrote (minified data, a dump): the caller reads
# such a file as plain text, as docutils would reject it.
LINE_LIMIT = 10_000


class _Signature(nodes.Element):
    """A Sphinx object description: `signature` attribute, body children."""


class _Admonition(nodes.Element):
    """An admonition docutils does not know (seealso, versionadded, todo...): its body."""


class _Skipped(nodes.Element):
    pass


_OPTION_LINE = re.compile(r"^:[\w.-]+:(?:\s.*)?$")
_OPTION_VALUE = re.compile(r"^:([\w.-]+):\s+(.*)$")
# A description's options that are about the page, not the object.
_NOISE_OPTIONS = frozenset(
    ["module", "canonical", "noindex", "no-index", "nocontentsentry", "no-contents-entry", "noindexentry",
     "no-index-entry", "no-typesetting", "synopsis", "platform", "class", "name", "members", "undoc-members",
     "show-inheritance", "member-order", "exclude-members", "special-members", "private-members",
     "inherited-members", "tags", "tickets", "changeset", "references", "versions", "version"]
)  # fmt: skip


class _Fallback(Directive):
    """Any directive: what it becomes is chosen by its name (`self.name`). It declares no
    options, so docutils leaves them in the argument block (Sphinx directives have options
    docutils has never heard of, and docutils' option parsing costs a state machine each);
    `_arguments` drops them."""

    required_arguments = 0
    optional_arguments = 1
    final_argument_whitespace = True
    has_content = True

    def _arguments(self) -> list[str]:
        text = self.arguments[0] if self.arguments else ""
        return [line.strip() for line in text.split("\n") if line.strip() and not _OPTION_LINE.match(line.strip())]

    def _options(self) -> list[tuple[str, str]]:
        """The options that state facts about a described object (":default: 30", ":type: int")."""
        text = self.arguments[0] if self.arguments else ""
        found = []
        for line in text.split("\n"):
            match = _OPTION_VALUE.match(line.strip())
            if match and match.group(1).lower() not in _NOISE_OPTIONS and match.group(2).strip():
                found.append((match.group(1), match.group(2).strip()))
        return found

    def _paragraph(self, text: str) -> nodes.paragraph:
        """Text from a directive's argument line, its inline markup read."""
        children, _ = self.state.inline_text(text, self.lineno)
        return nodes.paragraph(text, "", *children)

    def run(self) -> list[nodes.Node]:
        name = self.name.lower()
        base = base_name(name)
        arguments = self._arguments()
        args = "\n".join(arguments)
        if base in CODE:
            code = "\n".join(self.content)
            return [nodes.literal_block(code, code)] if code.strip() else []
        if is_skipped(name):
            return []
        if is_description(name):
            node = _Signature()
            node["signature"] = arguments or [base]
            options = self._options()
            if options:  # ":default: 30" is the fact "Default: 30": a field list leads the body
                fields = nodes.field_list()
                for name, value in options:
                    term = name[:1].upper() + name[1:]
                    fields += nodes.field(
                        "", nodes.field_name(term, term), nodes.field_body("", self._paragraph(value))
                    )
                node += fields
            self.state.nested_parse(self.content, self.content_offset, node)
            return [node]
        if base in ADMONITIONS:
            node = _Admonition()
            label = VERSION_NOTES.get(base)
            lead = squash(args)
            if label:
                version, _, lead = lead.partition(" ")
                node["label"] = f"{label} {version}" if version else label
            if lead:  # ".. seealso:: Other things." / ".. versionadded:: 2.0 Text.": the text leads
                node += self._paragraph(lead)
            self.state.nested_parse(self.content, self.content_offset, node)
            return [node]
        if _looks_like_code(name, list(self.content)):
            code = "\n".join(self.content)
            return [nodes.literal_block(code, code)] if code.strip() else []
        node = nodes.container()
        self.state.nested_parse(self.content, self.content_offset, node)
        return [node]


# An unknown directive whose body is an example: its name says so (click:example, runblock), or
# its first line is code, not a sentence.
_CODE_NAME = re.compile(r"example|code|snippet|program|shell|console|repl|output|run|exec|cell")
_CODE_START = re.compile(
    r"^(?:@[\w.]+|def \w+\s*\(|async def |class \w+\s*[(:]|import \w|from [\w.]+ import |>>> |\$ |"
    r"[\w.]+\(.*[(,]?$|\w[\w.\[\]'\"]* = )"
)


def _looks_like_code(name: str, lines: list[str]) -> bool:
    first = next((line.strip() for line in lines if line.strip()), "")
    return bool(first) and (bool(_CODE_NAME.search(name)) or _CODE_START.match(first) is not None)


# docutils' own directives that Sphinx docs mean otherwise (".. class:: Foo" is a Python class)
# or that would read other files or produce page furniture, and Sphinx's admonitions.
_DOCUTILS_ADMONITIONS = frozenset(
    ["note", "warning", "tip", "important", "hint", "caution", "attention", "danger", "error", "admonition"]
)
_OVERRIDDEN = (
    frozenset(["class", "include", "raw", "image", "figure", "contents", "sectnum"])
    | CODE
    | (ADMONITIONS - _DOCUTILS_ADMONITIONS)
)


class _AnyOptions(dict[str, Any]):
    """An option spec that also takes the options Sphinx and its extensions add to docutils'
    own directives (":collapsible:" on a note), which docutils would reject with the body."""

    def __missing__(self, key: str) -> Any:
        return directives.unchanged


_tolerant: dict[type[Directive], type[Directive]] = {}


def _tolerant_directive(found: type[Directive]) -> type[Directive]:
    if found not in _tolerant:
        spec = _AnyOptions(found.option_spec or {})
        spec.setdefault("class", directives.class_option)  # never empty: docutils reads no options then
        _tolerant[found] = type(found.__name__, (found,), {"option_spec": spec})
    return _tolerant[found]


def _fallback_role(
    role: str,
    rawtext: str,
    text: str,
    lineno: int,
    inliner: object,
    options: dict[str, Any] | None = None,
    content: list[str] | None = None,
) -> tuple[list[nodes.Node], list[nodes.system_message]]:
    shown = role_text(role, utils.unescape(text))
    return [nodes.literal(rawtext, shown)], []


_lock = threading.Lock()


@contextmanager
def _sphinx_lookups() -> Iterator[None]:
    """While parsing, directive and role lookups fall back to the readers above. The lookups
    are module functions of docutils, so they are swapped for the parse and restored after;
    the lock keeps two threads' parses from restoring each other's."""
    directive_lookup, role_lookup = directives.directive, roles.role

    def directive(name: str, language: Any, document: Any) -> tuple[type[Directive] | None, list[Any]]:
        lowered = name.lower()
        if lowered in _OVERRIDDEN:
            return _Fallback, []
        found, messages = directive_lookup(name, language, document)
        if found is None:
            return _Fallback, []
        return _tolerant_directive(found), messages

    def role(name: str, language: Any, lineno: int, reporter: Any) -> tuple[Any, list[Any]]:
        found, messages = role_lookup(name, language, lineno, reporter)
        return (found or _fallback_role), ([] if found is None else messages)

    with _lock:
        directives.directive, roles.role = directive, role
        try:
            yield
        finally:
            directives.directive, roles.role = directive_lookup, role_lookup


_LONG_LINE = re.compile(rf"[^\n]{{{LINE_LIMIT},}}")


def too_long_lines(text: str) -> bool:
    return _LONG_LINE.search(text) is not None


def parse_rst(text: str, heading_path: tuple[str, ...] = ()) -> list[Block]:
    """Blocks of a reST document. Raises on what docutils cannot read (the caller falls back)."""
    if too_long_lines(text):
        raise ValueError("a line too long for reStructuredText")
    settings = dict(_SETTINGS, warning_stream=io.StringIO(), line_length_limit=LINE_LIMIT)
    with _sphinx_lookups():
        document = publish_doctree(text, settings_overrides=settings)
    walker = _Walker()
    walker.children(document, heading_path)
    return walker.blocks


def _inline(node: nodes.Node) -> str:
    """A text element's words, markup gone; footnote references and inline targets' markers go."""
    if isinstance(node, nodes.Text):
        return str(node.astext())  # resolves docutils' escape markers
    if isinstance(node, nodes.footnote_reference | nodes.citation_reference | nodes.system_message):
        return ""
    if isinstance(node, nodes.image):
        return str(node.get("alt", ""))
    if isinstance(node, nodes.raw | nodes.comment):
        return ""
    if isinstance(node, nodes.problematic):  # markup docutils could not read: its words
        return re.sub(r"^[|`*_]+|[|`*_]+$", "", node.astext())
    if isinstance(node, nodes.Element):
        return "".join(_inline(child) for child in node.children)
    return ""


_TEXT_ELEMENTS = (nodes.paragraph, nodes.rubric, nodes.line)


class _Walker:
    def __init__(self) -> None:
        self.blocks: list[Block] = []

    def emit(self, kind: str, text: str, path: tuple[str, ...], term: str = "") -> None:
        if text:
            self.blocks.append(Block(kind, text, path, term))

    def children(self, node: nodes.Element, path: tuple[str, ...], as_kind: str = "prose") -> None:
        for child in node.children:
            self.element(child, path, as_kind)

    def paragraph(self, node: nodes.Element, path: tuple[str, ...], as_kind: str) -> None:
        raw = _inline(node)
        if as_kind == "prose":
            fields = field_lines(raw)
            if fields:
                for term, value in fields:
                    self.emit("field", f"{term}: {value}", path, term)
                return
        self.emit(as_kind, squash(raw), path)

    def element(self, node: nodes.Node, path: tuple[str, ...], as_kind: str) -> None:
        if isinstance(node, nodes.section):
            title = next((c for c in node.children if isinstance(c, nodes.title)), None)
            name = squash(_inline(title)) if title is not None else ""
            if name:
                self.emit("heading", name, path)
            inner = (*path, name) if name else path
            for child in node.children:
                if child is not title:
                    self.element(child, inner, "prose")
        elif isinstance(node, nodes.paragraph | nodes.rubric):
            self.paragraph(node, path, as_kind)
        elif isinstance(node, nodes.literal_block | nodes.doctest_block | nodes.math_block):
            code = node.astext().strip("\n")
            if code.strip():
                self.emit("code", code, path)
        elif isinstance(node, nodes.bullet_list | nodes.enumerated_list):
            for item in node.children:
                self.children(item, path, "admonition" if as_kind == "admonition" else "list_item")
        elif isinstance(node, nodes.definition_list | nodes.field_list):
            for item in node.children:
                self.definition(item, path)
        elif isinstance(node, nodes.option_list):
            for item in node.children:
                self.option(item, path)
        elif isinstance(node, nodes.table):
            self.table(node, path)
        elif isinstance(node, _Signature):
            signatures: list[str] = [squash(s) for s in node["signature"]]
            for signature in signatures:
                self.emit("signature", signature, path)
            self.children(node, (*path, signatures[0]))
        elif isinstance(node, _Admonition):
            rest = list(node.children)
            if node.get("label"):  # "Changed in version 2.0: Now faster." as Sphinx shows it
                if rest and isinstance(rest[0], nodes.paragraph):
                    self.emit("admonition", f"{node['label']}: {squash(_inline(rest.pop(0)))}", path)
                else:
                    self.emit("admonition", f"{node['label']}.", path)
            for child in rest:
                self.element(child, path, "admonition")
        elif isinstance(node, nodes.Admonition):
            self.children(node, path, "admonition")
        elif isinstance(node, nodes.title):  # a generic admonition's or a topic's title
            self.emit("admonition" if as_kind == "admonition" else "prose", squash(_inline(node)), path)
        elif isinstance(node, nodes.line_block):
            lines = [squash(_inline(line)) for line in node.findall(nodes.line)]
            self.emit(as_kind, " ".join(line for line in lines if line), path)
        elif isinstance(node, nodes.footnote | nodes.citation):
            for child in node.children:
                if not isinstance(child, nodes.label):
                    self.element(child, path, as_kind)
        elif isinstance(
            node,
            nodes.comment | nodes.target | nodes.substitution_definition | nodes.system_message | nodes.raw
            | nodes.image | nodes.figure | nodes.pending | nodes.transition | nodes.decoration | nodes.attribution
            | nodes.label | _Skipped | nodes.Invisible,
        ) or (isinstance(node, nodes.topic) and "contents" in node.get("classes", [])):  # fmt: skip
            return
        elif isinstance(node, nodes.Element):  # containers, block quotes, topics, sidebars, compounds
            self.children(node, path, as_kind)

    def definition(self, item: nodes.Node, path: tuple[str, ...]) -> None:
        """A definition-list item or a field-list field: a field block, then any code its body holds."""
        if not isinstance(item, nodes.Element):
            return
        heads = [c for c in item.children if isinstance(c, nodes.term | nodes.field_name | nodes.classifier)]
        term = " ".join(squash(_inline(h)) for h in heads if isinstance(h, nodes.term | nodes.field_name))
        classifiers = [squash(_inline(h)) for h in heads if isinstance(h, nodes.classifier)]
        if classifiers:
            term = f"{term} ({', '.join(classifiers)})"
        bodies = [c for c in item.children if isinstance(c, nodes.definition | nodes.field_body)]
        self.described(term, bodies, path)

    def option(self, item: nodes.Node, path: tuple[str, ...]) -> None:
        if not isinstance(item, nodes.Element):
            return
        groups = [c for c in item.children if isinstance(c, nodes.option_group)]
        term = ", ".join(squash(g.astext()) for g in groups)
        bodies = [c for c in item.children if isinstance(c, nodes.description)]
        self.described(term, bodies, path)

    def described(self, term: str, bodies: list[nodes.Element], path: tuple[str, ...]) -> None:
        words: list[str] = []
        later = _Walker()
        for body in bodies:
            for child in body.children:
                if isinstance(child, _TEXT_ELEMENTS):
                    words.append(squash(_inline(child)))
                elif isinstance(child, nodes.bullet_list | nodes.enumerated_list):
                    words.extend(squash(_inline(p)) for p in child.findall(nodes.paragraph))
                else:
                    later.element(child, path, "prose")
        body_text = " ".join(w for w in words if w)
        if term and body_text:
            self.emit("field", f"{term}: {body_text}", path, term)
        elif term:
            self.emit("field", term, path, term)
        else:
            self.emit("prose", body_text, path)
        self.blocks.extend(later.blocks)

    def table(self, node: nodes.Element, path: tuple[str, ...]) -> None:
        for group in node.findall(nodes.tgroup):
            header: list[str] = []
            for head in group.findall(nodes.thead):
                for row in head.findall(nodes.row):
                    header = [squash(_inline(entry)) for entry in row.children]
            for body in group.findall(nodes.tbody):
                for row in body.children:
                    cells = [squash(_inline(entry)) for entry in row.children]
                    if not any(cells):
                        continue
                    text = table_row_text(header, cells)
                    self.emit("table_row", text, path)
