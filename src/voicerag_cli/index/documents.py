"""Find and read documents: txt, md, rst, html, json/jsonl (one text field), pdf."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voicerag_cli.errors import InputError, os_reason
from voicerag_cli.safe_io import file_kind, open_regular


@dataclass(frozen=True)
class Document:
    """One unit of text. A JSONL file yields one document per record (source 'file.jsonl#L3')."""

    source: str
    text: str
    markup: str = ""  # the suffix whose reader reads `text` as structure (".md", ".rst", ".html"); "" plain
    # where `text` starts in the file's text: a large plain-text file is read in pieces
    # (`DocumentReader`), each a Document of the same source
    offset: int = 0


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
        for path in _walk(root, follow_symlinks, notes):
            relative = path.relative_to(root)
            if any(part.startswith(".") for part in relative.parts) or _excluded(relative, patterns):
                continue
            try:
                is_folder = path.is_dir()
            except OSError as exc:  # a path longer than PATH_MAX
                _note(notes, f"skipped {display_path(path)}: {os_reason(exc)}")
                continue
            if is_folder:  # a symlinked folder, not entered
                if not any(path.resolve().is_relative_to(folder) for folder in folders):
                    _note(
                        notes,
                        f"skipped {display_path(path)}/: a symlink to a folder outside the folders indexed "
                        "(--follow-symlinks to index it)",
                    )
                continue
            if path.suffix.lower() not in wanted:
                continue
            try:
                if not stat.S_ISREG(os.stat(path).st_mode):
                    continue
            except FileNotFoundError:  # a broken symlink, or gone since it was listed
                continue
            except OSError as exc:  # a path longer than PATH_MAX, a folder we may not enter
                _note(notes, f"skipped {display_path(path)}: {os_reason(exc)}")
                continue
            if not is_utf8_name(path):
                _note(notes, f"skipped {display_path(path)}: its name is not valid UTF-8")
                continue
            try:
                target = path.resolve()
            except OSError as exc:
                _note(notes, f"skipped {display_path(path)}: {os_reason(exc)}")
                continue
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


def _walk(root: Path, follow_symlinks: bool, notes: list[str] | None = None) -> Iterator[Path]:
    """Every file below `root`; symlinked folders are entered only with `follow_symlinks`
    (each real folder once, so a link loop ends), else yielded themselves to be reported. A
    folder that cannot be listed (no permission, a path longer than PATH_MAX) is noted."""

    def unlisted(exc: OSError) -> None:
        _note(notes, f"skipped {display_path(exc.filename or root)}/: cannot list it: {os_reason(exc)}")

    seen: set[str] = set()
    for folder, dirs, files in os.walk(root, followlinks=follow_symlinks, onerror=unlisted):
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


class UnreadableFile(InputError):
    """A document the file system would not let us read (vanished, no permission, an I/O error,
    a path longer than PATH_MAX, no longer a regular file): `index` skips it with a note."""


def hash_file(path: Path) -> SourceFile:
    """Hash a file's bytes; a file that cannot be read is an UnreadableFile naming it."""
    with _HashingReader(path) as raw:
        while raw.read(1 << 20):
            pass
        return raw.source()


class _HashingReader(io.RawIOBase):
    """A document's bytes as a raw stream that hashes everything read: the hash recorded for a
    file is always that of the bytes its chunks came from. Opened without blocking (a FIFO put
    in a file's place must not hang the run) and refused unless a regular file. `changed()`
    says whether the file's stat differs after the read from before it (rewritten meanwhile)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.digest = hashlib.sha256()
        self.size = 0
        try:
            self.fd, self.before = open_regular(path)
        except OSError as exc:
            raise UnreadableFile(f"cannot read {display_path(path)}: {os_reason(exc)}") from exc
        if not stat.S_ISREG(self.before.st_mode):
            os.close(self.fd)
            raise UnreadableFile(f"cannot read {display_path(path)}: {file_kind(self.before.st_mode)}, not a file")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            count = os.readv(self.fd, [buffer])
        except OSError as exc:
            raise UnreadableFile(f"cannot read {display_path(self.path)}: {os_reason(exc)}") from exc
        if count:
            view = memoryview(buffer)[:count]
            self.digest.update(view)
            self.size += count
        return count

    def close(self) -> None:
        if not self.closed:
            os.close(self.fd)
        super().close()

    def source(self) -> SourceFile:
        return SourceFile(self.path, str(self.path), self.digest.hexdigest(), self.size)

    def changed(self) -> bool:
        """The file was written, replaced or removed while we read it."""
        try:
            after = os.stat(self.path)
        except OSError:
            return True
        now = os.fstat(self.fd)
        identity = (self.before.st_ino, self.before.st_dev, self.before.st_size, self.before.st_mtime_ns)
        return identity != (now.st_ino, now.st_dev, now.st_size, now.st_mtime_ns) or (
            (after.st_ino, after.st_dev) != (now.st_ino, now.st_dev)
        )

    def __enter__(self) -> _HashingReader:
        return self


# Plain-text files larger than this are read and chunked in pieces of about PIECE_CHARS
# characters, cut at paragraph breaks: memory then holds one piece, not the whole text.
STREAM_ABOVE = 8 << 20
PIECE_CHARS = 4 << 20


class DocumentReader:
    """Read one file once: the documents inside it (`documents()`, consumed one at a time), and
    after that `source`, whose hash is that of exactly the bytes the documents came from, and
    `changed`, whether the file was rewritten while it was read. OS-level failures raise
    UnreadableFile; a document the parsers refuse raises InputError."""

    def __init__(self, path: Path, json_text_field: str) -> None:
        self.path = path
        self.json_text_field = json_text_field
        self.source: SourceFile | None = None
        self.changed = False

    def documents(self) -> Iterator[Document]:
        with _HashingReader(self.path) as raw:
            suffix = self.path.suffix.lower()
            if suffix == ".pdf":
                data = b"".join(iter(lambda: raw.read(1 << 20), b""))
                self._finish(raw)
                yield from _read_pdf(self.path, data)
                return
            # utf-8-sig: a byte-order mark (common from Windows editors) is not text. Universal
            # newlines, as Path.read_text reads.
            text = io.TextIOWrapper(io.BufferedReader(raw, 1 << 20), encoding="utf-8-sig", errors="replace")
            if suffix in {".html", ".htm", ".json", ".jsonl"} or raw.before.st_size <= STREAM_ABOVE:
                whole = text.read()
                self._finish(raw)
                yield from _documents_of(self.path, whole, self.json_text_field)
                return
            yield from _pieces(str(self.path), text, suffix)
            self._finish(raw)

    def _finish(self, raw: _HashingReader) -> None:
        self.source = raw.source()
        self.changed = raw.changed()


def _pieces(source: str, text: io.TextIOWrapper, markup: str) -> Iterator[Document]:
    """A long plain text as Documents of about PIECE_CHARS characters, each ending at a paragraph
    break where there is one (else a line break, else a space)."""
    offset = 0
    carry = ""
    while True:
        block = text.read(PIECE_CHARS)
        buffer = carry + block
        if not block:
            if buffer:
                yield Document(source, buffer, markup, offset)
            return
        cut = -1
        for separator in ("\n\n", "\n", " "):
            cut = buffer.rfind(separator, PIECE_CHARS // 2)
            if cut > 0:
                cut += len(separator)
                break
        if cut <= 0:
            cut = len(buffer)
        yield Document(source, buffer[:cut], markup, offset)
        offset += cut
        carry = buffer[cut:]


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
    return list(DocumentReader(path, json_text_field).documents())


def _documents_of(path: Path, raw: str, json_text_field: str) -> list[Document]:
    suffix = path.suffix.lower()
    source = str(path)
    shown = display_path(path)
    if suffix == ".jsonl":
        docs: list[Document] = []
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


def _read_pdf(path: Path, data: bytes) -> list[Document]:
    import logging
    import warnings

    from pypdf import PdfReader
    from pypdf.errors import PdfReadWarning, PyPdfError

    # pypdf reports recoverable damage through logging and (older releases) PdfReadWarning: not
    # lines for our stderr.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=PdfReadWarning)
            reader = PdfReader(io.BytesIO(data))
            return [
                Document(f"{path}#page={number}", page.extract_text() or "")
                for number, page in enumerate(reader.pages, start=1)
            ]
    except PyPdfError as exc:
        # Includes LimitReachedError: pypdf refuses streams that decompress past its limits (bombs).
        raise InputError(f"cannot read PDF {display_path(path)}: {exc}") from exc
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, OSError) as exc:
        raise InputError(f"cannot read PDF {display_path(path)}: damaged ({type(exc).__name__})") from exc
