#!/usr/bin/env python3
"""(Re)write docs/cli.md, the command-line reference, from the Typer app itself.

Walks the click command tree (`typer.main.get_command(app)`) and writes each command's help,
usage, arguments and options as Markdown. The text comes from the app's own help records, with
no terminal in between, so the file does not depend on the terminal's width.

    python3 scripts/gen_cli_docs.py          # rewrite docs/cli.md
    python3 scripts/gen_cli_docs.py --check  # exit 1 if docs/cli.md is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "cli.md"
COMMAND = "python3 scripts/gen_cli_docs.py"


def plain(text: str | None) -> str:
    """Help text without rich markup (`[dim]`, escaped `\\[`) and click's `\\b` no-rewrap marks."""
    if not text:
        return ""
    from rich.text import Text

    lines = [line for line in Text.from_markup(text).plain.splitlines() if line.strip() != "\b"]
    return "\n".join(lines).strip()


def cell(text: str) -> str:
    """One Markdown table cell: a single line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def paragraphs(text: str) -> str:
    """Help text as Markdown paragraphs: lines of one paragraph joined, blank lines kept."""
    blocks = [" ".join(block.split()) for block in text.split("\n\n")]
    return "\n\n".join(block for block in blocks if block)


def render_command(command: Any, ctx: Any) -> list[str]:
    """The Markdown section of one command (not its subcommands)."""
    lines = [f"## `{ctx.command_path}`", ""]
    help_text = paragraphs(plain(command.help))
    if help_text:
        lines += [help_text, ""]
    usage = " ".join([ctx.command_path, *command.collect_usage_pieces(ctx)])
    lines += ["```text", usage, "```", ""]
    for kind in ("argument", "option"):
        rows = []
        for param in command.params:
            record = None if getattr(param, "hidden", False) else param.get_help_record(ctx)
            if record is not None and param.param_type_name == kind:
                names, description = record
                rows.append(f"| `{cell(names)}` | {cell(plain(description))} |")
        if rows:
            lines += [f"| {kind} | description |", "|---|---|", *rows, ""]
    if getattr(command, "commands", None):
        lines += ["Commands:", ""]
        for name in command.list_commands(ctx):
            sub = command.commands[name]
            summary = plain(sub.get_short_help_str(limit=10_000))
            lines.append(f"- [`{ctx.command_path} {name}`](#{anchor(f'{ctx.command_path} {name}')}): {summary}")
        lines.append("")
    return lines


def anchor(title: str) -> str:
    """GitHub's anchor for a heading `## \\`title\\``: lower case, spaces to hyphens."""
    return "".join(c for c in title.lower().replace(" ", "-") if c.isalnum() or c in "-_")


def render() -> str:
    """docs/cli.md as it should be for the app on the import path."""
    import typer.main

    from voicerag_cli.cli.app import app

    root = typer.main.get_command(app)
    lines = [
        "# Command-line reference",
        "",
        f"Generated from the app by `{COMMAND}`; do not edit by hand. The same help text as",
        "`voicerag COMMAND --help` prints, without the terminal's layout. Guides: [README](../README.md#documentation).",
        "",
    ]
    stack = [(root, root.context_class(root, info_name="voicerag"))]
    while stack:
        command, ctx = stack.pop(0)
        lines += render_command(command, ctx)
        for name in command.list_commands(ctx) if getattr(command, "commands", None) else []:
            sub = command.commands[name]
            stack.append((sub, sub.context_class(sub, info_name=name, parent=ctx)))
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if docs/cli.md differs")
    args = parser.parse_args()
    text = render()
    current = OUT.read_text(encoding="utf-8") if OUT.exists() else None
    if current == text:
        return 0
    if args.check:
        print(f"docs/cli.md is stale: run {COMMAND}", file=sys.stderr)
        return 1
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
