"""Documents read as structure (issue 35, part 1): Markdown/MyST, reST with Sphinx directives
and roles docutils does not know, HTML and plain text parsed whole into typed blocks, and those
blocks packed into chunks that follow sections. Snippets are written in the style of real docs."""

from __future__ import annotations

import itertools
import random

import pytest

from voicerag_cli.sentences import word_count
from voicerag_cli.structure import Block, chunk_blocks, parse
from voicerag_cli.structure.blocks import KINDS, field_lines, role_text


def kinds(blocks: list[Block]) -> list[tuple[str, str]]:
    return [(b.kind, b.text) for b in blocks]


MARKDOWN = """\
---
title: Configuration
---

# Configuration

Run **pip install mytool** and then `mytool --help`; see [the guide](https://example.org/guide_(v2)).

## Settings

### `threads`

The number of worker threads.

Default: `4`
Type: int

### `verify`

Pass `verify=False` to skip certificate checks.

- Use *one* worker per core.
- Keep the cache on a local disk.

```python
client = Client(timeout=10)
```

| Name | Default |
|------|---------|
| `threads` | 4 |
| `retries` | 3 |

Cache directory
: Where downloaded files are kept.

> Quoted advice stays prose.

<div class="extra"><p>An HTML block inside Markdown.</p></div>

Footnoted[^why] text.

[^why]: Because the footnote says so.
"""


def test_markdown_blocks_kinds_and_heading_paths() -> None:
    blocks = parse(MARKDOWN, ".md")
    assert {b.kind for b in blocks} <= KINDS
    assert blocks[0] == Block("heading", "Configuration", ())
    assert ("prose", "Run pip install mytool and then mytool --help; see the guide.") in kinds(blocks)
    threads = ("Configuration", "Settings", "threads")
    assert Block("heading", "threads", ("Configuration", "Settings")) in blocks
    assert Block("prose", "The number of worker threads.", threads) in blocks
    # "Default: 4"-style lines under a setting's heading are fields
    assert Block("field", "Default: 4", threads, "Default") in blocks
    assert Block("field", "Type: int", threads, "Type") in blocks
    verify = ("Configuration", "Settings", "verify")
    assert Block("prose", "Pass verify=False to skip certificate checks.", verify) in blocks
    assert Block("list_item", "Use one worker per core.", verify) in blocks
    assert Block("code", "client = Client(timeout=10)", verify) in blocks
    assert Block("table_row", "Name: threads; Default: 4", verify) in blocks
    assert Block("field", "Cache directory: Where downloaded files are kept.", verify, "Cache directory") in blocks
    assert Block("prose", "Quoted advice stays prose.", verify) in blocks
    assert Block("prose", "An HTML block inside Markdown.", verify) in blocks
    assert ("prose", "Footnoted text.") in kinds(blocks)
    assert ("prose", "Because the footnote says so.") in kinds(blocks)
    # front matter is no text
    assert not any("title:" in b.text for b in blocks)


MYST = """\
(examples)=
# Examples

Use {func}`~attrs.define`, see {doc}`guide/comparison` and {ref}`the glossary <glossary>`.

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

```{py:function} evolve(inst, **changes)
Create a new instance, based on *inst* with *changes* applied.
```

```{versionadded} 22.2
The `attrs` namespace.
```

```{tab-set}
Prose inside an unknown directive stays.
```

```{eval-rst}
.. note:: Written in reST inside MyST.
```
"""


def test_myst_roles_and_directives_map_like_their_rest_forms() -> None:
    blocks = parse(MYST, ".md")
    path = ("Examples",)
    assert kinds(blocks) == [
        ("heading", "Examples"),
        ("prose", "Use define, see comparison and the glossary."),
        ("admonition", "Never mutate a frozen instance."),
        ("code", ">>> C(1)\nC(x=1)"),
        ("admonition", "Slotted classes are faster."),
        ("signature", "evolve(inst, **changes)"),
        ("prose", "Create a new instance, based on inst with changes applied."),
        ("admonition", "Added in version 22.2: The attrs namespace."),
        ("prose", "Prose inside an unknown directive stays."),
        ("admonition", "Written in reST inside MyST."),
    ]
    signature = next(b for b in blocks if b.kind == "signature")
    assert signature.heading_path == path
    assert blocks[6].heading_path == (*path, "evolve(inst, **changes)")


RST = """\
=============
Configuration
=============

Requests verifies SSL certificates; it raises :exc:`~requests.exceptions.SSLError`
when it cannot, unless you pass ``verify=False``::

    >>> requests.get('https://example.org', verify=False)

Groups are made with :class:`Group`\\s and ``x``\\ y; see :doc:`/guide/shell-completion`.

Settings
--------

``workers``
~~~~~~~~~~~

How many processes serve requests.

Default: ``4``

.. confval:: timeout
   :type: int
   :default: ``30``

   Seconds before a worker is killed.

.. option:: --no-incremental

    This flag disables incremental mode: the cache is not read when re-run.

    Note that the cache is still written.

.. class:: Pool(size, *, timeout=None)
   :noindex:

   A fixed set of connections.

.. click:example::

    @click.command()
    def hello():
        click.echo("Hello")

.. tab-set::

   .. tab-item:: Linux

      Install it with the package manager.

.. seealso:: :ref:`Tuning <tuning>` and :pep:`8`.

.. toctree::
   :maxdepth: 2

   api
   changes

.. autoclass:: mypkg.Pool
   :members:

..
    a comment, never shown

.. note::

   Prose inside a note.

.. code-block:: python
   :caption: example.py

   pool = Pool(4)

.. versionchanged:: 2.0
   Workers restart on failure.

:Author: Someone
:Version: 1.2

term one
    Its definition, in two
    lines.

glossary term : classifier
    Classified.

-v, --verbose  Print more.

+--------+---------+
| Name   | Default |
+========+=========+
| retry  | 3       |
+--------+---------+

.. list-table::
   :header-rows: 1

   * - Option
     - Meaning
   * - ``-q``
     - Quiet

* First item.
* Second item with :unknownrole:`its text`.

Footnote reference [#f1]_ here and |unknown-sub| there.

.. [#f1] The footnote's words.
"""


def test_rest_with_unknown_sphinx_directives_and_roles() -> None:
    blocks = parse(RST, ".rst")
    text = "\n".join(b.text for b in blocks)
    # no raw markup, no docutils complaints
    for leftover in (":class:", ":exc:", "``", ".. ", "::", "maxdepth", "ERROR", "Unknown", "comment", "autoclass"):
        assert leftover not in text, leftover
    top = ("Configuration",)
    assert blocks[0] == Block("heading", "Configuration", ())
    assert blocks[1] == Block(
        "prose",
        "Requests verifies SSL certificates; it raises SSLError when it cannot, unless you pass verify=False:",
        top,
    )
    assert blocks[2] == Block("code", ">>> requests.get('https://example.org', verify=False)", top)
    assert Block("prose", "Groups are made with Groups and xy; see shell-completion.", top) in blocks
    workers = ("Configuration", "Settings", "workers")
    assert Block("heading", "workers", ("Configuration", "Settings")) in blocks
    assert Block("field", "Default: 4", workers, "Default") in blocks
    # object descriptions: a signature, then their body under it; a confval's options are fields
    timeout = (*workers, "timeout")
    assert blocks[8:12] == [
        Block("signature", "timeout", workers),
        Block("field", "Type: int", timeout, "Type"),
        Block("field", "Default: 30", timeout, "Default"),
        Block("prose", "Seconds before a worker is killed.", timeout),
    ]
    option = (*workers, "--no-incremental")
    assert Block("signature", "--no-incremental", workers) in blocks
    assert Block("prose", "This flag disables incremental mode: the cache is not read when re-run.", option) in blocks
    assert Block("prose", "Note that the cache is still written.", option) in blocks
    assert Block("signature", "Pool(size, *, timeout=None)", workers) in blocks
    assert Block("prose", "A fixed set of connections.", (*workers, "Pool(size, *, timeout=None)")) in blocks
    found = kinds(blocks)
    # an unknown directive whose body is an example is code; one whose body is prose is prose
    assert ("code", '@click.command()\ndef hello():\n    click.echo("Hello")') in found
    assert ("prose", "Install it with the package manager.") in found
    assert ("admonition", "Tuning and PEP 8.") in found
    assert ("admonition", "Prose inside a note.") in found
    assert ("code", "pool = Pool(4)") in found
    assert ("admonition", "Changed in version 2.0: Workers restart on failure.") in found
    assert "api" not in text.split() and "mypkg" not in text
    # field lists, definition lists, option lists
    assert Block("field", "Author: Someone", workers, "Author") in blocks
    assert Block("field", "term one: Its definition, in two lines.", workers, "term one") in blocks
    assert ("field", "glossary term (classifier): Classified.") in found
    assert ("field", "-v, --verbose: Print more.") in found
    # tables with headers
    assert ("table_row", "Name: retry; Default: 3") in found
    assert ("table_row", "Option: -q; Meaning: Quiet") in found
    assert ("list_item", "Second item with its text.") in found
    assert ("prose", "Footnote reference here and unknown-sub there.") in found
    assert ("prose", "The footnote's words.") in found


def test_rest_roles_degrade_to_their_text() -> None:
    assert role_text("class", "~a.b.C") == "C"
    assert role_text("py:func", "pkg.f") == "pkg.f"
    assert role_text("ref", "text <label>") == "text"
    assert role_text("doc", "/guide/shell-completion") == "shell-completion"
    assert role_text("meth", ".Session.merge") == "Session.merge"
    blocks = parse("Use :py:func:`cast(\\<type\\>, \\<expression\\>) <typing.cast>` on \\*args.\n", ".rst")
    assert kinds(blocks) == [("prose", "Use cast(<type>, <expression>) on *args.")]


def test_parse_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    parse(".. unknown:: x\n\n   :bad:`role` and `unclosed\n\n====\n\nbad | table\n", ".rst")
    parse("```{unknown}\nbody\n", ".md")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


HTML = """\
<!doctype html>
<html><head><title>Page</title><style>p { color: red }</style><script>var x = "<p>no</p>";</script></head>
<body>
<nav><ul><li>Home</li></ul></nav>
<h1>Guide<a class="headerlink" href="#guide">¶</a></h1>
<p>Install it with <code>pip install tool</code>
and run it.</p>
<h2>Settings</h2>
<p>Default: 4<br>Type: int</p>
<ul><li>First</li><li><p>Second</p><ul><li>Nested</li></ul></li></ul>
<dl class="simple"><dt>cache</dt><dd><p>Where files are kept.</p></dd></dl>
<dl class="py class"><dt class="sig sig-object py">Pool(size)<a class="headerlink">¶</a></dt>
<dd><p>A fixed set of connections.</p></dd></dl>
<div class="admonition note"><p class="admonition-title">Note</p><p>Close the pool.</p></div>
<div class="highlight"><pre>pool = Pool(4)
pool.close()</pre></div>
<table><thead><tr><th>Name</th><th>Default</th></tr></thead>
<tbody><tr><td>retry</td><td><p>3</p></td></tr></tbody></table>
<p>Unclosed <b>bold
</body></html>
"""


def test_html_blocks_and_sphinx_output() -> None:
    blocks = parse(HTML, ".html")
    settings = ("Guide", "Settings")
    assert kinds(blocks) == [
        ("heading", "Guide"),
        ("prose", "Install it with pip install tool and run it."),
        ("heading", "Settings"),
        ("field", "Default: 4"),
        ("field", "Type: int"),
        ("list_item", "First"),
        ("list_item", "Second"),
        ("list_item", "Nested"),
        ("field", "cache: Where files are kept."),
        ("signature", "Pool(size)"),
        ("prose", "A fixed set of connections."),
        ("admonition", "Close the pool."),
        ("code", "pool = Pool(4)\npool.close()"),
        ("table_row", "Name: retry; Default: 3"),
        ("prose", "Unclosed bold"),
    ]
    assert blocks[3].heading_path == settings and blocks[3].term == "Default"
    assert blocks[10].heading_path == (*settings, "Pool(size)")
    assert blocks[11].heading_path == settings


def test_plain_text_paragraphs_stay_prose() -> None:
    text = "Key: value\nmore words\n\nSecond paragraph.\n\n\n"
    assert parse(text, ".txt") == [Block("prose", "Key: value more words", ()), Block("prose", "Second paragraph.", ())]
    assert parse(text, ".unknown") == parse(text, ".txt")


def test_field_lines_are_short_terms_with_values() -> None:
    assert field_lines("Default: 4\nType: int") == [("Default", "4"), ("Type", "int")]
    assert field_lines("Note: this is a remark.") is None
    assert field_lines("Default: 4\nand a sentence") is None
    assert field_lines("See https://example.org: it explains") is None


GARBAGE = {
    "binary-ish": bytes(random.Random(7).randrange(256) for _ in range(20_000)).decode("latin-1"),
    "a megabyte of stars": "*" * 1_000_000,
    "unclosed fences": "# Title\n\n```python\nx = 1\n\n:::{note}\nnever closed\n\n```{toctree}\n",
    "broken reST table": "+-----+----+\n| a | b |\n+===+\n| 1 | 2 3 |\n+--+\n\nText after.\n",
    "unclosed directive": ".. note::\n\n.. code-block::\n\n.. option::\n\n:field\n",
    "deep nesting": "> " * 3000 + "x\n" + "".join("  " * i + "- x\n" for i in range(300)),
    "tags": "<div><p><table><tr><td>" * 500 + "text" + "</b></i></dl>" * 100,
    "long line of emphasis": "*a **b _c " * 5_000,
}


@pytest.mark.parametrize("name", sorted(GARBAGE))
@pytest.mark.parametrize("suffix", [".md", ".rst", ".html", ".txt"])
def test_garbage_returns_blocks_without_raising(name: str, suffix: str) -> None:
    blocks = parse(GARBAGE[name], suffix)
    assert isinstance(blocks, list)
    assert all(isinstance(b, Block) and b.kind in KINDS for b in blocks)
    if name in {"broken reST table", "unclosed fences"}:
        assert blocks


def test_a_reader_that_fails_falls_back_to_plain_text() -> None:
    # a line too long for a markup reader: read as plain text, quickly, whole
    text = "word " * 10_000 + "\n\nNext."
    assert parse(text, ".rst") == parse(text, ".txt")
    assert parse(text, ".md")[-1] == Block("prose", "Next.", ())


# --- chunks ---------------------------------------------------------------------------------


def sample_blocks() -> list[Block]:
    intro = ("Guide",)
    install = ("Guide", "Install")
    return [
        Block("heading", "Guide", ()),
        Block("prose", "This guide explains the tool. It is short.", intro),
        Block("heading", "Install", intro),
        Block("prose", "Install the tool with pip. It needs Python 3.11 or newer.", install),
        Block("code", "pip install tool\ntool --help", install),
        Block("field", "Default: 4", install, "Default"),
        Block("heading", "Reference", ()),
        Block("signature", "run(path)", ("Reference",)),
        Block("prose", "Runs the tool on a path.", ("Reference", "run(path)")),
    ]


def test_chunk_spans_match_text_and_sections_are_not_mixed() -> None:
    chunks = chunk_blocks("guide.md", sample_blocks(), chunk_words=200, overlap_words=0)
    assert [c.heading_path for c in chunks] == [("Guide",), ("Reference",)]
    assert [c.ordinal for c in chunks] == [0, 1]
    first = chunks[0]
    assert [b.kind for b in first.blocks] == ["heading", "prose", "heading", "prose", "code", "field"]
    for chunk in chunks:
        pieces = [chunk.text[b.start : b.end] for b in chunk.blocks]
        assert "\n\n".join(pieces) == chunk.text
    assert first.text.split("\n\n")[4] == "pip install tool\ntool --help"
    field = first.blocks[5]
    assert (field.term, field.heading_path) == ("Default", ("Guide", "Install"))
    assert first.text[field.start : field.end] == "Default: 4"
    # the heading path is a field, not part of the text
    assert not chunks[1].text.startswith("Reference\n\nReference")
    assert chunks[1].text.startswith("Reference\n\nrun(path)")


def test_chunks_pack_whole_blocks_with_overlap() -> None:
    path = ("Guide", "Usage")
    paragraphs = [Block("prose", f"Paragraph {i} has exactly seven words here.", path) for i in range(10)]
    chunks = chunk_blocks("g.md", paragraphs, chunk_words=21, overlap_words=7)
    for chunk in chunks:
        assert word_count(chunk.text) <= 21
        assert all(chunk.text[b.start : b.end].startswith("Paragraph") for b in chunk.blocks)
    # each chunk after the first repeats the last block of the one before
    for before, after in itertools.pairwise(chunks):
        last = before.text.split("\n\n")[-1]
        assert after.text.split("\n\n")[0] == last
    covered = {piece for c in chunks for piece in c.text.split("\n\n")}
    assert covered == {b.text for b in paragraphs}


def test_a_heading_at_a_chunks_end_moves_to_the_next_chunk() -> None:
    path = ("Guide",)
    blocks = [
        Block("prose", "one two three four five six seven eight", path),
        Block("heading", "Usage", path),
        Block("prose", "nine ten eleven twelve thirteen fourteen", (*path, "Usage")),
    ]
    chunks = chunk_blocks("g.md", blocks, chunk_words=10, overlap_words=0)
    assert [c.text for c in chunks] == [
        "one two three four five six seven eight",
        "Usage\n\nnine ten eleven twelve thirteen fourteen",
    ]
    assert chunks[1].heading_path == ("Guide", "Usage")


def test_a_block_longer_than_the_budget_is_split_at_sentences() -> None:
    sentences = [f"Sentence number {i} says something useful." for i in range(40)]
    block = Block("prose", " ".join(sentences), ("Guide",))
    chunks = chunk_blocks("g.txt", [block], chunk_words=30, overlap_words=0)
    assert len(chunks) > 1
    for chunk in chunks:
        assert word_count(chunk.text) <= 30
        assert chunk.text.startswith("Sentence number") and chunk.text.endswith(".")
        assert chunk.blocks[0].kind == "prose" and chunk.heading_path == ("Guide",)
    assert " ".join(c.text for c in chunks) == block.text
    # code is split at line boundaries
    code = Block("code", "\n".join(f"x{i} = compute({i}, {i + 1})" for i in range(60)), ())
    code_chunks = chunk_blocks("g.md", [code], chunk_words=40, overlap_words=0)
    assert len(code_chunks) > 1 and "\n".join(c.text for c in code_chunks) == code.text


def test_huge_single_line_is_bounded() -> None:
    text = "word " * 400_000 + "x" * 50_000  # 2 MB on one line, and one 50 kB "word"
    blocks = parse(text, ".txt")
    chunks = chunk_blocks("big.txt", blocks, chunk_words=100, overlap_words=20)
    assert max(len(c.text) for c in chunks) <= 100 * 20
    assert max(word_count(c.text) for c in chunks) <= 100
    assert sum(len(c.text) for c in chunks) < 2 * len(text)


def test_parsed_file_chunks_end_to_end() -> None:
    chunks = chunk_blocks("config.rst", parse(RST, ".rst"), chunk_words=60, overlap_words=10)
    assert chunks and all(c.source == "config.rst" for c in chunks)
    assert all(c.heading_path[:1] == ("Configuration",) for c in chunks)
    for chunk in chunks:
        assert [chunk.text[b.start : b.end] for b in chunk.blocks] == chunk.text.split("\n\n")


def test_a_parse_that_runs_too_long_gives_way_to_plain_text() -> None:
    text = "Some *emphasis* and `code`.\n\n" * 2000
    assert parse(text, ".md", timeout=1e-4) == parse(text, ".txt")
    assert parse(text, ".md")[0] == Block("prose", "Some emphasis and code.", ())


def test_mkdocs_admonitions_are_admonitions_without_their_title() -> None:
    """Python-Markdown and MkDocs write notes as "!!! note" with an indented body; read as raw
    text their syntax and title would lead the sentence."""
    text = (
        '# Fences\n\n!!! note "About Pygments"\n    The extension does not alter the highlighted output.\n\nAfter it.\n'
    )
    found = parse(text, ".md")
    assert [(b.kind, b.text) for b in found] == [
        ("heading", "Fences"),
        ("admonition", "The extension does not alter the highlighted output."),
        ("prose", "After it."),
    ]
    assert found[1].heading_path == ("Fences",)
