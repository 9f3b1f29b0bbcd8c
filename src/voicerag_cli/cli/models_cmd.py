"""`voicerag models`: what each role is configured to use, whether its weights are here."""

from __future__ import annotations

from typing import Annotated

import typer

from voicerag_cli.cli.console import out, print_json
from voicerag_cli.cli.context import STATE
from voicerag_cli.cli.options import Profile


def _size(size: int | None) -> str:
    if size is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return "-"


def models(
    check: Annotated[
        bool, typer.Option("--check", help="Load each configured backend and report load time or error.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    profile: Profile = None,
) -> None:
    """List model roles, the configured backend, weights location/presence/size, and load status."""
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
    if as_json:
        print_json({"models": rows})
        return
    from rich.table import Table

    table = Table(title="voicerag models")
    for column in ("role", "backend", "weights", "present", "size", "status"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["role"],
            row["backend"],
            row["weights"],
            "yes" if row["present"] else "[red]no[/]",
            _size(row["size_bytes"]),
            row["status"],
        )
    out.print(table)
