"""`voicerag index`: build or update an index; list and drop indexes."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from voicerag_cli.cli.completion_values import index_names
from voicerag_cli.cli.console import err, out, print_json, safe
from voicerag_cli.cli.context import STATE
from voicerag_cli.cli.options import Profile
from voicerag_cli.languages import LANG_HELP, check_language, index_language, resolve

if TYPE_CHECKING:
    from collections.abc import Callable

    from voicerag_cli.config import Settings
    from voicerag_cli.index.base import StoreRoot
    from voicerag_cli.pipeline.spoken_passages import SpokenPassages


def index(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or folders to index.", show_default=False)] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", "-n", autocompletion=index_names, help="Index name (default: index.name, 'default')."),
    ] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Start over instead of updating incrementally.")] = False,
    chunk_words: Annotated[int | None, typer.Option(help="Words per chunk (index.chunk_words).")] = None,
    overlap_words: Annotated[int | None, typer.Option(help="Overlap between chunks (index.overlap_words).")] = None,
    lang: Annotated[
        str | None,
        typer.Option("--lang", help=LANG_HELP),
    ] = None,
    json_field: Annotated[
        str | None,
        typer.Option("--json-field", help="Text field of .json/.jsonl records (index.json_text_field)."),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="Where indexes live: hnswlib (default), milvus://host:port\\[/collection], milvus-lite:PATH.db.",
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude",
            help="Skip names matching this glob (repeatable; added to index.exclude).",
            show_default=False,
        ),
    ] = None,
    follow_symlinks: Annotated[
        bool | None,
        typer.Option(
            "--follow-symlinks",
            help="Index symlinks that lead outside the folders given (index.follow_symlinks).",
            show_default=False,
        ),
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="List indexes and exit.")] = False,
    drop: Annotated[str | None, typer.Option("--drop", help="Delete the named index and exit.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a summary.")] = False,
    profile: Profile = None,
) -> None:
    """Index documents (.txt, .md/.markdown, .rst, .html/.htm, .json/.jsonl, .pdf) into a named vector index.

    Re-running is incremental: unchanged files are skipped, changed ones re-embedded, deleted ones removed.
    """
    profile, lang_settings = resolve(lang, profile)  # --lang: a profile, and backend keys
    settings = STATE.settings(
        {
            "index.name": name,
            "index.chunk_words": chunk_words,
            "index.overlap_words": overlap_words,
            "index.json_text_field": json_field,
            "index.store": store,
            "index.follow_symlinks": follow_symlinks,
            **lang_settings,
        },
        profile=profile,
    )
    index_config = settings.index
    if exclude:
        index_config = replace(index_config, exclude=[*index_config.exclude, *exclude])
    root = STATE.index_root()
    if list_:
        _list(root, as_json)
        return
    if drop is not None:
        root.drop(drop)
        if as_json:
            print_json({"dropped": drop})
        else:
            err.print(f"dropped index {drop!r}")
        return
    if not paths:
        raise typer.BadParameter("give at least one file or folder to index (or --list / --drop NAME)")

    from voicerag_cli.cli.progress import stage_progress
    from voicerag_cli.index.builder import build_index
    from voicerag_cli.index.documents import display_path

    started = time.perf_counter()
    with stage_progress() as progress:
        report = build_index(
            root,
            settings.index.name,
            paths,
            index_config,
            embedder_factory=STATE.registry().text_embedder,
            rebuild=rebuild,
            progress=progress,
            extra=_manifest_extra(settings, root, rebuild),
            follow_symlinks=settings.index.follow_symlinks,
            spoken_factory=_spoken_factory(settings),
        )
    seconds = time.perf_counter() - started
    manifest = report.manifest
    assert manifest is not None
    summary = {
        "index": report.name,
        "path": root.location(report.name),
        "added": len(report.added),
        "updated": len(report.updated),
        "removed": len(report.removed),
        "unchanged": report.unchanged,
        "empty_files": report.skipped_empty,
        "skipped": report.notes,
        "chunks_embedded": report.chunks_embedded,
        "chunks_spoken": report.chunks_spoken,
        "files": manifest.files,
        "chunks": manifest.chunks,
        "space_id": manifest.space_id,
        "dim": manifest.dim,
        "generation": manifest.generation,
        "seconds": round(seconds, 2),
    }
    if as_json:
        print_json(summary)
        return
    for note in report.notes:
        err.print(f"[yellow]note:[/] {safe(note)}")
    out.print(
        f"index [bold]{report.name}[/]: {summary['added']} added, {summary['updated']} updated, "
        f"{summary['removed']} removed, {summary['unchanged']} unchanged; "
        f"{manifest.files} files, {manifest.chunks} chunks ({manifest.space_id}, {manifest.dim}-d) in {seconds:.1f} s"
    )
    for path in report.skipped_empty:
        err.print(f"[yellow]note:[/] no text found in {safe(display_path(path))}")


def _manifest_extra(settings: Settings, root: StoreRoot, rebuild: bool) -> dict[str, Any] | None:
    """Every index records its language, and what the text embedder's index_extra hook adds
    (the backend table: SONAR records its text languages)."""
    name = settings.index.name
    previous = None if rebuild or not root.exists(name) else root.manifest(name).extra
    if previous:
        check_language(name, previous, settings)  # adding Chinese files to an English index is a mistake
    extra: dict[str, Any] = {"language": index_language(settings)}
    extra.update(STATE.registry().index_extra(previous))
    return extra


def _list(root: StoreRoot, as_json: bool) -> None:
    from rich.table import Table

    rows = []
    for index_name in root.names():
        m = root.manifest(index_name)
        rows.append(
            {
                "name": index_name,
                "files": m.files,
                "chunks": m.chunks,
                "space_id": m.space_id,
                "dim": m.dim,
                "updated_at": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(m.updated_at)),
            }
        )
    if as_json:
        print_json({"root": root.describe(), "indexes": rows})
        return
    if not rows:
        err.print(f"no indexes in {root.describe()}: run `voicerag index PATH`")
        return
    table = Table(title=f"indexes in {root.describe()}")
    for column in ("name", "files", "chunks", "space_id", "dim", "updated_at"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row[c]) for c in ("name", "files", "chunks", "space_id", "dim", "updated_at")))
    out.print(table)


def _spoken_factory(settings: Settings) -> Callable[[], SpokenPassages] | None:
    """index.spoken_passages: the maker of spoken-passage vectors for e2e (`index.spoken`)."""
    if not settings.index.spoken_passages:
        return None
    from voicerag_cli.pipeline.spoken_passages import SpokenPassages

    return lambda: SpokenPassages(STATE.registry())
