"""How-to questions, API names and documentation sentences from the docs of libraries on the
training list of ../shared/notes/docs-libraries.md (never the held-out trials' libraries).

Users ask their documentation things like "How do I configure a connection pool?" or "What does
create_engine do?"; Wikipedia questions never sound like that. From each library's reST/Markdown
docs (unpacked source distributions, one folder per library) this makes:
  - "howto": a question per section heading ("Configuring logging" -> "How do I configure logging?");
  - "api": questions on the names of documented functions, classes and options;
  - "docs_sentence": the first sentence of prose paragraphs, as passages are written.

An API name is spoken as words ("create_engine" -> "create engine"): the clip says `spoken`,
the teacher embeds `text`, so the head learns to reach the written name from its sound. The
docs are parsed with the reader's section splitter (training/reader/build_data.py).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from training.reader import build_data as docs

# The training list of ../shared/notes/docs-libraries.md (lower case, as folder names start)
TRAINING_LIBRARIES = frozenset(
    [
        "sqlalchemy",
        "celery",
        "sphinx",
        "tox",
        "virtualenv",
        "setuptools",
        "pydantic",
        "fastapi",
        "starlette",
        "uvicorn",
        "aiohttp",
        "tornado",
        "paramiko",
        "fabric",
        "invoke",
        "rich",
        "textual",
        "beautifulsoup4",
        "bs4",
        "pillow",
        "scikit-learn",
        "sympy",
        "networkx",
        "dask",
        "polars",
        "duckdb",
        "redis",
        "psycopg",
        "peewee",
        "rq",
        "apscheduler",
        "arrow",
        "babel",
        "gunicorn",
        "falcon",
        "trio",
        "anyio",
        "structlog",
        "hypothesis",
        "nox",
        "pre-commit",
        "pylint",
        "isort",
        "numpy",
        "pandas",
        "matplotlib",
        "bokeh",
        "pytest-django",
        "pytest_django",
        "jupyter-server",
        "jupyter_server",
        "ipython",
        "sphinx-autodoc-typehints",
        "sphinx_autodoc_typehints",
    ]
)
MIN_WORDS, MAX_WORDS = 4, 28
API_TEMPLATES = (
    "What does {n} do?",
    "How do I use {n}?",
    "{n}",
    "What arguments does {n} take?",
    "Show me an example of {n}.",
    "What does {n} return?",
    "When should I use {n}?",
    "{lib} {n}",
)
OPTION_TEMPLATES = (
    "What does the {n} option do?",
    "What is the default value of {n}?",
    "How do I set {n}?",
    "{n} setting",
    "What is {n} in {lib}?",
)
_IDENTIFIER = re.compile(r"[A-Za-z_][\w.]*")


@dataclass(frozen=True)
class DocsText:
    text: str  # what the teacher embeds (as written in docs)
    spoken: str  # what the clip says
    kind: str  # "howto", "api", "docs_sentence"
    library: str


def library_name(folder: Path) -> str:
    """`sqlalchemy-2.1.9` -> `sqlalchemy`."""
    return re.sub(r"-[\d.]+.*$", "", folder.name).lower()


def spoken_name(name: str) -> str:
    """How a person says an API name: `Session.commit` -> "Session commit", `max_overflow` ->
    "max overflow", `getLogger` -> "get Logger", `--log-level` -> "log level"."""
    name = name.strip().lstrip("-").rstrip("()")
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return re.sub(r"[_.\-/:]+", " ", name).strip()


def speak_names(text: str) -> str:
    """`text` with every identifier-like token (one with `_`, `.` or inner capitals) spoken."""

    def say(match: re.Match[str]) -> str:
        token = match.group(0)
        if "_" in token or "." in token.strip(".") or re.search(r"[a-z][A-Z]", token):
            return spoken_name(token)
        return token

    return _IDENTIFIER.sub(say, text)


def doc_files(folder: Path) -> Iterator[tuple[str, str]]:
    """(path inside the library, text) of its reST/Markdown docs, skipping licences and tests."""
    for path in sorted(folder.rglob("*")):
        if path.suffix not in {".rst", ".md", ".txt"} or not path.is_file():
            continue
        relative = str(path.relative_to(folder))
        if path.suffix == ".txt" and not relative.startswith(("doc", "docs")):
            continue
        if docs.SKIP_PATH.search("/" + relative):
            continue
        try:
            yield relative, path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue


def first_sentence(block: str) -> str:
    # one line first: a role or literal split over two lines is then cleaned too
    text = " ".join(docs.clean(" ".join(block.split())).split())
    text = re.sub(r"(?<![\w.])_+(?=[A-Za-z])", "", text)  # Sphinx's private-module prefixes (_orm.defer)
    return re.split(r"(?<=[.!?])\s+(?=[A-Z])", text, maxsplit=1)[0]


def api_names(text: str) -> Iterator[tuple[str, bool]]:
    """(name, is_option) of each documented function, class, attribute or option."""
    for line in text.splitlines():
        match = docs.DIRECTIVE.match(line)
        if not match:
            continue
        directive, argument = match.group(2), match.group(3).strip()
        is_option = directive in docs.OPTION_DIRECTIVES
        if not (is_option or directive in docs.SIG_DIRECTIVES or directive.startswith("auto")):
            continue
        if directive in {"automodule", "autosummary"}:
            continue
        found = _IDENTIFIER.search(argument.lstrip("-")) if argument else None
        if found and not any(part.startswith("_") for part in found.group(0).split(".")):
            name = found.group(0)
            # a short dotted tail reads as people say it: sqlalchemy.orm.Session.commit -> Session.commit
            yield ".".join(name.split(".")[-2:]) if name.count(".") > 1 else name, is_option


def library_texts(folder: Path, rng: random.Random, per_heading: int = 2) -> list[DocsText]:
    lib = library_name(folder)
    out: list[DocsText] = []
    names: dict[str, bool] = {}
    for relative, text in doc_files(folder):
        for name, is_option in api_names(text):
            names.setdefault(name, is_option)
        for section in docs.split_sections(lib, relative, text):
            if section.changelog:
                continue
            if 2 <= len(section.heading) <= 80:
                for _ in range(per_heading):
                    question, _kind = docs.heading_question(section.heading, rng)
                    out.append(DocsText(question, speak_names(question), "howto", lib))
            for block in section.blocks:
                if docs.is_prose(block) and not docs.DIRECTIVE.match(block.splitlines()[0]):
                    sentence = first_sentence(block)
                    if MIN_WORDS <= len(sentence.split()) <= MAX_WORDS and sentence[-1:] in ".?!:":
                        out.append(DocsText(sentence, speak_names(sentence), "docs_sentence", lib))
    for name, is_option in names.items():
        display = name.lstrip("-")
        if len(display) < 3:
            continue
        for template in rng.sample(OPTION_TEMPLATES if is_option else API_TEMPLATES, 2):
            question = template.format(n=display, lib=lib)
            out.append(DocsText(question, template.format(n=spoken_name(display), lib=lib), "api", lib))
    return out


def docs_texts(roots: list[Path], seed: int = 0) -> list[DocsText]:
    """Texts of every training-list library found as a folder under `roots`, de-duplicated; a
    folder of any other library is refused, so that no held-out library's docs slip in."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[DocsText] = []
    for root in roots:
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            lib = library_name(folder)
            if lib not in TRAINING_LIBRARIES:
                raise ValueError(f"{folder}: {lib} is not on the training list of docs-libraries.md")
            for item in library_texts(folder, rng):
                key = item.text.strip().lower()
                if key not in seen:
                    seen.add(key)
                    out.append(item)
    return out
