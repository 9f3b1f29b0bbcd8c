"""Find and read documents: txt, md, rst, html, json/jsonl (one text field), pdf."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from voicerag_cli.errors import InputError


@dataclass(frozen=True)
class Document:
    """One unit of text. A JSONL file yields one document per record (source 'file.jsonl#L3')."""

    source: str
    text: str
    markup: str = ""  # the suffix whose reader reads `text` as structure (".md", ".rst", ".html"); "" plain


@dataclass(frozen=True)
class SourceFile:
    path: Path
    key: str  # absolute, resolved path: the identity used for incremental updates
    content_hash: str
    size: int


def find_files(
    paths: list[Path],
    extensions: list[str],
    exclude: list[str] | None = None,
    follow_symlinks: bool = False,
    notes: list[str] | None = None,
    skipped: set[str] | None = None,
) -> list[Path]:
    """Expand folders recursively; keep files with a known extension; skip hidden entries and
    names matching `exclude` (fnmatch on each path component, or on the path below the folder
    when the pattern has a '/').

    A symlink inside a folder whose target lies outside every folder given is skipped unless
    `follow_symlinks`: indexing a folder must not pull in files from elsewhere. A followed
    symlink is identified by the link's own path, so removing the link removes its chunks.
    Skipped entries that a user may not expect are described in `notes`; skipped symlinks'
    own and target paths are added to `skipped` (an index may hold them from an earlier run)."""
    wanted = {ext.lower() for ext in extensions}
    patterns = list(exclude or [])
    folders = [root.resolve() for root in paths if root.is_dir()]
    found: set[Path] = set()
    for root in paths:
        if not root.exists():
            raise InputError(f"path not found: {display_path(root)}")
        if root.is_file():
            if root.suffix.lower() not in wanted:
                raise InputError(
                    f"unsupported file type {root.suffix or '(none)'}: {display_path(root)} "
                    f"(known: {', '.join(sorted(wanted))})"
                )
            if not is_utf8_name(root):
                _note(notes, f"skipped {display_path(root)}: its name is not valid UTF-8")
                continue
            found.add(root.resolve())
            continue
        base = root.resolve()
        for path in _walk(root, follow_symlinks):
            relative = path.relative_to(root)
            if any(part.startswith(".") for part in relative.parts) or _excluded(relative, patterns):
                continue
            if path.is_dir():  # a symlinked folder, not entered
                if not any(path.resolve().is_relative_to(folder) for folder in folders):
                    _note(
                        notes,
                        f"skipped {display_path(path)}/: a symlink to a folder outside the folders indexed "
                        "(--follow-symlinks to index it)",
                    )
                continue
            if path.suffix.lower() not in wanted or not path.is_file():
                continue
            if not is_utf8_name(path):
                _note(notes, f"skipped {display_path(path)}: its name is not valid UTF-8")
                continue
            target = path.resolve()
            if any(target.is_relative_to(folder) for folder in folders):
                found.add(target)
                continue
            # Reached through a symlink (the file's or a folder's) that leads out of the folders.
            lexical = base / relative
            if not follow_symlinks:
                if skipped is not None:
                    skipped.update({str(target), str(lexical)})
                _note(
                    notes,
                    f"skipped {display_path(path)}: a symlink to {display_path(target)}, outside the "
                    "folders indexed (--follow-symlinks to index it)",
                )
                continue
            found.add(lexical)  # identified by the link's path: removing the link removes it
    return sorted(found)


def _walk(root: Path, follow_symlinks: bool) -> Iterator[Path]:
    """Every file below `root`; symlinked folders are entered only with `follow_symlinks`
    (each real folder once, so a link loop ends), else yielded themselves to be reported."""
    import os

    seen: set[str] = set()
    for folder, dirs, files in os.walk(root, followlinks=follow_symlinks):
        if follow_symlinks:
            real = os.path.realpath(folder)
            if real in seen:
                dirs[:] = []
                continue
            seen.add(real)
        else:
            yield from (Path(folder) / d for d in dirs if os.path.islink(os.path.join(folder, d)))
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            yield Path(folder) / name


def _excluded(relative: Path, patterns: list[str]) -> bool:
    from fnmatch import fnmatch

    text = relative.as_posix()
    for pattern in patterns:
        if "/" in pattern.strip("/"):
            if fnmatch(text, pattern.strip("/")) or fnmatch(text, pattern.strip("/") + "/*"):
                return True
        elif any(fnmatch(part, pattern.strip("/")) for part in relative.parts):
            return True
    return False


def _note(notes: list[str] | None, message: str) -> None:
    if notes is not None:
        notes.append(message)


def is_utf8_name(path: Path) -> bool:
    """File names are stored and printed as UTF-8; one that is not cannot be named in the index."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def display_path(path: Path | str) -> str:
    """A path as printable text: undecodable bytes of a file name shown as \\xNN escapes."""
    import os

    return os.fsencode(str(path)).decode("utf-8", errors="backslashreplace")


def hash_file(path: Path) -> SourceFile:
    """Hash a file's bytes; a file that cannot be read is an InputError naming it."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"cannot read {display_path(path)}: {exc.strerror or exc}") from exc
    return SourceFile(path, str(path), digest.hexdigest(), size)


def _json_texts(value: object, field: str) -> Iterator[str]:
    """The `field` strings of every record, in document order. Iterative: a deeply nested
    document that the parser accepted must not exhaust the stack here."""
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            text = item.get(field)
            if isinstance(text, str):
                yield text
            elif isinstance(text, list):
                yield from (t for t in text if isinstance(t, str))
        elif isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, str):
            yield item


def json_fields(paths: list[Path], limit: int = 1000) -> list[str]:
    """The keys of the first `limit` JSON records in these files (to name them in an error)."""
    seen: dict[str, None] = {}
    for path in paths:
        try:
            raw = path.read_text(encoding="utf-8-sig", errors="replace")
            lines = raw.splitlines() if path.suffix.lower() == ".jsonl" else [raw]
            for line in lines[:limit]:
                if not line.strip():
                    continue
                stack = [_parse_json(line, str(path))]
                while stack and len(seen) < 100:
                    item = stack.pop()
                    if isinstance(item, dict):
                        seen.update(dict.fromkeys(str(key) for key in item))
                    elif isinstance(item, list):
                        stack.extend(item[:limit])
        except (OSError, InputError):
            continue
    return list(seen)


def _parse_json(text: str, where: str) -> object:
    """json.loads that turns every way a file can defeat the parser into an InputError.

    Numbers are never text, so they are not converted: an integer literal of more than 4300
    digits would otherwise raise (CPython's int-from-string limit)."""
    try:
        return json.loads(text, parse_int=_ignore_number, parse_float=_ignore_number, parse_constant=_ignore_number)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: invalid JSON ({exc.msg} at line {exc.lineno})") from exc
    except RecursionError as exc:
        raise InputError(f"{where}: JSON nested too deeply to read") from exc


def _ignore_number(literal: str) -> None:
    return None


def read_documents(path: Path, json_text_field: str) -> list[Document]:
    """Return the documents inside one file; raise InputError if it cannot be read."""
    suffix = path.suffix.lower()
    source = str(path)
    shown = display_path(path)
    try:
        if suffix == ".pdf":
            return _read_pdf(path)
        # utf-8-sig: a byte-order mark (common from Windows editors) is not text.
        raw = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read {shown}: {exc.strerror or exc}") from exc
    if suffix == ".jsonl":
        docs = []
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            record = _parse_json(line, f"{shown}:{number}")
            docs.extend(Document(f"{source}#L{number}", text) for text in _json_texts(record, json_text_field))
        return docs
    if suffix == ".json":
        texts = list(_json_texts(_parse_json(raw, shown), json_text_field))
        return [Document(source if len(texts) == 1 else f"{source}#{i}", t) for i, t in enumerate(texts)]
    return [Document(source, raw, suffix)]


def _read_pdf(path: Path) -> list[Document]:
    import logging
    import warnings

    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    # pypdf reports recoverable damage through logging and warnings: not lines for our stderr.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(str(path))
            return [
                Document(f"{path}#page={number}", page.extract_text() or "")
                for number, page in enumerate(reader.pages, start=1)
            ]
    except PyPdfError as exc:
        # Includes LimitReachedError: pypdf refuses streams that decompress past its limits (bombs).
        raise InputError(f"cannot read PDF {display_path(path)}: {exc}") from exc
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, OSError) as exc:
        raise InputError(f"cannot read PDF {display_path(path)}: damaged ({type(exc).__name__})") from exc
