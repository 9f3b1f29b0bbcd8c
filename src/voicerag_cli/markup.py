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

# A reST section adornment: one punctuation character repeated (at least 3) on its own line.
_ADORNMENT = re.compile(r"^\s*([=\-~^\"'`#*+:._])\1{2,}\s*$")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}(\s+|$)")
_FENCE = re.compile(r"^\s*(```|~~~)")
_DIRECTIVE = re.compile(r"^\s*\.\.\s+(?:[\w:-]+::.*|_[^:]+:.*|\|[^|]+\|\s+\w+::.*|\[[^\]]+\].*)$")
_CODE_DIRECTIVE = re.compile(r"^\s*\.\.\s+(?:code-block|code|sourcecode|literalinclude|doctest)::")
_ADMONITION = re.compile(
    r"^\s*\.\.\s+(?:note|warning|tip|important|hint|caution|attention|danger|error|seealso|versionadded|"
    r"versionchanged|deprecated|admonition)::(.*)$"
)
_FIELD = re.compile(r"^\s*:(?:param|type|returns?|rtype|raises?|members|show-inheritance|maxdepth)\b[^:]*:\s*")
_BULLET = re.compile(r"^(\s*)(?:[-*+\u2022]|\d+[.)]|#\.)\s+")
_TABLE_RULE = re.compile(r"^\s*[+|]?[-=+:| ]{3,}[+|]?\s*$")
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_BLOCK_TAG = re.compile(r"</?(?:p|div|br|li|ul|ol|h[1-6]|tr|table|pre|section|article|blockquote|dd|dt)\b[^<>]*>", re.I)
_PROMPT = re.compile(r"^(?:>>>|\.\.\.|\$)\s")  # interpreter and shell prompts in examples
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)

# Inline rules, applied in order.
_INLINE: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # Markdown image: its alt text
    (re.compile(r"\[([^\]]+)\]\((?:[^()]|\([^)]*\))*\)"), r"\1"),  # [text](url)
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),  # [text][ref]
    # reST roles: :exc:`ValueError`, :func:`~pkg.mod.f`, :ref:`text <label>`, :py:class:`X`
    (re.compile(r":(?:[\w-]+:)+`([^`<]*?)\s*<[^>`]*>`"), r"\1"),
    (re.compile(r":(?:[\w-]+:)+`~?(?:[\w.]*\.)?([^`]+?)`"), r"\1"),
    (re.compile(r"`([^`<]+?)\s*<[^>`]+>`__?"), r"\1"),  # `text <url>`_
    (re.compile(r"`([^`]+)`__?(?!\w)"), r"\1"),  # `text`_
    (re.compile(r"``([^`]+)``"), r"\1"),  # ``literal``
    (re.compile(r"`([^`]+)`"), r"\1"),  # `code` / `interpreted`
    (re.compile(r"(?<![\w*])\*\*(?=\S)(.+?)(?<=\S)\*\*(?![\w*])"), r"\1"),  # **strong**
    (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])"), r"\1"),  # *emphasis*
    # (no __strong__ rule: in Python docs __init__ is a name, not emphasis)
    (re.compile(r"(?<![\w_])_(?=[^\s_])(.+?)(?<=[^\s_])_(?![\w_])"), r"\1"),  # _emphasis_
    (re.compile(r"\|([\w -]+)\|(?:_{1,2})?"), r"\1"),  # |substitution|
    (re.compile(r"\s\[(?:\d+|#\w*|\*)\]_"), ""),  # footnote references [1]_
    (re.compile(r"(?<=\w)::(?=\s|$)"), ":"),  # "Example::" introduces a literal block
    (re.compile(r"(?:^|\s)::(?=\s|$)"), ""),
    (re.compile(r"<(https?://[^>\s]+)>"), r"\1"),  # <http://...> autolinks
]


def plain_text(text: str, drop_headings: bool = True) -> str:
    """Prose from a reST/Markdown/HTML fragment: paragraphs separated by blank lines, the lines
    of a paragraph joined by spaces, code blocks kept (one paragraph per block, lines joined by
    "; " so statements stay apart). Headings are dropped (they never answer) unless told."""
    text = _COMMENT.sub(" ", text)
    if _TAG.search(text):
        text = _BLOCK_TAG.sub("\n\n", text)  # block elements end a paragraph
        text = _TAG.sub(" ", text)
    text = html.unescape(text)
    lines = text.splitlines()
    paragraphs: list[str] = []
    current: list[str] = []
    code = False

    def flush(joiner: str = " ") -> None:
        if current:
            paragraphs.append(joiner.join(current))
            current.clear()

    literal = False  # inside an indented block introduced by "::" or a code directive
    for index, raw in enumerate(lines):
        line = raw.rstrip()
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if _FENCE.match(line):
            flush("; " if code else " ")
            code = not code
            continue
        if code:
            if line.strip():
                current.append(_PROMPT.sub("", line.strip()))
            continue
        if literal:
            if not line.strip():
                continue
            if line[:1] in " \t":
                current.append(_PROMPT.sub("", line.strip()))
                continue
            flush("; ")
            literal = False
        if _ADORNMENT.match(line):  # a heading's underline or overline
            flush()
            continue
        if line.strip() and _ADORNMENT.match(following):  # a heading: its underline follows
            flush()
            if not drop_headings:
                paragraphs.append(_inline(line.strip()))
            continue
        if _MD_HEADING.match(line):
            flush()
            if not drop_headings:
                paragraphs.append(_inline(_MD_HEADING.sub("", line).strip("# ").strip()))
            continue
        if _DIRECTIVE.match(line):
            flush()
            literal = bool(_CODE_DIRECTIVE.match(line))
            admonition = _ADMONITION.match(line)
            if admonition and admonition.group(1).strip():  # ".. note:: The text." keeps the text
                current.append(_inline(admonition.group(1).strip()))
            continue
        if not line.strip() or _TABLE_RULE.match(line):
            flush()
            continue
        line = _FIELD.sub("", line)
        bullet = _BULLET.match(line)
        if bullet:  # a list item starts its own paragraph
            flush()
            line = line[bullet.end() :]
        stripped = line.strip().strip("|").strip() if line.strip().startswith("|") else line.strip()
        current.append(_inline(stripped))
        if stripped.endswith("::"):  # "Example::" / "::": an indented literal block follows
            flush()
            literal = True
    flush("; " if code or literal else " ")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())


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
