"""`voicerag models`: what each role is configured to use, whether its weights are here."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any

import typer

from voicerag_cli.cli.console import out, print_json, safe
from voicerag_cli.cli.context import STATE
from voicerag_cli.cli.options import Profile

if TYPE_CHECKING:
    from rich.table import Table

# A shortened weights path keeps its last folders up to about this many characters: enough to
# tell which package or file it is, short enough to stay on one line at 80 columns.
SHORT_PATH_CHARS = 40


def _size(size: int | None) -> str:
    if size is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return "-"


def short_path(location: str, limit: int = SHORT_PATH_CHARS) -> str:
    """An absolute path cut to its last parts ("…/site-packages/pkg/model"); other locations
    (a package name, a URL, "-") and paths already short enough are returned as they are."""
    if not location.startswith("/") or len(location) <= limit:
        return location
    parts = PurePosixPath(location).parts[1:]
    kept = [parts[-1]]
    for part in reversed(parts[:-1]):
        if len("…/" + "/".join([part, *kept])) > limit:
            break
        kept.insert(0, part)
    return "…/" + "/".join(kept)


def status_word(present: bool) -> str:
    """Loading happens per process, so without --check the useful fact is whether the weights are here."""
    return "ready" if present else "missing"


def models(
    check: Annotated[
        bool, typer.Option("--check", help="Load each configured backend and report load time or error.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show full weights paths and summaries.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    profile: Profile = None,
) -> None:
    """List model roles, the configured backend, where its weights are, their size, and whether they are ready."""
    rows = _rows(check, profile)
    if as_json:
        print_json({"models": rows})
        return
    out.print(models_table(rows, verbose))


def _rows(check: bool, profile: str | None) -> list[dict[str, Any]]:
    from voicerag_cli.backends import load
    from voicerag_cli.errors import VoiceragError
    from voicerag_cli.registry import ROLES, known_backends

    settings = STATE.settings(profile=profile)
    registry = STATE.registry()
    rows = []
    for role in ROLES:
        spec = registry.spec(role)
        weights = load(spec.weights)(settings)
        status = "not loaded"
        if check:
            try:
                registry.get(role)
                status = f"loaded in {registry.load_seconds[role]:.2f} s"
            except VoiceragError as exc:
                status = f"error: {exc}"
        rows.append(
            {
                "role": role,
                "backend": spec.name,
                "available_backends": known_backends()[role],
                "summary": spec.summary,
                "weights": weights.location,
                "present": weights.present,
                "size_bytes": weights.size_bytes,
                "status": status,
            }
        )
    return rows


def models_table(rows: list[dict[str, Any]], verbose: bool = False) -> Table:
    """Names never break (no_wrap); the backend cell holds the weights path on its own line,
    the one column that folds when the terminal is narrow."""
    from rich import box
    from rich.table import Table

    table = Table(title="voicerag models", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    table.add_column("role", no_wrap=True)
    longest_backend = max((len(row["backend"]) for row in rows), default=0)
    table.add_column("backend · weights", overflow="fold", min_width=longest_backend)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("status", overflow="fold", min_width=len("missing"))
    for row in rows:
        table.add_row(row["role"], _backend_cell(row, verbose), _size(row["size_bytes"]), _status_cell(row))
    return table


def _backend_cell(row: dict[str, Any], verbose: bool) -> str:
    location = row["weights"] if verbose else short_path(row["weights"])
    lines = [f"[bold]{safe(row['backend'])}[/]"]
    if location != "-":
        lines.append(f"[dim]{safe(location)}[/]")
    if verbose:
        lines.append(f"[dim]{safe(row['summary'])}[/]")
    return "\n".join(lines)


def _status_cell(row: dict[str, Any]) -> str:
    if row["status"] == "not loaded":  # not checked: say whether it could load
        word = status_word(row["present"])
        return word if row["present"] else f"[red]{word}[/]"
    if row["status"].startswith("error"):
        return f"[red]{safe(row['status'])}[/]"
    return safe(row["status"])
