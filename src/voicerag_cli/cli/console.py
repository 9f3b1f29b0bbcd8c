"""Consoles: results go to stdout, progress and errors to stderr (so `--json | jq` works)."""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

from rich.console import Console

# Piped output has no terminal width to respect: do not squeeze tables into 80 columns.
_PIPE_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200
out = Console(highlight=False, soft_wrap=False, width=_PIPE_WIDTH)
# Status lines name paths that scripts and people copy: never hard-wrap them at 80 columns.
err = Console(stderr=True, highlight=False, soft_wrap=True)


# ANSI/VT escape sequences (CSI, OSC, other ESC forms) and every other C0/C1 control character
# but tab and newline: text from documents and file names must not drive the terminal.
_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?|\x9b[0-?]*[ -/]*[@-~]|"
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


def strip_controls(text: str) -> str:
    return _CONTROL.sub("", text)


def safe(text: str) -> str:
    """Untrusted text (documents, file names, transcripts) for rich output: controls removed,
    rich markup escaped. JSON output does not use this: it stays exact."""
    from rich.markup import escape

    return escape(strip_controls(text))


def print_json(payload: Any) -> None:
    # Plain print, not rich: byte-stable output for scripts.
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def error_line(message: str) -> None:
    # One line, no markup interpretation of user-supplied text.
    sys.stderr.write(f"voicerag: error: {' '.join(strip_controls(message).split())}\n")
    sys.stderr.flush()
