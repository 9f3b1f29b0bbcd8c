"""Release notes rank below current pages unless the question is about versions.

Change logs, release notes and "what's new" pages repeat every feature's name, so they match
how-to questions well, but they describe the past: an old limit, the Python versions of an
older release, a feature's first form. A passage is recognised as release notes by its file's
path or by the headings above it; a question "names a version" when it says a version number or
asks about releases, changes or deprecations.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePath

from voicerag_cli.models.base import Passage

# A folder or file name of release notes: changelog.rst, CHANGES.md, history.md, NEWS,
# whatsnew/, change_log/index.md, releasenotes/...
_NOTES_NAME = r"change[-_ ]?logs?|changes|history|news|release[-_ ]?notes?|releases|whats[-_ ]?new|what[-_ ]?s[-_ ]?new"
_NOTES_FOLDER = re.compile(rf"^(?:{_NOTES_NAME})$", re.IGNORECASE)
# A file name only (a folder named "2.0" may hold a versioned copy of current docs): also
# release-2.6.md, v0.24.rst, 3.12.rst.
_NOTES_FILE = re.compile(
    rf"^(?:{_NOTES_NAME}|(?:release|changes|version)?[-_ ]?v?\d+(?:\.\d+)+(?:[-_.]?\w+)?)$", re.IGNORECASE
)
# A heading that opens release notes: "Changelog", "Release notes", "What's new in 3.2",
# "Version 2.3.0", "2.3.0 (2024-01-02)", "v1.2", "Changes in 1.4", "Release 5.0".
_NOTES_HEADING = re.compile(
    r"^\s*(?:change\s*log|changes(?:\s+in\b.*)?|history|release\s+notes?|what'?s\s+new\b.*|news|"
    r"(?:version|release|v)\s*\d+(?:\.\d+)+\b.*|\d+(?:\.\d+)+(?:[a-z]+\d*)?(?:\s*[(\-\u2013:].*)?)\s*$",
    re.IGNORECASE,
)
# A question about versions: a version number ("3.7", "2.0.1", "v2"), or the words for releases.
_ASKS_VERSION = re.compile(
    r"\bv?\d+\.\d+\b|\bv\d+\b|\b(?:versions?|releases?|released|changelog|change\s*log|changed|changes|new\s+in|"
    r"deprecat\w*|upgrad\w*|what'?s\s+new|history|since\s+when)\b|\bpoint\s+(?:zero|one|two|three|four|five|six|"
    r"seven|eight|nine)\b",
    re.IGNORECASE,
)


def names_version(question: str | None) -> bool:
    """Whether the question asks about versions (then release notes keep their rank)."""
    return bool(question) and bool(_ASKS_VERSION.search(question or ""))


def is_release_notes(source: str, heading_path: Sequence[str] = ()) -> bool:
    """Whether a passage from `source` (a file path, maybe with a '#record' suffix) under
    `heading_path` belongs to release notes."""
    path = PurePath(source.split("#", 1)[0])
    if _NOTES_FILE.match(path.stem) or any(_NOTES_FOLDER.match(part) for part in path.parent.parts[-3:]):
        return True
    return any(_NOTES_HEADING.match(heading) for heading in heading_path)


def demote_release_notes(passages: list[Passage], question: str | None) -> list[Passage]:
    """`passages` with the release notes after the other pages (each group in its own order),
    unless the question names a version."""
    if names_version(question):
        return passages
    notes = [is_release_notes(p.source, p.heading_path) for p in passages]
    return [p for p, n in zip(passages, notes, strict=True) if not n] + [
        p for p, n in zip(passages, notes, strict=True) if n
    ]
