"""Consoles: results go to stdout, progress and errors to stderr (so `--json | jq` works)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from rich.console import Console

# Piped output has no terminal width to respect: do not squeeze tables into 80 columns.
_PIPE_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200
out = Console(highlight=False, soft_wrap=False, width=_PIPE_WIDTH)
# Status lines name paths that scripts and people copy: never hard-wrap them at 80 columns.
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(payload: Any) -> None:
    # Plain print, not rich: byte-stable output for scripts.
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def error_line(message: str) -> None:
    # One line, no markup interpretation of user-supplied text.
    sys.stderr.write(f"voicerag: error: {' '.join(message.split())}\n")
    sys.stderr.flush()
