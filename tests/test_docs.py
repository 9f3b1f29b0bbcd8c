"""The documentation: docs/cli.md matches the app, every relative link in README and docs/
resolves (file and heading), and README stays a user's page that names CI's test command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from vrtest import REPO, load_script

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")
DOC_FILES = sorted(
    [
        REPO / "README.md",
        REPO / "CHANGELOG.md",
        REPO / "benchmarks" / "README.md",
        *REPO.glob("docs/*.md"),
        *REPO.glob("src/voicerag_cli/models/**/MODEL_CARD.md"),
    ]
)


def load_generator() -> ModuleType:
    return load_script("gen_cli_docs")


def test_cli_reference_is_up_to_date() -> None:
    generator = load_generator()
    committed = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    assert committed == generator.render(), "docs/cli.md is stale: run python3 scripts/gen_cli_docs.py"
    assert "## `voicerag ask`" in committed and "`--rag <str>`" in committed


def test_generating_the_cli_reference_imports_no_torch() -> None:
    """It runs in the fast lane: walking the app must stay as light as `--help`."""
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('g', {str(REPO / 'scripts' / 'gen_cli_docs.py')!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); m.render()\n"
        "print(sorted(n for n in ('torch', 'transformers', 'sentence_transformers') if n in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            base = slug(line.lstrip("#"))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[str]:
    targets: list[str] = []
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            in_code = not in_code
        elif not in_code:
            targets += LINK.findall(re.sub(r"`[^`]*`", "", line))
    return targets


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(path: Path) -> None:
    broken = []
    for target in links(path):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, fragment = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{path.relative_to(REPO)}: " + "; ".join(broken)


def test_readme_is_a_users_page_naming_ci_s_test_command() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 300
    assert "python3 -m pytest -q" in readme  # .ci/run runs exactly this
    assert "python3 -m pytest -q" in (REPO / ".ci" / "run").read_text(encoding="utf-8")
