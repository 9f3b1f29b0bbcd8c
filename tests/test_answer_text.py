"""Answers (issue #35, "The answer itself"): the extractive answerer reads the blocks stored at
index time, quotes what answers with what completes it (a field's fact line, an example, the
term or signature it belongs to), at most three sentences, none twice, citing only what it was
given; it says when nothing was found. Also: generated Markdown as plain text, and what is
read aloud."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from voicerag_cli.index.chunking import chunk_document
from voicerag_cli.markup import answer_text, spoken
from voicerag_cli.models.base import Passage, Query
from voicerag_cli.models.extractive import MAX_WORDS, NO_ANSWER, SEE_EXAMPLE, ExtractiveGenerator, content_words
from voicerag_cli.pipeline.ask import spoken_form
from voicerag_cli.sentences import split_sentences

if TYPE_CHECKING:
    from voicerag_cli.registry import Registry

SPHINX = """\
SSL Cert Verification
---------------------

Requests verifies SSL certificates for HTTPS requests, just like a web browser.
By default, SSL verification is enabled, and Requests will throw a :exc:`~requests.exceptions.SSLError`
if it's unable to verify the certificate.

Requests can also ignore verifying the SSL certificate if you set ``verify`` to False::

    >>> requests.get('https://kennethreitz.org', verify=False)

.. note:: See `the certifi docs <https://certifiio.readthedocs.io>`_ and :ref:`ca-certificates`.
"""

SETTINGS = """\
Arguments
=========

host
    Hostname or IP address on which to listen.

    Default: ``0.0.0.0``

channel_timeout
    Maximum number of seconds to leave inactive connections open.
    A connection that sends nothing for this long is closed.

    Default: ``120``

connection_limit
    Stop creating new channels if too many are already active.

    Default: ``100``
"""

OPTIONS = """\
Command line
============

.. option:: --check

   Don't write the files back, just return the status. Return code 0 means nothing would change.

.. option:: --diff

   Don't write the files back, just output a diff for each file on stdout.
"""


def passages(text: str, suffix: str, source: str = "doc", first_id: int = 0, score: float = 0.6) -> list[Passage]:
    """A document read as the index reads it: blocks and heading paths as stored."""
    return [
        Passage(
            chunk_id=first_id + n,
            source=f"{source}{suffix}",
            text=c.text,
            score=score,
            heading_path=c.heading_path,
            blocks=c.blocks,
        )
        for n, c in enumerate(chunk_document(f"{source}{suffix}", text, suffix, 120, 30))
    ]


@pytest.fixture
def answerer(registry: Registry) -> ExtractiveGenerator:
    return ExtractiveGenerator(registry.text_embedder(), max_sentences=3, min_score=0.36)


def test_answers_quote_the_stored_blocks_without_markup_or_headings(answerer: ExtractiveGenerator) -> None:
    furniture = passages("Copyright 2024, the authors. Built with Sphinx using a theme.", ".txt", "footer", 9)
    given = passages(SPHINX, ".rst") + furniture
    answer = answerer.generate(Query(text="How do I turn off SSL certificate verification?"), given)
    assert answer.found and answer.cited[0] == 1
    assert "verify" in answer.text and "SSL Cert Verification" not in answer.text
    assert "``" not in answer.text and "::" not in answer.text and ":exc:" not in answer.text
    assert "Copyright" not in answer.text
    assert answer.quotes[1] in answer.text


def test_a_settings_fact_line_completes_the_sentence_that_names_it(answerer: ExtractiveGenerator) -> None:
    """The fact sits in structure: the value is the "Default:" line under the setting, which
    alone says nothing of the question and is never chosen by similarity."""
    given = passages(SETTINGS, ".rst")
    answer = answerer.generate(Query(text="How long are inactive connections left open?"), given)
    assert answer.text.startswith("channel_timeout: Maximum number of seconds to leave inactive connections open.")
    assert "Default: 120" in answer.text and "Default: 100" not in answer.text


def test_an_object_description_is_quoted_with_its_signature(answerer: ExtractiveGenerator) -> None:
    given = passages(OPTIONS, ".rst")
    answer = answerer.generate(Query(text="How do I check the files without writing them back?"), given)
    assert answer.text.startswith("--check: ")


def test_a_sentence_ending_the_paragraph_before_an_example_brings_it(answerer: ExtractiveGenerator) -> None:
    given = passages(SPHINX, ".rst")
    answer = answerer.generate(Query(text="How do I ignore verifying the SSL certificate?"), given)
    assert "verify=False" in answer.text
    assert SEE_EXAMPLE in (answer.spoken or "") and "requests.get(" not in (answer.spoken or "")


EXTENSION_PAGE = """\
# Tables

The Tables extension adds the ability to create tables in Markdown documents.
Tables are defined using the syntax established in PHP Markdown Extra.

## Usage

Use `tables` as the name of the extension when you call markdown.
"""


def test_a_how_to_question_is_answered_by_the_instruction_not_the_description(answerer: ExtractiveGenerator) -> None:
    given = passages(EXTENSION_PAGE, ".md", "tables")
    how = answerer.generate(Query(text="How do I enable the tables extension?"), given)
    assert how.text.startswith("Use tables as the name of the extension")
    what = answerer.generate(Query(text="What does the tables extension add?"), given)
    assert what.text.startswith("The Tables extension adds the ability to create tables")


def test_no_sentence_twice_at_most_three_and_a_bounded_length(answerer: ExtractiveGenerator) -> None:
    """Overlapping chunks hold the same sentences: each is quoted once."""
    text = " ".join(f"Rule {n} says the cache keeps entries for {n} minutes when asked." for n in range(1, 40))
    copies = passages(text, ".txt") * 2
    answer = answerer.generate(Query(text="How long does the cache keep entries?"), copies)
    quoted = [s.text for s in split_sentences(re.sub(r" \[\d+\]", "", answer.text))]
    assert len(quoted) == len(set(quoted)) <= 3
    assert len(answer.text.split()) <= MAX_WORDS + 3
    assert set(answer.cited) <= set(range(1, len(copies) + 1))


def test_a_list_a_colon_introduces_comes_with_it(answerer: ExtractiveGenerator) -> None:
    text = "# Install\n\nThe package supports these databases:\n\n- PostgreSQL 12 and newer\n- SQLite 3.35\n"
    answer = answerer.generate(Query(text="Which databases does the package support?"), passages(text, ".md"))
    assert "PostgreSQL 12 and newer" in answer.text and "SQLite 3.35" in answer.text


def test_word_overlap_compares_stems() -> None:
    assert content_words("How do I let users upload files?") >= content_words("user uploads file")
    assert content_words("the sessions") == content_words("session")


def test_the_answerer_says_it_found_nothing_below_the_threshold(answerer: ExtractiveGenerator) -> None:
    unrelated = passages("Bees turn nectar into honey by fanning their wings for hours.", ".txt", score=0.12)
    answer = answerer.generate(Query(text="What is the capital of Peru?", typed=True), unrelated)
    assert (answer.text, answer.cited, answer.found) == (NO_ANSWER, [], False)
    answered = passages(unrelated[0].text, ".txt", score=0.6)
    assert answerer.generate(Query(text="How do bees make honey?", typed=True), answered).found
    # a transcript (not typed) is not thresholded: ASR errors lower its scores
    assert answerer.generate(Query(text="What is the capital of Peru?"), unrelated).found
    # a follow-up is searched with a blended vector: no threshold (calibrated on single questions)
    follow = Query(text="and how long?", typed=True, history=[("How do bees make honey?", "By fanning.")])
    assert answerer.generate(follow, unrelated).found


def test_passages_without_stored_blocks_read_as_paragraphs(answerer: ExtractiveGenerator) -> None:
    """An index written before layouts (or the Milvus store) gives plain text."""
    bare = Passage(0, "old.txt", "Heading\n\nThe cache keeps entries for ten minutes by default.", 0.6)
    answer = answerer.generate(Query(text="How long does the cache keep entries?"), [bare])
    assert answer.text == "The cache keeps entries for ten minutes by default. [1]"


def test_generated_markdown_reads_as_plain_text() -> None:
    written = "## Answer\n\nSet **verify** to `False` [1][2]:\n\n```python\nrequests.get(url,\n    verify=False)\n```\n"
    assert answer_text(written) == "Answer\n\nSet verify to False [1] [2]:\n\nrequests.get(url, verify=False)"


def test_spoken_answer_has_no_citations_and_says_code() -> None:
    said = spoken_form("Set verify=False in requests.get [1]. It disables checks [2].")
    assert said == "Set verify equals False in requests.get. It disables checks."
    assert spoken("max_retries == 3 -> ok") == "max retries equals 3 returns ok"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Use a tool, e.g. a hammer, here. Then stop.", ["Use a tool, e.g. a hammer, here.", "Then stop."]),
        ("That is, i.e. the first. Next.", ["That is, i.e. the first.", "Next."]),
        ("Mr. Smith met Dr. Jones at 5 p.m. on Friday. They talked.",
         ["Mr. Smith met Dr. Jones at 5 p.m. on Friday.", "They talked."]),
        ("Apples, pears, etc. are fruit. Bread etc. Cars are not.",
         ["Apples, pears, etc. are fruit.", "Bread etc.", "Cars are not."]),
        ("It needs Python 3.11 or version 2.0.1 of it. Done.", ["It needs Python 3.11 or version 2.0.1 of it.", "Done."]),
        ("J. R. R. Tolkien wrote it. He was English.", ["J. R. R. Tolkien wrote it.", "He was English."]),
        ("See Fig. 3 and No. 5 there! Yes?", ["See Fig. 3 and No. 5 there!", "Yes?"]),
        ("北京是首都。上海很大！你好吗？好的", ["北京是首都。", "上海很大！", "你好吗？", "好的"]),
        ("Call it with ... and wait. Wait... Then stop.", ["Call it with ... and wait.", "Wait...", "Then stop."]),
        ("Use click.echo() not print(). Edit setup.py. Click 8.1.7 is out.",
         ["Use click.echo() not print().", "Edit setup.py.", "Click 8.1.7 is out."]),
    ],
)  # fmt: skip
def test_sentence_splitting(text: str, expected: list[str]) -> None:
    sentences = split_sentences(text)
    assert [s.text for s in sentences] == expected
    assert all(text[s.start : s.end] == s.text for s in sentences)


def test_renumbered_citations_change_only_the_markers(registry: Registry) -> None:
    """The pipeline drops the unquoted passages beyond the top k and renumbers the rest: the
    " [n]" markers after each quoted unit change; code inside a unit (``args[7]``) does not."""
    from voicerag_cli.models.base import Answer

    generator = ExtractiveGenerator(registry.text_embedder(), max_sentences=3)
    answer = Answer("Read it with args[7] first. [7] Then call run(). [2]", [2, 7], quotes={7: "Read it", 2: "Then"})
    shown = generator.renumbered(answer, {1: 1, 2: 2, 7: 3})
    assert shown.text == "Read it with args[7] first. [3] Then call run(). [2]"
    assert shown.cited == [2, 3] and shown.quotes == {3: "Read it", 2: "Then"}


@pytest.fixture
def registry_without_reader(registry: Registry) -> Registry:
    """The default models with no reader: passages keep the search's order."""
    from voicerag_cli.config import Settings
    from voicerag_cli.registry import Registry as Models

    models = Models(Settings().updated({"models.reader": "none"}))
    models._instances["text_embedder"] = registry.text_embedder()  # loaded once per session
    return models


def test_the_extractive_answerer_reads_past_the_sources_and_shows_what_it_cites(
    registry_without_reader: Registry,
) -> None:
    """The answering chunk is often ranked below the top 5: the extractive answerer reads `read`
    passages; the sources show the top k and then the deeper passages it quotes, renumbered
    k+1..., so that [n] still points at the n-th source."""
    from voicerag_cli.index.memory import MemoryIndex
    from voicerag_cli.pipeline.ask import AskPipeline

    registry = registry_without_reader
    embedder = registry.text_embedder()
    texts = [
        "Why exclude a field when serializing? Private data.",  # no sentence that answers (a question, 2 words)
        "When is a field excluded from serializing? See below.",
        "The weather in spring is mild, and the gardens open to visitors in April.",
        "Changelog 3.2: fixed time zones in dates; wheels are smaller. To leave a key out of the output, "
        "pass exclude with a tuple of names to the schema.",
    ]
    index = MemoryIndex("t", embedder.space)
    index.add([f"doc{i}.rst" for i in range(len(texts))], texts, embedder.embed_texts(texts))
    question = "How do I exclude a field when serializing?"
    pipeline = AskPipeline(registry, index, k=1, ef_search=50, read=len(texts))
    ranked = [
        p.text for p in pipeline.retrieve(pipeline.text_query(question, pipeline.stopwatch()), pipeline.stopwatch())
    ]
    assert ranked.index(texts[3]) == 2  # below the top k, and below a passage the answer does not quote

    result = pipeline.ask_text(question)
    assert [p.text for p in result.sources] == [ranked[0], texts[3]]
    sentence = "To leave a key out of the output, pass exclude with a tuple of names to the schema."
    assert result.answer.text == f"{sentence} [2]"
    assert result.answer.cited == [2] and result.answer.quotes == {2: sentence}
    assert [s["quote"] for s in result.to_json()["sources"]] == [None, sentence]
    # read no deeper than k: the answer comes from the top k alone
    shallow = AskPipeline(registry, index, k=1, ef_search=50).ask_text(question)
    assert [p.text for p in shallow.sources] == [ranked[0]] and "exclude" not in shallow.answer.text
    # a query without words (e2e: the speech vector alone) reads the top k too
    vector = pipeline.text_query(question, pipeline.stopwatch()).vector
    wordless = pipeline.answer_query(Query(text=None, vector=vector), pipeline.stopwatch())
    assert [p.text for p in wordless.context] == [ranked[0]]


def test_the_rerank_stage_orders_the_passages_read_by_the_readers_relevance(registry: Registry) -> None:
    """`ask.rerank` (off by default: it lowered answer accuracy on RGB-en and HotpotQA) puts the
    passage the reader finds answering first; release notes stay after current pages."""
    from voicerag_cli.index.memory import MemoryIndex
    from voicerag_cli.pipeline.ask import AskPipeline

    passages = [
        Passage(
            0,
            "docs/index.rst",
            "Waitress is a production-quality pure-Python WSGI server. It runs on Unix and Windows.",
        ),
        Passage(1, "docs/changelog.rst", "3.0.0: the port setting is checked more strictly."),
        Passage(2, "docs/arguments.rst", "port: TCP port on which to listen. Default: 8080."),
    ]
    index = MemoryIndex("t", registry.text_embedder().space)
    pipeline = AskPipeline(registry, index, k=2, ef_search=50, read=3)
    watch = pipeline.stopwatch()
    query = Query(text="Which port does Waitress listen on by default?")
    reordered = pipeline.rerank(query, passages, watch)
    assert [p.chunk_id for p in reordered] == [2, 0, 1]
    assert "rerank" in watch.ms
