"""Options shared by several commands."""

from __future__ import annotations

from typing import Annotated

import typer

PROFILE_HELP = "Config profile: a named set of keys, built in (sonar, zh) or \\[profiles.NAME] in the config file."

Profile = Annotated[str | None, typer.Option("--profile", help=PROFILE_HELP, show_default=False)]
