"""Incremental indexing: hash files, skip unchanged ones, replace changed ones, drop deleted
ones, embed new chunks in batches, and publish one new generation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from voicerag_cli.errors import IndexError_, InputError
from voicerag_cli.index import lexical
from voicerag_cli.index.base import Manifest, SpokenWriter
from voicerag_cli.index.chunking import Chunk, chunk_document
from voicerag_cli.index.documents import (
    DocumentReader,
    SourceFile,
    UnreadableFile,
    display_path,
    find_files,
    hash_file,
    json_fields,
)
from voicerag_cli.structure import READER_VERSION

if TYPE_CHECKING:
    from voicerag_cli.config import IndexConfig
    from voicerag_cli.index.base import SpokenPassageEmbedder, StoreRoot, StoreWriter
    from voicerag_cli.models.base import TextEmbedder

# progress(stage, done, total): stage is "scan", "embed" or "speak"
ProgressFn = Callable[[str, int, int], None]


@dataclass
class IndexReport:
    name: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    chunks_embedded: int = 0
    chunks_spoken: int = 0  # spoken-passage vectors made (`index.spoken`)
    manifest: Manifest | None = None
    skipped_empty: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # files skipped and why (unreadable, symlinks, names)


def build_index(
    root: StoreRoot,
    name: str,
    paths: list[Path],
    config: IndexConfig,
    embedder_factory: Callable[[], TextEmbedder],
    rebuild: bool = False,
    progress: ProgressFn | None = None,
    extra: dict[str, object] | None = None,
    follow_symlinks: bool = False,
    spoken_factory: Callable[[], SpokenPassageEmbedder] | None = None,
) -> IndexReport:
    """Bring index `name` up to date with the files under `paths`.

    Indexing another folder into the same index adds to it. A file indexed before is removed
    when it no longer exists, or when it lay under one of `paths` and is no longer found
    there (e.g. its extension is no longer indexed). The embedder is constructed only when
    something needs embedding. `spoken_factory` (index.spoken_passages): every chunk also gets a
    spoken-passage vector (`index.spoken`), made for the chunks that lack one; without it an
    index's spoken vectors are dropped.
    """
    report_progress = progress or (lambda stage, done, total: None)
    report = IndexReport(name)
    outside: set[str] = set()  # symlinks skipped because they lead out of the folders indexed
    files = find_files(paths, config.extensions, config.exclude, follow_symlinks, report.notes, outside)
    if not files:
        shown = ", ".join(display_path(p) for p in paths)
        more = f" (and {len(report.notes) - 1} more)" if len(report.notes) > 1 else ""
        skipped = f"; {report.notes[0]}{more}" if report.notes else ""
        raise InputError(f"no documents found under {shown} (looked for {', '.join(config.extensions)}){skipped}")

    with root.lock(name):
        previous = None if rebuild or not root.exists(name) else root.manifest(name)
        if previous is not None:
            _check_compatible(previous, config)
        hashed = []
        unreadable: set[str] = set()
        for done, path in enumerate(files, start=1):
            try:
                hashed.append(hash_file(path))
            except InputError as exc:  # e.g. permission denied: skip it, index the rest
                report.notes.append(f"skipped: {exc}")
                unreadable.add(str(path))
            report_progress("scan", done, len(files))

        known = _known_hashes(root, name) if previous else {}
        current_keys = {f.key for f in hashed} | unreadable  # an unreadable file keeps what it had
        reread = _reader_changed(previous, config)
        to_embed = [f for f in hashed if known.get(f.key) != f.content_hash or reread(f.path)]
        report.unchanged = len(hashed) - len(to_embed)
        deleted = sorted(key for key in set(known) - current_keys if key in outside or _was_deleted(Path(key), paths))
        speaker = spoken_factory() if spoken_factory is not None and root.keeps_spoken else None
        if spoken_factory is not None and speaker is None:
            report.notes.append(f"{root.kind} indexes keep no spoken-passage vectors: e2e ranks by text vectors")
        stale_spoken = _spoken_stale(previous, speaker)
        nothing_new = not to_embed and not deleted and previous is not None
        if nothing_new and not _lacks_terms(root, previous) and not stale_spoken:  # type: ignore[arg-type]
            report.manifest = previous
            return report

        pending: list[tuple[str, list[Chunk]]] = []
        read: dict[str, SourceFile] = {}  # the hash and size of the bytes each file's chunks came from
        for source in to_embed:
            try:
                read[source.key], chunks = _read_once(source.path, config, report.notes)
            except UnreadableFile as exc:  # vanished or unreadable since the scan: skip it, index the rest
                report.notes.append(f"skipped: {exc}")
                continue
            pending.append((source.key, chunks))
            if not chunks:
                report.skipped_empty.append(source.key)
        to_embed = [source for source in to_embed if source.key in read]  # the skipped keep what they had
        with_text = {key for key, chunks in pending if chunks}
        left_alone = set(known) - {source.key for source in to_embed} - set(deleted)
        if pending and not with_text and (previous is None or not previous.chunks or not left_alone):
            # the run would leave the index empty: a wrong --json-field, say; refuse, index untouched
            raise InputError(_no_text_message([source.path for source in to_embed], config.json_text_field))
        reread_sources = [source for source in to_embed if reread(source.path)]
        if reread_sources and not with_text & {source.key for source in reread_sources}:
            # a reader setting changed and no file read again with it gives text: a wrong field name,
            # not a request to drop those files from the index
            raise InputError(_no_text_message([source.path for source in reread_sources], config.json_text_field))

        embedder = None
        if previous is None or with_text:  # else: nothing to embed
            embedder = embedder_factory()
            if previous is not None and embedder.space != previous.space:
                raise IndexError_(
                    f"index {name!r} holds {previous.space_id} vectors but the text embedder is "
                    f"{embedder.space.space_id}; rerun with --rebuild to re-embed everything"
                )
        space = embedder.space if embedder is not None else previous.space  # type: ignore[union-attr]
        manifest = Manifest(
            name=name,
            space_id=space.space_id,
            dim=space.dim,
            chunk_words=config.chunk_words,
            overlap_words=config.overlap_words,
            hnsw_m=config.hnsw_m,
            hnsw_ef_construction=config.hnsw_ef_construction,
            metric=space.metric,
            extra={**(extra or {}), "reader": _reader_settings(config)},
        )
        with root.writer(manifest, rebuild=rebuild) as writer:
            for key in deleted:
                writer.remove_file(key)
                report.removed.append(key)
            for key, _ in pending:
                if key in known:
                    writer.remove_file(key)
                    report.updated.append(key)
                else:
                    report.added.append(key)
                source = read[key]
                writer.add_file(key, source.content_hash, source.size)
            if embedder is not None:
                report.chunks_embedded = _embed_and_add(writer, embedder, pending, config.batch_size, report_progress)
            if isinstance(writer, SpokenWriter):
                report.chunks_spoken = _speak_and_add(writer, speaker, stale_spoken, config.batch_size, report_progress)
            report.manifest = writer.commit()
        return report


def _read_once(path: Path, config: IndexConfig, notes: list[str]) -> tuple[SourceFile, list[Chunk]]:
    """Read and chunk one file in a single pass: the hash returned is that of exactly the bytes
    chunked, so the index never records one version's hash with another's chunks. A file whose
    stat changed while it was read is read once more; if it changes again it is indexed as read,
    with a note (the next run sees its new hash and reads it again)."""
    for attempt in (1, 2):
        reader = DocumentReader(path, config.json_text_field)
        chunks: list[Chunk] = []
        ordinals: dict[str, int] = {}  # a file read in pieces numbers its chunks on across them
        for document in reader.documents():
            first = ordinals.get(document.source, 0)
            for chunk in chunk_document(
                document.source, document.text, document.markup, config.chunk_words, config.overlap_words
            ):
                if document.offset or first:
                    chunk = replace(
                        chunk,
                        ordinal=first + chunk.ordinal,
                        start=chunk.start + document.offset,
                        end=chunk.end + document.offset,
                    )
                chunks.append(chunk)
                ordinals[document.source] = chunk.ordinal + 1
        source = reader.source
        assert source is not None
        if reader.changed and attempt == 1:
            continue  # read it once more
        if reader.changed:
            notes.append(
                f"{display_path(path)} changed while it was read: indexed as read; the next run reads it again"
            )
        return source, chunks
    raise AssertionError("unreachable: the second reading returns")


def _spoken_stale(previous: Manifest | None, speaker: SpokenPassageEmbedder | None) -> bool:
    """Whether the index's spoken vectors must be remade from scratch (or dropped): they were
    made another way than `speaker` makes them, or none are wanted and some are there. An index
    with vectors made the same way only needs its new chunks spoken."""
    recorded = previous.extra.get("spoken") if previous is not None else None
    if speaker is None:
        return recorded is not None
    return previous is not None and previous.chunks > 0 and recorded != speaker.recipe


def _speak_and_add(
    writer: SpokenWriter,
    speaker: SpokenPassageEmbedder | None,
    stale: bool,
    batch_size: int,
    report_progress: ProgressFn,
) -> int:
    """Spoken vectors for every chunk that lacks one (all of them when `stale`); none at all
    without a `speaker`. Returns how many were made."""
    if stale:
        writer.drop_spoken()
    if speaker is None:
        return 0
    todo = writer.spoken_missing()
    report_progress("speak", 0, len(todo))
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        vectors = speaker.embed_spoken([text for _, text in batch])
        writer.add_spoken([i for i, _ in batch], vectors, speaker.recipe)
        report_progress("speak", start + len(batch), len(todo))
    return len(todo)


def _lacks_terms(root: StoreRoot, previous: Manifest) -> bool:
    """An index of a store that keeps lexical terms, written before its terms (or older ones):
    the next run adds them even when no file changed."""
    return root.keeps_terms and previous.extra.get("lexical") != lexical.TERMS_VERSION


def _embed_and_add(
    writer: StoreWriter,
    embedder: TextEmbedder,
    pending: list[tuple[str, list[Chunk]]],
    batch_size: int,
    report_progress: ProgressFn,
) -> int:
    """Embed all pending chunks in full batches across file boundaries (small files would
    otherwise make small, slow batches), adding each batch's chunks file by file, in order."""
    flat = [(key, chunk) for key, chunks in pending for chunk in chunks]
    report_progress("embed", 0, len(flat))
    for start in range(0, len(flat), batch_size):
        batch = flat[start : start + batch_size]
        texts = [chunk.searchable_text for _, chunk in batch]
        vectors = np.asarray(embedder.embed_texts(texts, batch_size=batch_size))
        first = 0
        while first < len(batch):
            key = batch[first][0]
            last = first
            while last < len(batch) and batch[last][0] == key:
                last += 1
            writer.add_chunks(key, [chunk for _, chunk in batch[first:last]], vectors[first:last])
            first = last
        report_progress("embed", start + len(batch), len(flat))
    return len(flat)


def _was_deleted(path: Path, roots: list[Path]) -> bool:
    if not path.exists():
        return True
    return any(path.is_relative_to(root.resolve()) for root in roots if root.is_dir())


def _reader_settings(config: IndexConfig) -> dict[str, str | int]:
    """Settings that change what is read from a file (recorded in the manifest), and the
    version of the structure readers."""
    return {"json_text_field": config.json_text_field, "structure": READER_VERSION}


def _reader_changed(previous: Manifest | None, config: IndexConfig) -> Callable[[Path], bool]:
    """Which unchanged files must be read again because a reader setting or the structure
    readers changed (every file). Indexes from before the manifest recorded the field were read
    with the default one, "text"."""
    if previous is None:
        return lambda path: False
    before = previous.extra.get("reader", {"json_text_field": "text"})
    if before.get("structure") != READER_VERSION:
        return lambda path: True
    if before.get("json_text_field") == config.json_text_field:
        return lambda path: False
    return lambda path: path.suffix.lower() in {".json", ".jsonl"}


def _no_text_message(paths: list[Path], field_name: str) -> str:
    seen = json_fields([p for p in paths if p.suffix.lower() in {".json", ".jsonl"}])
    where = ", ".join(display_path(p) for p in paths[:3]) + (" ..." if len(paths) > 3 else "")
    message = f"no text found in {len(paths)} file(s) ({where})"
    if seen:
        message += (
            f"; JSON records have no string field {field_name!r}: fields seen: {', '.join(seen[:12])}"
            " (choose one with --json-field / index.json_text_field)"
        )
    return message


def _known_hashes(root: StoreRoot, name: str) -> dict[str, str]:
    reader = root.open(name)
    try:
        return reader.files()
    finally:
        reader.close()


def _check_compatible(previous: Manifest, config: IndexConfig) -> None:
    if (previous.chunk_words, previous.overlap_words) != (config.chunk_words, config.overlap_words):
        raise IndexError_(
            f"index {previous.name!r} was chunked with chunk_words={previous.chunk_words}, "
            f"overlap_words={previous.overlap_words}; the config now says {config.chunk_words}/"
            f"{config.overlap_words}: rerun with --rebuild to re-chunk"
        )
