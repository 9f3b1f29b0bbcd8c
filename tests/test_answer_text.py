"""Answer text (issue 15, "Answers"): markup removed from passages and the spoken answer,
sentence splitting with abbreviations and Chinese terminators, extractive answers that quote
answering sentences (not headings or page furniture) and say when nothing was found."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from voicerag_cli.markup import Block, blocks, plain_text, spoken
from voicerag_cli.models.base import Passage, Query, embed_queries
from voicerag_cli.models.extractive import (
    EXAMPLE_CHARS,
    NO_ANSWER,
    SEE_EXAMPLE,
    ExtractiveGenerator,
    _content_words,
    _units,
)
from voicerag_cli.pipeline.ask import spoken_form
from voicerag_cli.sentences import split_sentences

if TYPE_CHECKING:
    from voicerag_cli.registry import Registry

SPHINX = """\
SSL Cert Verification
---------------------

Requests verifies SSL certificates for HTTPS requests, just like a web browser.
By default, SSL verification is enabled, and Requests will throw a :exc:`~requests.exceptions.SSLError`
if it's unable to verify the certificate::

    >>> requests.get('https://requestb.in')
    requests.exceptions.SSLError: hostname 'requestb.in' doesn't match

Requests can also ignore verifying the SSL certificate if you set ``verify`` to False::

    >>> requests.get('https://kennethreitz.org', verify=False)

.. note:: See `the certifi docs <https://certifiio.readthedocs.io>`_ and :ref:`ca-certificates`.
"""

MARKDOWN = """\
# Installing

Run **pip install mytool** and then `mytool --help`; see [the guide](https://example.org/guide_(v2)).

```python
client = Client(timeout=10)
```

- Use *one* worker per core.
"""


def test_sphinx_source_becomes_prose_and_code_stays_readable() -> None:
    text = plain_text(SPHINX)
    assert "SSL Cert Verification" not in text and "-----" not in text  # heading and underline
    assert "throw a SSLError if it's unable" in text  # role reduced to its name, line break joined
    assert "certificate:" in text and "::" not in text
    assert "requests.get('https://kennethreitz.org', verify=False)" in text  # code kept as written
    assert ">>>" not in text and "``" not in text and ":exc:" not in text and ":ref:" not in text
    assert "See the certifi docs and ca-certificates." in text
    assert "\n" not in text.split("\n\n")[0]


def test_inline_markup_spanning_source_lines_is_removed() -> None:
    # Flask's server.rst: a warning in bold over two source lines; a role whose text wraps
    source = (
        ".. warning::\n\n    **Do not use the development server when deploying to production. It\n"
        "    is intended for use only during local development.**\n\nSee :doc:`the deployment\nguide`.\n"
    )
    assert plain_text(source) == (
        "Do not use the development server when deploying to production. It is intended for use only "
        "during local development.\n\nSee the deployment guide."
    )


def test_markdown_and_html_become_prose() -> None:
    text = plain_text(MARKDOWN)
    assert "Installing" not in text and "#" not in text
    assert "Run pip install mytool and then mytool --help; see the guide." in text
    assert "client = Client(timeout=10)" in text and "```" not in text
    assert "Use one worker per core." in text
    html = plain_text("<h2>Setup</h2><p>Set <code>retries</code> to 3 &amp; wait.</p><p>Done now here.</p>")
    assert html.split("\n\n")[-2:] == ["Set retries to 3 & wait.", "Done now here."]
    assert plain_text("A\n===\n\nB", drop_headings=False).startswith("A")
    # an HTML <pre> example is a code block, its lines kept apart
    pre = blocks('<p>Like this:</p><pre><span class="k">import</span> click\nclick.echo(&quot;hi&quot;)</pre>')
    assert [(b.kind, b.text) for b in pre] == [("prose", "Like this:"), ("code", 'import click; click.echo("hi")')]


def test_snake_case_and_arithmetic_survive() -> None:
    text = plain_text("Set max_retries to 2*x or a * b, and read __init__ and file_name_here.")
    assert text == "Set max_retries to 2*x or a * b, and read __init__ and file_name_here."


def test_spoken_answer_has_no_markup_and_says_code() -> None:
    said = spoken_form("Set ``verify=False`` in :func:`requests.get` [1]. It **disables** checks [2].")
    assert said == "Set verify equals False in get. It disables checks."
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


def passage(text: str, score: float, chunk_id: int = 0) -> Passage:
    return Passage(chunk_id=chunk_id, source=f"doc{chunk_id}.rst", text=text, score=score)


def test_extractive_quotes_answering_sentences_not_headings(registry: Registry) -> None:
    generator = ExtractiveGenerator(registry.text_embedder(), max_sentences=3, min_score=0.36)
    question = "How do I turn off SSL certificate verification in requests?"
    furniture = passage("Copyright 2024, the authors. Built with Sphinx using a theme. Edit on GitHub now.", 0.5, 1)
    answer = generator.generate(Query(text=question), [passage(SPHINX, 0.62, 0), furniture])
    assert answer.found and answer.cited[0] == 1
    assert "verify" in answer.text and "SSL Cert Verification" not in answer.text
    assert "``" not in answer.text and "::" not in answer.text and ":exc:" not in answer.text
    assert "Copyright" not in answer.text and "Sphinx" not in answer.text
    assert answer.quotes[1] in answer.text and answer.quotes[1] in plain_text(SPHINX)


def test_extractive_prefers_the_sentence_naming_what_to_use_over_a_pointer(registry: Registry) -> None:
    """A "see the tutorial" sentence restates the question and is as similar to it as the one that
    answers it; the answer is the one naming what to use (found so in the Flask docs trial)."""
    generator = ExtractiveGenerator(registry.text_embedder(), max_sentences=1)
    pointer = "See the tutorial on testing for a detailed explanation of how to test an application."
    naming = "Send requests to the application with app.test_client() and check each response."
    answer = generator.generate(Query(text="How do I test my application?"), [passage(f"{pointer} {naming}", 0.6)])
    assert answer.text == f"{naming} [1]"
    # by similarity alone the pointer would be the answer: the two signals decide here
    plain = ExtractiveGenerator(registry.text_embedder(), max_sentences=3)
    vectors = plain.embedder.embed_texts([pointer, naming])
    question = embed_queries(plain.embedder, ["How do I test my application?"])[0]
    assert float(vectors[0] @ question) > float(vectors[1] @ question)


def test_word_overlap_compares_stems() -> None:
    assert _content_words("How do I let users upload files?") >= _content_words("user uploads file")
    assert _content_words("the sessions") == _content_words("session")


def test_extractive_says_it_found_nothing_below_the_threshold(registry: Registry) -> None:
    generator = ExtractiveGenerator(registry.text_embedder(), max_sentences=3, min_score=0.36)
    unrelated = [passage("Bees turn nectar into honey by fanning their wings for hours.", 0.12)]
    answer = generator.generate(Query(text="What is the capital of Peru?", typed=True), unrelated)
    assert (answer.text, answer.cited, answer.found) == (NO_ANSWER, [], False)
    # the same passage above the threshold is answered from
    assert generator.generate(
        Query(text="How do bees make honey?", typed=True), [passage(unrelated[0].text, 0.6)]
    ).found
    # a transcript (not typed) is not thresholded: ASR errors lower its scores
    assert generator.generate(Query(text="What is the capital of Peru?"), unrelated).found
    # a follow-up is searched with a blended vector: no threshold (calibrated on single questions)
    follow = Query(text="and how long?", typed=True, history=[("How do bees make honey?", "By fanning.")])
    assert generator.generate(follow, unrelated).found


DIRECTIVES = """\
Boolean Flags
-------------

Groups are made with :class:`Group`\\s and ``x``\\ y.

Boolean flags are options that can be enabled or disabled.  This can be
accomplished by defining two flags in one go separated by a slash.

Example:

.. click:example::

    @click.command()
    @click.option(
        "--shout/--no-shout",
        default=False,
    )
    def info(shout):
        click.echo(shout)

.. versionadded:: 4.0

.. note::

    Prose inside a note stays prose.

.. toctree::
   :maxdepth: 2

   api
   changes

..
    a comment, never shown

Back to prose here.
"""


def test_directive_bodies_are_code_prose_or_skipped() -> None:
    parts = blocks(DIRECTIVES)
    kinds = [(b.kind, b.text) for b in parts]
    assert kinds[0][0] == "prose" and "Groups are made with Groups and xy." in kinds[0][1]
    assert ("prose", "Example:") in kinds
    # an unknown directive's indented body is code; a call spread over lines reads as one
    assert (
        "code",
        '@click.command(); @click.option( "--shout/--no-shout", default=False, ); def info(shout): click.echo(shout)',
    ) in kinds
    assert ("prose", "Prose inside a note stays prose.") in kinds
    text = plain_text(DIRECTIVES)
    assert "4.0" not in text and "api" not in text.split() and "maxdepth" not in text and "comment" not in text
    assert text.endswith("Back to prose here.")
    # a passage that starts inside an example (the chunk boundary cut off its "::")
    cut = blocks("@cli.command()\n    def dropdb():\n        pass\n\nYou would then invoke the group.")
    assert [b.kind for b in cut] == ["code", "prose"] and cut[0].text == "@cli.command(); def dropdb(): pass"


def test_extractive_answer_keeps_the_neighbours_a_sentence_needs(registry: Registry) -> None:
    generator = ExtractiveGenerator(registry.text_embedder(), max_sentences=1)
    answer = generator.generate(Query(text="How do I define a boolean flag option?"), [passage(DIRECTIVES, 0.6)])
    # the quoted sentence, the one after it that leans on it ("This can be..."), the lead-in
    # "Example:" and the example it introduces
    assert answer.text.startswith(
        "Boolean flags are options that can be enabled or disabled. This can be accomplished by defining two"
    )
    assert "Example: @click.command(); @click.option(" in answer.text and answer.text.endswith("[1]")
    assert answer.quotes == {1: "Boolean flags are options that can be enabled or disabled."}
    # read aloud, the example is announced instead of read out
    assert answer.spoken is not None and "@click" not in answer.spoken
    assert answer.spoken.endswith(f"separated by a slash. Example: {SEE_EXAMPLE}")
    # "In that case ..." leans on the sentence before it
    choice = passage("You may want a value from a fixed list. In that case you can use the Choice type.", 0.6)
    answer = generator.generate(Query(text="Can I use the Choice type?"), [choice])
    assert answer.text == f"{choice.text} [1]"
    # a sentence that leans on the one before it is shown after it
    leaning = passage("Use the progressbar function to show progress. It works with any iterable of items.", 0.6)
    answer = generator.generate(Query(text="Does it work with any iterable of items?"), [leaning])
    assert answer.text == "Use the progressbar function to show progress. It works with any iterable of items. [1]"


def test_overlapping_chunks_quote_the_occurrence_with_its_example(registry: Registry) -> None:
    generator = ExtractiveGenerator(registry.text_embedder(), max_sentences=1)
    lead = "Read a value from an environment variable by naming it on the option, like this:"
    cut_off = passage(f"Options are flexible.\n\n{lead}", 0.7, 1)  # the chunk ends before the example
    whole = passage(f"{lead}\n\n.. code-block:: python\n\n    @click.option('--user', envvar='USER')\n", 0.6, 2)
    answer = generator.generate(Query(text="How can an option read an environment variable?"), [cut_off, whole])
    assert answer.text == f"{lead} @click.option('--user', envvar='USER') [2]"
    assert answer.cited == [2]


def test_a_sentence_ending_with_a_colon_brings_what_it_introduces(registry: Registry) -> None:
    generator = ExtractiveGenerator(registry.text_embedder(), max_sentences=1)
    shells = passage("The built-in shells for completion are the following:\n\n- bash\n- zsh and fish.\n\nMore.", 0.6)
    answer = generator.generate(Query(text="Which shells have completion built in?"), [shells])
    assert answer.text == "The built-in shells for completion are the following: bash; zsh and fish. [1]"
    # a numbered list cut by the chunk boundary right after an item's number
    steps = passage("The logic applied is the following:\n\n1.  If it fails, stop\n    at once.\n2.  Then go.\n3.", 0.6)
    answer = generator.generate(Query(text="What logic is applied?"), [steps])
    assert answer.text == "The logic applied is the following: If it fails, stop at once. Then go. [1]"
    # announcing what the passage does not hold (the chunk ends there), it is never quoted
    cut_off = passage("Completion works in several shells here. The built-in shells for completion are:", 0.6)
    answer = generator.generate(Query(text="Which shells have completion built in?"), [cut_off])
    assert answer.text == "Completion works in several shells here. [1]"


def test_a_sentence_pointing_ahead_brings_the_code_after_it(registry: Registry) -> None:
    generator = ExtractiveGenerator(registry.text_embedder(), max_sentences=1)
    lead = "Use the following to generate the completion script, then load it into the shell."
    code = "_FOO_COMPLETE=bash_source foo > ~/.foo-complete.bash"
    answer = generator.generate(
        Query(text="How do I generate the completion script?"),
        [passage(f"{lead}\n\n.. code-block:: bash\n\n    {code}\n", 0.6)],
    )
    assert answer.text == f"{lead} {code} [1]" and answer.spoken == f"{lead} {SEE_EXAMPLE}"
    # without a pointer ahead, the code after a sentence is not part of its answer
    plain = "Completion scripts are generated by the program itself."
    answer = generator.generate(
        Query(text="How are completion scripts generated?"),
        [passage(f"{plain}\n\n.. code-block:: bash\n\n    {code}\n", 0.6)],
    )
    assert answer.text == f"{plain} [1]"


def test_paragraphs_record_the_inline_code_they_name() -> None:
    source = (
        "Assignments use the `set` tag; ``trim_blocks`` strips newlines, :py:meth:`monkeypatch.setenv "
        "<MonkeyPatch.setenv>` patches one and :exc:`~jinja2.UndefinedError` is raised. See `the docs "
        "<https://example.org>`_ and `Gunicorn`_.\n\n<p>Use <code>xfail</code> &amp; more.</p>"
    )
    prose, html = blocks(source)
    assert prose.literals == ("set", "trim_blocks", "monkeypatch.setenv", "UndefinedError")  # links are not code
    # Sphinx's default role with a target shows its name, as a role does
    assert plain_text("Use `load <Schema.load>` or `fields.Nested <marshmallow.fields.Nested>`.") == (
        "Use load or fields.Nested."
    )
    assert all(literal in prose.text for literal in prose.literals)
    assert (html.text, html.literals) == ("Use xfail & more.", ("xfail",))
    # an example inside <pre><code> stays one code block, its tags gone
    assert [(b.kind, b.text) for b in blocks("<pre><code>x = 1\ny = 2</code></pre>")] == [("code", "x = 1; y = 2")]


def test_a_how_to_question_is_answered_by_the_sentence_naming_inline_code(registry: Registry) -> None:
    """A sentence restating the question is more similar to it than the one naming what to use,
    which may be a plain word once its markup is gone (``xfail``): for a how-to question the
    inline code decides (found so in the Jinja2 and pytest docs trials)."""
    generator = ExtractiveGenerator(registry.text_embedder(), max_sentences=1)
    restating = "Sometimes a test is expected to fail, for example because of a known bug."
    naming = "Use the ``xfail`` marker for such a test: the run reports it apart from real failures."
    question = "How do I mark a test as expected to fail?"
    answer = generator.generate(Query(text=question), [passage(f"{restating}\n\n{naming}", 0.6)])
    assert answer.text == "Use the xfail marker for such a test: the run reports it apart from real failures. [1]"
    vectors = generator.embedder.embed_texts([restating, plain_text(naming)])
    asked = embed_queries(generator.embedder, [question])[0]
    assert float(vectors[0] @ asked) > float(vectors[1] @ asked)  # similarity alone picks the restatement
    # a literal names a sentence only as a whole word: ``x`` in the paragraph is not "example"
    one_letter = passage("Call it with ``x`` set.\n\nFor example a test is expected to fail now.", 0.6)
    (unit,) = [c for c in _units(0, blocks(one_letter.text)) if c.sentence.startswith("For example")]
    assert not unit.names_code
    # a factoid question keeps the small bonus: the restatement, most similar, answers it
    factoid = generator.generate(
        Query(text="Which tests are expected to fail?"), [passage(f"{restating}\n\n{naming}", 0.6)]
    )
    assert factoid.text == f"{restating} [1]"


def test_a_following_sentence_that_refers_back_comes_with_the_quoted_one(registry: Registry) -> None:
    generator = ExtractiveGenerator(registry.text_embedder(), max_sentences=1)
    text = (
        "Modifying environment variables for a test, e.g. to test behaviour when one is missing.\n"
        ":py:meth:`monkeypatch.setenv <MonkeyPatch.setenv>` and :py:meth:`monkeypatch.delenv "
        "<MonkeyPatch.delenv>` can be used for these patches."
    )
    answer = generator.generate(Query(text="How do I change an environment variable in a test?"), [passage(text, 0.6)])
    assert answer.text == (
        "Modifying environment variables for a test, e.g. to test behaviour when one is missing. "
        "monkeypatch.setenv and monkeypatch.delenv can be used for these patches. [1]"
    )


def test_a_passage_holding_the_questions_words_is_answered_from_despite_a_low_score(registry: Registry) -> None:
    """A short docs question scores low against any page (Jinja2's "How do I add my own filter?"
    scored 0.33 against its own section): a passage holding most of its content words keeps it
    answered; a low-scoring passage without them still gives "found nothing"."""
    generator = ExtractiveGenerator(registry.text_embedder(), max_sentences=3, min_score=0.36)
    filters = passage(
        "Custom filters are just regular Python functions. Add them to the filters dict of the environment.", 0.33
    )
    question = "How do I add my own filter?"
    assert _content_words(question) == {"add", "own", "filter"}  # the asker and "how do" are no topic
    assert generator.generate(Query(text=question, typed=True), [filters]).found
    unrelated = passage("Bees turn nectar into honey by fanning their wings for hours.", 0.33)
    assert not generator.generate(Query(text=question, typed=True), [unrelated]).found


def test_a_how_to_answer_shows_the_example_its_paragraph_leads_into(registry: Registry) -> None:
    """Docs describe code in the paragraph before it, without a colon ("You can also exclude
    fields by passing in the exclude parameter." then the call): a "how do I" answer shows that
    example, said as SEE_EXAMPLE; other questions, and a sentence inside a paragraph, do not."""
    generator = ExtractiveGenerator(registry.text_embedder(), max_sentences=1)
    lead = "You can also exclude fields by passing in the exclude parameter."
    code = 'summary = UserSchema(exclude=("email",))'
    text = f"{lead}\n\n.. code-block:: python\n\n    {code}\n"
    answer = generator.generate(Query(text="How do I exclude a field when serializing?"), [passage(text, 0.6)])
    assert answer.text == f"{lead} {code} [1]" and answer.spoken == f"{lead} {SEE_EXAMPLE}"
    factoid = generator.generate(Query(text="Which parameter excludes fields?"), [passage(text, 0.6)])
    assert factoid.text == f"{lead} [1]"
    inside = f"{lead} Excluded fields are neither dumped nor loaded.\n\n.. code-block:: python\n\n    {code}\n"
    (unit,) = [c for c in _units(0, blocks(inside)) if c.sentence == lead]
    assert unit.with_example() == unit  # the code follows the other sentence, not this one
    # ...unless the paragraph's last sentence, a sentence or two on, introduces it with a colon
    topic = "Sometimes you have instances that should not be changed after instantiation."
    lead_in = "If you would like to enforce it, the library will try to help:"
    frozen = "@frozen; class C: x: int"
    text = f"{topic} {lead_in}\n\n.. code-block:: python\n\n    @frozen\n    class C:\n        x: int\n"
    answer = generator.generate(Query(text="How do I make instances immutable?"), [passage(text, 0.6)])
    assert answer.text == f"{topic} {lead_in} {frozen} [1]"
    assert answer.spoken == f"{topic} {lead_in} {SEE_EXAMPLE}"


def test_renumbered_citations_change_only_the_markers(registry: Registry) -> None:
    """The pipeline drops the unquoted passages beyond the top k and renumbers the rest: the
    " [n]" markers after each quoted unit change; code inside a unit (``args[7]``) does not."""
    from voicerag_cli.models.base import Answer

    generator = ExtractiveGenerator(registry.text_embedder(), max_sentences=3)
    answer = Answer("Read it with args[7] first. [7] Then call run(). [2]", [2, 7], quotes={7: "Read it", 2: "Then"})
    shown = generator.renumbered(answer, {1: 1, 2: 2, 7: 3})
    assert shown.text == "Read it with args[7] first. [3] Then call run(). [2]"
    assert shown.cited == [2, 3] and shown.quotes == {3: "Read it", 2: "Then"}


def test_the_extractive_answerer_reads_past_the_sources_and_shows_what_it_cites(registry: Registry) -> None:
    """The answering chunk is often ranked 6th-10th (docs trials): the extractive answerer reads
    `read` passages; the sources show the top k and then the deeper passages it quotes,
    renumbered k+1..., so that [n] still points at the n-th source."""
    from voicerag_cli.index.memory import MemoryIndex
    from voicerag_cli.pipeline.ask import AskPipeline

    embedder = registry.text_embedder()
    texts = [
        "Why exclude a field when serializing? Private data.",  # no sentence that answers (a question, 2 words)
        "When is a field excluded from serializing? See below.",
        "The weather in spring is mild, and the gardens open to visitors in April.",
        "Changelog 3.2: fixed time zones in dates; wheels are smaller. To leave a key out of the output, "
        "pass ``exclude`` with a tuple of names to the schema.",
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


MYST = """\
# Examples

Use {func}`attrs.define`, see {doc}`guide/comparison` and {ref}`the glossary <glossary>`.

:::{warning}
Never mutate a {term}`frozen` instance.
:::

```{doctest}
>>> C(1)
C(x=1)
```

```{toctree}
:maxdepth: 2
overview
```

```{note}
:class: tip
Slotted classes are faster.
```
"""


def test_myst_markdown_roles_and_directives_read_like_rest() -> None:
    """MyST (Markdown for Sphinx: attrs' docs) marks roles {func}`x` and directives ```{name}
    and :::{name}: roles become their text, admonitions prose, doctest code, toctree nothing."""
    found = blocks(MYST)
    assert [(b.kind, b.text) for b in found] == [
        ("prose", "Use define, see comparison and the glossary."),
        ("prose", "Never mutate a frozen instance."),
        ("code", "C(1); C(x=1)"),
        ("prose", "Slotted classes are faster."),
    ]
    # a role naming code (or a glossary term: attrs' `frozen`) is inline code; a page or section link is words
    assert found[0].literals == ("define",) and found[1].literals == ("frozen",)
    # reST's page links lose their path too, and a role's <target> is no HTML tag
    assert plain_text("See :doc:`/shell-completion` and :ref:`reST <lbl>`.") == "See shell-completion and reST."
    # Markdown footnotes: the reference goes, the definition is its text
    footnoted = "Immutable[^frozen] classes.\n\n[^frozen]: attrs offers immutability through the frozen keyword."
    assert plain_text(footnoted) == "Immutable classes.\n\nattrs offers immutability through the frozen keyword."


def test_list_items_a_colon_shows_are_quoted_with_it_not_alone(registry: Registry) -> None:
    """A short list after a closing colon is shown with the sentence introducing it: its items,
    often fragments ("Create a custom Field class"), are not quoted again on their own."""
    generator = ExtractiveGenerator(registry.text_embedder(), max_sentences=3)
    text = (
        "There are three ways to create a custom-formatted field for a schema:\n\n"
        "- Create a custom Field class\n- Use a Method field\n- Use a Function field\n"
    )
    answer = generator.generate(Query(text="How do I create a custom field class?"), [passage(text, 0.6)])
    assert answer.text == (
        "There are three ways to create a custom-formatted field for a schema: "
        "Create a custom Field class; Use a Method field; Use a Function field [1]"
    )
    assert [c.sentence for c in _units(0, blocks(text))] == [
        "There are three ways to create a custom-formatted field for a schema:"
    ]
    # a paragraph the colon shows only the start of stays quotable on its own
    long = (
        "The layers load in this order, and the last one wins over the earlier ones in every case, whatever "
        "their source: built-in defaults, then the file, then a profile, then the environment variables, "
        "then the flags given on the command line."
    )
    assert len(long) > EXAMPLE_CHARS
    assert [c.sentence for c in _units(0, blocks(f"It works like this:\n\n{long}"))][-1] == long


SPHINX_DESCRIPTIONS = """\
Try running mypy in :ref:`daemon mode <mypy_daemon>`.

.. option:: --no-incremental

    This flag disables incremental mode: mypy will no longer reference
    the cache when re-run.

    Note that mypy will still write out to the cache.

.. py:function:: evolve(inst, **changes)
   :noindex:

   Create a new instance, based on *inst* with *changes* applied.

Use :py:func:`cast(\\<type\\>, \\<expression\\>) <typing.cast>` on \\*args.
"""


def test_sphinx_object_descriptions_are_prose_led_by_their_signature() -> None:
    """An option's or function's description (mypy's `.. option:: --no-incremental`) is prose
    about what its signature names, not an example: the signature leads its first paragraph,
    and counts as the inline code it names. reST escapes inside a role's text go."""
    found = blocks(SPHINX_DESCRIPTIONS)
    assert [(b.kind, b.text) for b in found] == [
        ("prose", "Try running mypy in daemon mode."),
        (
            "prose",
            "--no-incremental: This flag disables incremental mode: mypy will no longer reference the cache when re-run.",
        ),
        ("prose", "Note that mypy will still write out to the cache."),
        ("prose", "evolve(inst, **changes): Create a new instance, based on inst with changes applied."),
        ("prose", "Use cast(<type>, <expression>) on *args."),
    ]
    assert found[1].literals == ("--no-incremental",) and found[2].literals == ()
    assert found[3].literals[0] == "evolve(inst, **changes)"
    # Markdown docs describe an option under a heading that is only code (Black's "### `--diff`")
    options = (
        "### `--diff`\n\nDon't write the files back.\n\n#### `-c`, `--code`\n\nFormat a string.\n\n## Usage\n\nPlain."
    )
    assert [b.text for b in blocks(options)] == [
        "--diff: Don't write the files back.",
        "-c, --code: Format a string.",
        "Plain.",
    ]


def test_markdown_fences_next_to_prose_and_cut_by_a_chunk_boundary() -> None:
    """A bare ``` right under a line opens an example; it does not underline a heading (the line
    was dropped as one; pip's docs have 16 such). A passage that starts inside an example (its
    opening fence cut off by the chunk boundary) reads that part as code, not prose."""
    assert blocks("Check a file with this:\n```\nblack --check x.py\n```\n") == [
        Block("prose", "Check a file with this:"),
        Block("code", "black --check x.py"),
    ]
    cut = "$ black test.py --check\nwould reformat test.py\n```\n\nWith --diff:\n\n```console\n$ black --diff\n"
    assert [(b.kind, b.text) for b in blocks(cut)] == [
        ("code", "black test.py --check; would reformat test.py"),
        ("prose", "With --diff:"),
        ("code", "black --diff"),
    ]
    # reST underlines (and overlines) of ~ or ` are headings, not fences (Jinja2's docs read as code after one)
    tilde = "Manual Escaping\n~~~~~~~~~~~~~~~\n\nIf manual escaping is enabled,\nescape variables.\n\nMore prose.\n"
    assert [(b.kind, b.text) for b in blocks(tilde)] == [
        ("prose", "If manual escaping is enabled, escape variables."),
        ("prose", "More prose."),
    ]
    assert [b.kind for b in blocks("~~~~~~~~\nOverview\n~~~~~~~~\n\nSome prose.\n")] == ["prose"]
    # a passage whose only fence opens an example after prose is not "inside" one
    assert [b.kind for b in blocks("Some prose first.\n\n```\ncode here\n")] == ["prose", "code"]
