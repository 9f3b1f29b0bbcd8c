"""Find and read documents: txt, md, rst, html, json/jsonl (one text field), pdf."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

from voicerag_cli.errors import InputError


@dataclass(frozen=True)
class Document:
    """One unit of text. A JSONL file yields one document per record (source 'file.jsonl#L3')."""

    source: str
    text: str


@dataclass(frozen=True)
class SourceFile:
    path: Path
    key: str  # absolute, resolved path: the identity used for incremental updates
    content_hash: str
    size: int


def find_files(paths: list[Path], extensions: list[str]) -> list[Path]:
    """Expand folders recursively; keep files with a known extension; skip hidden entries."""
    wanted = {ext.lower() for ext in extensions}
    found: set[Path] = set()
    for root in paths:
        if not root.exists():
            raise InputError(f"path not found: {root}")
        if root.is_file():
            if root.suffix.lower() not in wanted:
                raise InputError(
                    f"unsupported file type {root.suffix or '(none)'}: {root} (known: {', '.join(sorted(wanted))})"
                )
            found.add(root.resolve())
            continue
        for path in root.rglob("*"):
            relative = path.relative_to(root)
            if any(part.startswith(".") for part in relative.parts):
                continue
            if path.is_file() and path.suffix.lower() in wanted:
                found.add(path.resolve())
    return sorted(found)


def hash_file(path: Path) -> SourceFile:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return SourceFile(path, str(path), digest.hexdigest(), path.stat().st_size)


class _HTMLText(HTMLParser):
    _SKIP: ClassVar[set[str]] = {"script", "style", "noscript", "template", "head"}
    _BLOCK: ClassVar[set[str]] = {
        "p",
        "div",
        "br",
        "li",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "tr",
        "section",
        "article",
        "pre",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _html_text(raw: str) -> str:
    parser = _HTMLText()
    parser.feed(raw)
    parser.close()
    # Block tags each add a paragraph break; collapse the runs they leave into one.
    return re.sub(r"\n\s*\n\s*", "\n\n", "".join(parser.parts)).strip()


def _json_texts(value: object, field: str) -> Iterator[str]:
    if isinstance(value, dict):
        text = value.get(field)
        if isinstance(text, str):
            yield text
        elif isinstance(text, list):
            yield from (item for item in text if isinstance(item, str))
    elif isinstance(value, list):
        for item in value:
            yield from _json_texts(item, field)
    elif isinstance(value, str):
        yield value


def read_documents(path: Path, json_text_field: str) -> list[Document]:
    """Return the documents inside one file; raise InputError if it cannot be read."""
    suffix = path.suffix.lower()
    source = str(path)
    try:
        if suffix == ".pdf":
            return _read_pdf(path)
        raw = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if suffix in {".html", ".htm"}:
        return [Document(source, _html_text(raw))]
    if suffix == ".jsonl":
        docs = []
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: invalid JSON ({exc.msg})") from exc
            docs.extend(Document(f"{source}#L{number}", text) for text in _json_texts(record, json_text_field))
        return docs
    if suffix == ".json":
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from exc
        texts = list(_json_texts(data, json_text_field))
        return [Document(source if len(texts) == 1 else f"{source}#{i}", t) for i, t in enumerate(texts)]
    return [Document(source, raw)]


def _read_pdf(path: Path) -> list[Document]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        return [
            Document(f"{path}#page={number}", page.extract_text() or "")
            for number, page in enumerate(reader.pages, start=1)
        ]
    except (PdfReadError, ValueError, KeyError) as exc:
        raise InputError(f"cannot read PDF {path}: {exc}") from exc
