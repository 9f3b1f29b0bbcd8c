"""`voicerag voices`: the Kokoro voice styles at hand, and installing the other v1.0 ones."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from voicerag_cli.cli.console import err, out, print_json
from voicerag_cli.cli.context import STATE


def voices(
    install: Annotated[
        bool,
        typer.Option(
            "--install", help="Fetch the other Kokoro v1.0 styles (npm package kokoro-js) into the user cache."
        ),
    ] = False,
    source: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="With --install: a kokoro-js tarball (from `npm pack kokoro-js@1.2.1`) instead of running npm.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List Kokoro voice styles: the wheels' five, plus any installed (native Mandarin and English
    speakers, which `--install` adds); each answer without a configured `tts.voice` uses its
    language's default."""
    from voicerag_cli.models import kokoro_voices
    from voicerag_cli.models.kokoro import DEFAULT_VOICES, default_voice, load_voices
    from voicerag_cli.paths import cache_dir

    if source is not None and not install:
        raise typer.BadParameter("a tarball to install from: add --install", param_hint="'--from'")
    cache = cache_dir(STATE.settings().paths.cache_dir)
    if install:
        if source is None and not as_json:
            err.print(f"fetching {kokoro_voices.NPM_PACKAGE} with npm ...")
        installed = kokoro_voices.install(cache, source)
        if not as_json:
            mandarin = [name for name in installed if name.startswith("z")]
            err.print(
                f"installed {len(installed)} Kokoro voices into {kokoro_voices.installed_path(cache)}"
                + (f" ({len(mandarin)} Mandarin: {', '.join(mandarin)})" if mandarin else "")
            )
    _, styles = load_voices(cache)
    wheel = set(load_voices()[1])
    defaults = {language: default_voice(language, styles) for language in DEFAULT_VOICES}
    rows: list[dict[str, Any]] = [
        {
            "name": name,
            "language": kokoro_voices.LANGUAGES.get(name[0], "?"),
            "origin": "wheel" if name in wheel else "installed",
            "default_for": [language for language, chosen in defaults.items() if chosen == name],
        }
        for name in sorted(styles)
    ]
    if as_json:
        print_json({"voices": rows, "installed_path": str(kokoro_voices.installed_path(cache))})
        return
    from rich.table import Table

    table = Table(title="Kokoro voices (tts.voice; blends like a:0.7+b:0.3)")
    for column in ("name", "language", "origin", "default for"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["language"], row["origin"], ", ".join(row["default_for"]))
    out.print(table)
    if set(styles) == wheel:
        out.print("More voices, native Mandarin and English among them: voicerag voices --install")
