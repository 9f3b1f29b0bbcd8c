"""Release notes rank below current pages unless the question names a version (issue #35)."""

from __future__ import annotations

import pytest

from voicerag_cli.models.base import Passage
from voicerag_cli.pipeline.release_notes import demote_release_notes, is_release_notes, names_version


@pytest.mark.parametrize(
    "source",
    [
        "/docs/changelog.rst",
        "/docs/CHANGES.md",
        "/docs/history.md",
        "/docs/change_log/release-2.6.md",
        "/docs/change_log/index.md",
        "/docs/whatsnew/v0.24.0.rst",
        "/docs/releases/3.12.rst",
        "/src/NEWS",
        "/docs/release-notes.md",
        "/data/changelog.jsonl#L3",
    ],
)
def test_release_notes_are_recognised_by_path(source: str) -> None:
    assert is_release_notes(source)


@pytest.mark.parametrize(
    "source",
    [
        "/docs/user/formatting.rst",
        "/docs/extensions/tables.md",
        "/docs/2.0/tutorial.md",  # a versioned copy of current docs
        "/docs/upgrading.rst",
        "/docs/api/versioning.md",
        "/docs/newsletter.md",
    ],
)
def test_current_pages_are_not_release_notes(source: str) -> None:
    assert not is_release_notes(source)


@pytest.mark.parametrize(
    "heading", ["Changelog", "Release Notes", "What's new in 3.2", "Version 2.3.0", "2.3.0 (2024-01-02)", "v1.2"]
)
def test_release_notes_are_recognised_by_heading(heading: str) -> None:
    assert is_release_notes("/docs/index.md", ("Project", heading))
    assert not is_release_notes("/docs/index.md", ("Project", "Configuration"))


@pytest.mark.parametrize(
    ("question", "asks"),
    [
        ("How do I enable the tables extension?", False),
        ("Which Python versions are supported?", True),
        ("What changed in 3.7?", True),
        ("When was the toc option deprecated?", True),
        ("what's new in version two point three", True),
        ("How do I set the default port?", False),
    ],
)
def test_questions_naming_a_version(question: str, asks: bool) -> None:
    assert names_version(question) is asks


def _passage(chunk_id: int, source: str) -> Passage:
    return Passage(chunk_id=chunk_id, source=source, text="")


def test_demotion_keeps_each_group_in_order_and_respects_version_questions() -> None:
    ranked = [
        _passage(1, "/d/changelog.md"),
        _passage(2, "/d/tables.md"),
        _passage(3, "/d/change_log/release-2.6.md"),
        _passage(4, "/d/reference.md"),
    ]
    demoted = demote_release_notes(ranked, "How do I enable tables?")
    assert [p.chunk_id for p in demoted] == [2, 4, 1, 3]
    assert [p.chunk_id for p in demote_release_notes(ranked, "What changed in 2.6?")] == [1, 2, 3, 4]
    assert [p.chunk_id for p in demote_release_notes(ranked, None)] == [2, 4, 1, 3]  # e2e: no words
