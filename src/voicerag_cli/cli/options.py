"""Options shared by several commands."""

from __future__ import annotations

from typing import Annotated

import typer

PROFILE_HELP = "Config profile: a named set of keys, built in (sonar, zh) or \\[profiles.NAME] in the config file."

Profile = Annotated[str | None, typer.Option("--profile", help=PROFILE_HELP, show_default=False)]


def with_default(text: str, default: object) -> str:
    """Help text ending in "[default: VALUE]", styled as Typer styles its own: these options
    default to None (the config file decides), so Typer would show no default, or "(VALUE)"."""
    return f"{text} [dim]\\[default: {default}][/dim]"
