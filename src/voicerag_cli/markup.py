"""Generated answers as plain text, and plain text as it is read aloud.

Documents are read as structure at index time (`voicerag_cli.structure`); what is left here is
an LLM's answer, which arrives as Markdown: `answer_text` reads it with the same Markdown reader
and keeps its words, its code as written and its [n] citations. `spoken` then makes code sayable
("verify=False" -> "verify equals False").
"""

from __future__ import annotations

import re

_ADJACENT_CITATIONS = re.compile(r"\]\s*\[(?=\d+\])")


def answer_text(text: str) -> str:
    """A generated answer (an LLM writes Markdown) as plain text: emphasis, headings, lists, code
    fences and links out, its [n] citations kept, paragraphs apart by a blank line, an example's
    lines joined by "; "."""
    from voicerag_cli.structure import parse

    text = _ADJACENT_CITATIONS.sub("] [", text)  # "[1][2]" is two citations, not a reference link
    paragraphs = []
    for block in parse(text, ".md"):
        paragraphs.append(join_code(block.text) if block.kind == "code" else block.text)
    return "\n\n".join(p for p in paragraphs if p)


def join_code(code: str) -> str:
    """Code lines as one line: "; " between statements, a space inside brackets and after a
    block opener ("def f(x): return x"), so that a call spread over lines reads as one."""
    joined = ""
    depth = 0
    for line in (raw.strip() for raw in code.splitlines()):
        if not line:
            continue
        if joined:
            joined += " " if depth > 0 or joined.endswith((":", ",", "(", "[", "{")) or line[:1] in ")]}" else "; "
        joined += line
        depth = max(0, depth + sum(line.count(c) for c in "([{") - sum(line.count(c) for c in ")]}"))
    return joined


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
    """Plain text as it should be read aloud."""
    for pattern, replacement in _SPOKEN:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())
