"""Rich progress bars on stderr, shared by index and eval."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from voicerag_cli.cli.console import err


def make_progress(transient: bool = False) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=err,
        transient=transient,
        disable=not err.is_terminal and not _forced(),
    )


def _forced() -> bool:
    import os

    return os.environ.get("VOICERAG_PROGRESS", "") == "1"


@contextmanager
def stage_progress() -> Iterator[Callable[[str, int, int], None]]:
    """A callback(stage, done, total) that drives one bar per stage."""
    with make_progress() as progress:
        tasks: dict[str, TaskID] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total or None, status="")
            progress.update(tasks[stage], completed=done, total=total or None)

        yield update
