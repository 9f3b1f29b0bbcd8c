"""Markup out of answer text: reStructuredText, Markdown and HTML as found in documentation.

Answers are sentences cut from the indexed files, and those files are often Sphinx or Markdown
sources. `plain_text` turns a passage into prose: heading underlines, directives, `::`, roles
(``:exc:`ValueError``` -> ValueError), inline literals, emphasis, link syntax and tags go; the
words stay, code stays as written (``verify=False``), and line breaks inside a paragraph
become spaces. `spoken` then makes code sayable ("verify equals False").

Regex rules, not a parser: a passage is a fragment (a chunk may start mid-table or mid-list),
which real parsers reject, and answering must stay fast and dependency-free.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

# A reST section adornment: one punctuation character repeated (at least 3) on its own line.
_ADORNMENT = re.compile(r"^\s*([=\-~^\"'`#*+:._])\1{2,}\s*$")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}(\s+|$)")
_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_HEADING = re.compile(r"^(?:(``?)[^`]+\1\s*(?:[,/]|\bor\b|\band\b)?\s*)+$")  # "`-c`, `--code`"
# A MyST (Markdown Sphinx) directive: ```{note} ... ``` or :::{warning} ... :::, read like its
# reST form: prose, code, or skipped by the directive's name.
_MYST_FENCE = re.compile(r"^\s*(?P<fence>`{3,}|~{3,}|:{3,})\{(?P<name>[\w:-]+)\}(?P<args>.*)$")
_MYST_OPTION = re.compile(r"^\s*(?::[\w-]+:.*|---)\s*$")  # its options (":caption: x") or a YAML block's rule
# A directive (".. name:: args"), a label, a substitution definition, a footnote, or a comment.
_DIRECTIVE = re.compile(
    r"^\s*\.\.(?:\s+(?:(?P<name>[\w:-]+)::(?P<args>.*)|_[^:]+:.*|\|[^|]+\|\s+\w+::.*|\[[^\]]+\].*))?\s*$"
    r"|^\s*\.\.\s+(?![\w:-]+::|_|\||\[).*$"
)
# fmt: off
_ADMONITIONS = frozenset([
    "note", "warning", "tip", "important", "hint", "caution", "attention", "danger", "error", "seealso",
    "versionadded", "versionchanged", "deprecated", "admonition",
])
# Directives whose body is prose (read as text); every other directive's body is code
# (code-block, doctest, Sphinx extensions' example/run blocks...), except the skipped ones.
_PROSE_DIRECTIVES = _ADMONITIONS | frozenset([
    "tabs", "tab", "group-tab", "container", "topic", "sidebar", "only", "rubric", "glossary", "hlist",
    "centered", "table", "list-table", "figure", "rst-class", "class", "compound", "epigraph", "highlights",
    "pull-quote",
])
# Directives whose body is neither prose nor an example: tables of contents, API stubs, images.
_SKIPPED_DIRECTIVES = frozenset([
    "toctree", "image", "include", "index", "module", "currentmodule", "meta", "contents", "raw",
    "literalinclude", "default-role", "highlight", "sectionauthor", "codeauthor",
])
# Sphinx object descriptions (".. option:: --no-incremental", ".. function:: f(x)", domain
# prefixes dropped): the body is prose about the object the signature names, so the signature
# leads its first paragraph ("--no-incremental: This flag disables incremental mode ...").
_DESCRIPTIONS = frozenset([
    "option", "cmdoption", "envvar", "describe", "object", "function", "method", "attribute", "data",
    "exception", "decorator", "decoratormethod", "staticmethod", "classmethod", "property", "confval",
])
# fmt: on
_VERSION_NOTES = frozenset(["versionadded", "versionchanged", "deprecated"])
_OPTION_LINE = re.compile(r"^\s+:[\w-]+:")  # a directive's options (":noindex:", ":caption: x")
_FIELD = re.compile(r"^\s*:(?:param|type|returns?|rtype|raises?|members|show-inheritance|maxdepth)\b[^:]*:\s*")
_BULLET = re.compile(r"^(\s*)(?:[-*+\u2022]|\d+[.)]|#\.)(?:\s+|$)")
_TABLE_RULE = re.compile(r"^\s*[+|]?[-=+:| ]{3,}[+|]?\s*$")
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>(?!`)")  # not a role's target: {ref}`text <label>`
_BLOCK_TAG = re.compile(r"</?(?:p|div|br|li|ul|ol|h[1-6]|tr|table|pre|section|article|blockquote|dd|dt)\b[^<>]*>", re.I)
_PROMPT = re.compile(r"^(?:>>>|\.\.\.|\$)\s")  # interpreter and shell prompts in examples
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_PRE = re.compile(r"<pre\b[^>]*>(.*?)</pre>", re.DOTALL | re.IGNORECASE)
_ADJACENT_CITATIONS = re.compile(r"\]\s*\[(?=\d+\])")
# A line that is Python code, not prose: a passage can start inside an example, where nothing
# marks it as code any more (the chunk boundary cut off its "::" or directive).
_CODE_LINE = re.compile(
    r"^(?:@[\w.]+|def \w+\s*\(|class \w+\s*[(:]|import \w|from [\w.]+ import |return\b|"
    r"(?:if|elif|for|while|with|try|except|else|finally)\b.*:$|\w[\w.\[\]'\"]* [-+*/]?= |[\w.]+\(.*\)$|[)\]}]+,?$)"
)


# Inline rules, applied in order.
_INLINE: list[tuple[re.Pattern[str], str]] = [
    # reST escapes after inline markup: ":class:`Group`\s" is "Groups", "``x``\ y" is "xy"
    (re.compile(r"(?<=`)\\ "), ""),
    (re.compile(r"(?<=`)\\(?=\w)"), ""),
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # Markdown image: its alt text
    (re.compile(r"\[([^\]]+)\]\((?:[^()]|\([^)]*\))*\)"), r"\1"),  # [text](url)
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),  # [text][ref]
    # a page named by its path: :doc:`/guide/shell-completion` is "shell-completion"
    (re.compile(r"(?::doc:|\{doc\})`/?(?:[^`<>/]+/)*([^`<>/]+)`"), r"\1"),
    # reST roles: :exc:`ValueError`, :func:`~pkg.mod.f`, :ref:`text <label>`, :py:class:`X`
    (re.compile(r":(?:[\w-]+:)+`((?:[^`<\\]|\\.)*?)\s*<[^>`]*>`"), r"\1"),
    (re.compile(r":(?:[\w-]+:)+`~?(?:[\w.]*\.)?([^`]+?)`"), r"\1"),
    # MyST roles, as reST's: {ref}`text <label>`, {func}`~pkg.f`, {doc}`page`
    (re.compile(r"\{(?:[\w-]+:)*[\w-]+\}`([^`<]*?)\s*<[^>`]*>`"), r"\1"),
    (re.compile(r"\{(?:[\w-]+:)*[\w-]+\}`~?(?:[\w.]*\.)?([^`]+?)`"), r"\1"),
    (re.compile(r"`([^`<]+?)\s*<[^>`]+>`(?:__?)?"), r"\1"),  # `text <url>`_, and Sphinx's `name <target>`
    (re.compile(r"`([^`]+)`__?(?!\w)"), r"\1"),  # `text`_
    (re.compile(r"``([^`]+)``"), r"\1"),  # ``literal``
    (re.compile(r"`([^`]+)`"), r"\1"),  # `code` / `interpreted`
    (re.compile(r"(?<![\w*])\*\*(?=\S)(.+?)(?<=\S)\*\*(?![\w*])"), r"\1"),  # **strong**
    (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])"), r"\1"),  # *emphasis*
    # (no __strong__ rule: in Python docs __init__ is a name, not emphasis)
    (re.compile(r"(?<![\w_])_(?=[^\s_])(.+?)(?<=[^\s_])_(?![\w_])"), r"\1"),  # _emphasis_
    (re.compile(r"\|([\w -]+)\|(?:_{1,2})?"), r"\1"),  # |substitution|
    (re.compile(r"\s\[(?:\d+|#\w*|\*)\]_"), ""),  # footnote references [1]_
    (re.compile(r"^\[\^[^\]\s]+\]:\s*"), ""),  # a Markdown footnote's definition: "[^note]: The text."
    (re.compile(r"\[\^[^\]\s]+\]"), ""),  # ... and a reference to it
    (re.compile(r"(?<=\w)::(?=\s|$)"), ":"),  # "Example::" introduces a literal block
    (re.compile(r"(?:^|\s)::(?=\s|$)"), ""),
    (re.compile(r"<(https?://[^>\s]+)>"), r"\1"),  # <http://...> autolinks
    (re.compile(r"(?<!\\)\\([<>*_|`])"), r"\1"),  # reST escapes: "\*args", "cast(\<type\>)"
]


# Inline code as the source marks it: ``literal``, `code` (Markdown; reST's default role), a
# role (:func:`name`), <code>name</code>. Links (`text <url>`_, `text`_) are not code.
_LITERAL_SPANS = re.compile(
    r"``(?P<literal>[^`]+)``|(?P<role>(?::(?:[\w-]+:)+|\{(?:[\w-]+:)*[\w-]+\})`[^`]+`)|`[^`]*`__?(?!\w)|`(?P<code>[^`]+)`"
)
# Roles that link to a page or a section: their text is words, not code (a glossary {term}
# often is an API name: attrs marks `frozen` so).
_LINK_ROLES = frozenset(["ref", "doc", "pep", "rfc", "numref", "download", "abbr"])
_ROLE_NAME = re.compile(r"[:{](?:[\w-]+:)*([\w-]+)[:}]`")
_HTML_CODE = re.compile(r"<code\b[^>]*>([^<\n]*)</code>", re.IGNORECASE)  # as ``literal``, read by the rule above
_CODE_TAG = re.compile(r"</?code\b[^>]*>", re.IGNORECASE)


@dataclass(frozen=True)
class Block:
    """One paragraph of a passage: prose, code (an example, its lines joined), or a heading."""

    kind: str  # "prose", "code" or "heading"
    text: str
    item: bool = False  # a list item (prose that a bullet or number started)
    # The inline code the paragraph names, as its text shows it ("xfail", "{% set %}"): what a
    # how-to answer points at, though it may look like a plain word once its markup is gone.
    literals: tuple[str, ...] = ()


def plain_text(text: str, drop_headings: bool = True) -> str:
    """Prose from a reST/Markdown/HTML fragment: paragraphs separated by blank lines, the lines
    of a paragraph joined by spaces, code blocks kept (one paragraph per block, lines joined by
    "; " so statements stay apart). Headings are dropped (they never answer) unless told."""
    return "\n\n".join(block.text for block in blocks(text, drop_headings))


def answer_text(text: str) -> str:
    """A generated answer (an LLM writes Markdown) as plain text: emphasis, headings, lists, code
    fences and links out, its [n] citations kept, paragraphs apart by a blank line."""
    text = _ADJACENT_CITATIONS.sub("] [", text)  # "[1][2]" is two citations, not a reference link
    return plain_text(text, drop_headings=False)


def blocks(text: str, drop_headings: bool = True) -> list[Block]:
    """The paragraphs of a reST/Markdown/HTML fragment, each marked prose, code or heading."""
    text = _COMMENT.sub(" ", text)
    if _TAG.search(text):
        # <pre> holds an example: fenced, its lines stay lines (the fence makes it a code block)
        text = _PRE.sub(lambda m: "\n\n```\n" + _CODE_TAG.sub("", m.group(1)).strip("\n") + "\n```\n\n", text)
        text = _HTML_CODE.sub(r"``\1``", text)
        text = _BLOCK_TAG.sub("\n\n", text)  # block elements end a paragraph
        text = _TAG.sub(" ", text)
    text = html.unescape(text)
    lines = text.splitlines()
    out: list[Block] = []
    current: list[str] = []
    code = False  # inside a Markdown fence
    # Inside an indented body (after "::" or a directive): its kind, and the indentation of the
    # line that opened it: the body ends at the first line indented no deeper.
    body: str | None = None
    body_indent = 0

    adornments = _adornments(lines)
    fences = [index for index, line in enumerate(lines) if _FENCE.match(line) and index not in adornments]
    if _starts_in_fence([lines[index] for index in fences], lines):
        code = True
    listed = [False]  # whether the paragraph being read started with a bullet
    # An object description's signature, waiting to lead the first paragraph of its body.
    lead: list[str | None] = [None]
    options_allowed = False  # right after a directive: its option lines (":noindex:") are no text
    # Inside a MyST directive that is prose or skipped: the line that closes it, and which it is.
    myst_close: str | None = None
    myst_kind = "prose"

    def flush(kind: str = "prose") -> None:
        if not current:
            return
        if kind == "prose" and _CODE_LINE.match(current[0]):
            kind = "code"  # an example whose opening was cut off
        # inline markup may span source lines (**a\nb**, a role's text): joined first, then cleaned
        source = " ".join(current)
        joined = _join_code(current) if kind == "code" else _inline(source)
        joined = " ".join(joined.split())
        if joined:
            literals = tuple(literal_spans(source)) if kind == "prose" else ()
            if kind == "prose" and lead[0]:
                joined, literals = f"{lead[0]}: {joined}", (lead[0], *literals)
                lead[0] = None
            out.append(Block(kind, joined, item=kind == "prose" and listed[0], literals=literals))
        current.clear()
        listed[0] = False

    for index, raw in enumerate(lines):
        line = raw.rstrip()
        following = lines[index + 1] if index + 1 < len(lines) else ""
        indent = len(line) - len(line.lstrip())
        if myst_close is not None and line.strip() == myst_close:
            flush("code" if body == "code" else myst_kind)
            myst_close, body = None, None
            continue
        if myst_close is not None and myst_kind == "skip":
            continue
        myst = None if code else _MYST_FENCE.match(line)
        if myst:
            flush()
            name = myst.group("name").split(":")[-1]
            if name in _PROSE_DIRECTIVES or name == "eval-rst":
                myst_close, myst_kind = myst.group("fence"), "prose"
                if name in _ADMONITIONS and myst.group("args").strip():
                    current.append(myst.group("args").strip())
            elif name in _SKIPPED_DIRECTIVES or name.startswith("auto") or myst.group("fence").startswith(":"):
                myst_close, myst_kind = myst.group("fence"), "skip"
            else:  # ```{doctest}, ```{code-block} python: an example, closed by its fence
                code = True
            continue
        if myst_close is not None and _MYST_OPTION.match(line) and not current:
            continue
        if _FENCE.match(line) and index not in adornments:
            flush("code" if code else "prose")
            code = not code
            continue
        if code:
            if _MYST_OPTION.match(line) and not current:
                continue
            if line.strip():
                current.append(_PROMPT.sub("", line.strip()))
            continue
        if body is not None:
            if not line.strip():
                continue
            if indent > body_indent:
                if body == "code" and not (_OPTION_LINE.match(line) and not current):
                    current.append(_PROMPT.sub("", line.strip()))
                continue
            flush(body if body == "code" else "prose")
            body = None
        if _ADORNMENT.match(line):  # a heading's underline or overline
            flush()
            continue
        markdown = _MD_HEADING.match(line)
        if markdown or (index + 1 in adornments and following.strip() != myst_close):  # a heading
            flush()
            title = _MD_HEADING.sub("", line).strip("# ").strip() if markdown else line.strip()
            if not drop_headings:
                out.append(Block("heading", _inline(title)))
            # a heading that is only code names what its section describes (Black's "### `--diff`")
            lead[0] = " ".join(_inline(title).split()) if drop_headings and _CODE_HEADING.match(title) else None
            continue
        if options_allowed and _OPTION_LINE.match(raw) and not current:
            continue
        options_allowed = False
        directive = _DIRECTIVE.match(line)
        if directive:
            flush()
            lead[0] = None
            options_allowed = True
            name = (directive.group("name") or "").split(":")[-1] if directive.group("name") else None
            if name is None:  # a label, substitution, footnote or comment: its body is not text
                body, body_indent = "skip", indent
            elif name in _DESCRIPTIONS:
                lead[0] = " ".join(_inline(directive.group("args")).split()) or None
            elif name in _PROSE_DIRECTIVES:
                # read the body as text; ".. note:: The text." keeps the text
                args = directive.group("args").strip()
                if name in _VERSION_NOTES:  # ".. versionadded:: 4.0": the version is no prose
                    args = args.partition(" ")[2].strip()
                if name in _ADMONITIONS and args:
                    current.append(args)
            else:
                body, body_indent = (
                    ("skip" if name in _SKIPPED_DIRECTIVES or name.startswith("auto") else "code"),
                    indent,
                )
            continue
        if not line.strip() or _TABLE_RULE.match(line):
            flush()
            continue
        if _OPTION_LINE.match(line) and out == [] and not current:
            continue  # a directive's options at the very start of a passage
        line = _FIELD.sub("", line)
        bullet = _BULLET.match(line)
        if bullet:  # a list item starts its own paragraph
            flush()
            listed[0] = True
            line = line[bullet.end() :]
        stripped = line.strip().strip("|").strip() if line.strip().startswith("|") else line.strip()
        current.append(stripped)
        if stripped.endswith("::"):  # "Example::" / "::": an indented literal block follows
            flush()
            body, body_indent = "code", indent
    flush("code" if code or body == "code" else "prose")
    return out


def _adornments(lines: list[str]) -> set[int]:
    """The lines that underline or overline a reST heading. A run of ~ or ` is a Markdown fence
    too: it underlines only a title no longer than itself, and at least 4 long ("Example:" then
    ``` opens an example)."""
    found: set[int] = set()

    def adorns(run: str, title: str) -> bool:
        return bool(title) and (run[0] not in "~`" or len(run) >= max(4, len(title)))

    for index, line in enumerate(lines):
        run = line.strip()
        if not _ADORNMENT.match(line):
            continue
        if index > 0 and not _ADORNMENT.match(lines[index - 1]) and adorns(run, lines[index - 1].strip()):
            found.add(index)
        below = lines[index + 2].strip() if index + 2 < len(lines) else ""
        if below == run and adorns(run, lines[index + 1].strip()):  # an overline, the title, its underline
            found.update({index, index + 2})
    return found


def _starts_in_fence(fences: list[str], lines: list[str]) -> bool:
    """Whether a passage starts inside a fenced example whose opening fence the chunk boundary
    cut off: its first fence (of `fences`) is a bare one, followed by a fence that names a
    language (so the first closes an example), or the passage opens with a prompt or code."""
    infos = [fence.strip().strip("`~") for fence in fences]
    if not infos or infos[0]:
        return False
    if len(infos) > 1 and infos[1]:
        return True
    first = next((line.strip() for line in lines if line.strip()), "")
    return bool(_PROMPT.match(first) or _CODE_LINE.match(first))


def literal_spans(source: str) -> list[str]:
    """The inline code spans of a paragraph's source text, cleaned as its text shows them."""
    found: list[str] = []
    for match in _LITERAL_SPANS.finditer(source):
        if match.group("role"):
            role = _ROLE_NAME.match(match.group("role"))
            if role and role.group(1) in _LINK_ROLES:
                continue
            text = _inline(match.group("role"))
        elif match.group("literal") or match.group("code"):
            text = match.group("literal") or match.group("code")
        else:  # a link
            continue
        text = " ".join(text.split())
        if text and text not in found:
            found.append(text)
    return found


def _join_code(lines: list[str]) -> str:
    """Code lines as one line: "; " between statements, a space inside brackets and after a
    block opener ("def f(x): return x"), so that a call spread over lines reads as one."""
    joined = ""
    depth = 0
    for line in lines:
        if joined:
            joined += " " if depth > 0 or joined.endswith((":", ",", "(", "[", "{")) or line[:1] in ")]}" else "; "
        joined += line
        depth = max(0, depth + sum(line.count(c) for c in "([{") - sum(line.count(c) for c in ")]}"))
    return joined


def _inline(text: str) -> str:
    for pattern, replacement in _INLINE:
        text = pattern.sub(replacement, text)
    return text


# Code read aloud: operators as words, identifiers' underscores as spaces.
_SPOKEN: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\s*==\s*"), " equals "),
    (re.compile(r"\s*!=\s*"), " is not "),
    (re.compile(r"\s*->\s*"), " returns "),
    (re.compile(r"(?<=\w)\s*=\s*(?=[\w\"'(\[{-])"), " equals "),
    (re.compile(r"(?<=\w)\(\)"), ""),
    (re.compile(r"(?<=[A-Za-z0-9])_(?=[A-Za-z0-9])"), " "),
    (re.compile(r"[*#`|<>{}\[\]\\]+"), " "),
]


def spoken(text: str) -> str:
    """`plain_text` output as it should be read aloud."""
    for pattern, replacement in _SPOKEN:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())
