"""`voicerag config path|show|init`."""

from __future__ import annotations

from typing import Annotated

import typer

from voicerag_cli.cli.console import err, out, print_json
from voicerag_cli.cli.context import STATE

app = typer.Typer(help="Show or create the configuration file.", no_args_is_help=True)


@app.command("path")
def path() -> None:
    """Print the config file path in use."""
    from voicerag_cli.config import config_path

    out.print(str(config_path(STATE.config_file)), markup=False)


@app.command("show")
def show(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of TOML.")] = False,
) -> None:
    """Print the effective settings (defaults < file < VOICERAG_* env < flags)."""
    from voicerag_cli.config import redacted, render_toml

    settings = STATE.settings()
    # Passwords in URLs and pasted API keys are shown as ***: this output gets shared in bug reports.
    if as_json:
        print_json({"source": settings.source, "profile": settings.profile, "settings": redacted(settings)})
        return
    out.print(f"# effective settings; file layer: {settings.source}; profile: {settings.profile}", markup=False)
    out.print(render_toml(settings, redact=True), markup=False)


@app.command("init")
def init(force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False) -> None:
    """Write a config file with every key at its default."""
    from voicerag_cli.config import Settings, config_path, render_toml
    from voicerag_cli.errors import ConfigError

    target = config_path(STATE.config_file)
    if target.exists() and not force:
        raise ConfigError(f"config file already exists: {target} (use --force to overwrite)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(
        "# voicerag configuration: see docs/configuration.md\n" + render_toml(Settings()),
        encoding="utf-8",
    )
    tmp.replace(target)
    err.print(f"wrote {target}")
