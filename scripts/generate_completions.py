#!/usr/bin/env python3
"""(Re)write the shell completion scripts in completions/ from the Typer app itself.

Each script is what `voicerag` prints when asked through the shell-completion protocol
(`_VOICERAG_COMPLETE=<shell>_source voicerag`); when the shell later completes a word, the
script calls `voicerag` again with `_VOICERAG_COMPLETE=complete_<shell>`, so completions always
follow the installed version's commands and options.

    python3 scripts/generate_completions.py          # rewrite completions/*
    python3 scripts/generate_completions.py --check  # exit 1 if a committed script is stale

Install: bash `source completions/voicerag.bash` (or copy it to
/etc/bash_completion.d/voicerag); zsh: put completions/_voicerag in a folder on $fpath; fish:
copy completions/voicerag.fish to ~/.config/fish/completions/.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "completions"
FILES = {"bash": "voicerag.bash", "zsh": "_voicerag", "fish": "voicerag.fish"}


def generate(shell: str) -> str:
    """The completion script for `shell`, as the app prints it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICERAG_")}
    env["_VOICERAG_COMPLETE"] = f"{shell}_source"
    proc = subprocess.run(
        [sys.executable, "-m", "voicerag_cli"], env=env, capture_output=True, text=True, check=False, cwd=REPO
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise SystemExit(f"generating the {shell} script failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout.strip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if any file differs")
    args = parser.parse_args()
    stale = []
    for shell, name in FILES.items():
        path = OUT_DIR / name
        script = generate(shell)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == script:
            continue
        stale.append(name)
        if not args.check:
            OUT_DIR.mkdir(exist_ok=True)
            path.write_text(script, encoding="utf-8")
            print(f"wrote {path.relative_to(REPO)}")
    if args.check and stale:
        print(f"stale completion scripts: {', '.join(stale)} (run scripts/generate_completions.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
