"""The install's shape: the base requirements reach no torch, transformers or sentence-transformers
(not even through another package's requirements), every module that imports one of them belongs
to a backend whose extra brings it, and that backend's row names the extra, so a user who picks it
without the extra is told what to install (checked through the CLI with the three unimportable)."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from voicerag_cli.backends import BACKENDS
from vrtest import EXAMPLES, CliResult, assert_error

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "voicerag_cli"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]

# import name -> pip name of the heavy libraries
HEAVY = {"torch": "torch", "transformers": "transformers", "sentence_transformers": "sentence-transformers"}
# The modules allowed to import them, and the extra that installs them there.
HOMES = {
    "voicerag_cli.models.sonar": "sonar",
    "voicerag_cli.models.glm4voice": "glm4voice",
    "voicerag_cli.models.sentence_embedder": "sentence-transformers",
    "voicerag_cli.models._offline": "sentence-transformers",  # quiets transformers' logging where installed
}


def name_of(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def extra_names(extra: str) -> set[str]:
    """The pip names an extra installs, its own references to other extras followed."""
    names: set[str] = set()
    for requirement in PYPROJECT["optional-dependencies"][extra]:
        name = name_of(requirement)
        if name == "voicerag":
            for inner in re.search(r"\[(.*)\]", requirement).group(1).split(","):  # type: ignore[union-attr]
                names |= extra_names(inner.strip())
        else:
            names.add(name)
    return names


def reached(requirements: list[str]) -> dict[str, str]:
    """Every installed distribution the requirements pull in (extras and markers aside), each
    with the chain that reaches it, read from the installed packages' metadata."""
    found: dict[str, str] = {}
    todo = [(name_of(r), "voicerag") for r in requirements]
    while todo:
        name, via = todo.pop()
        if name in found:
            continue
        found[name] = f"{via} -> {name}"
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        todo += [(name_of(r), found[name]) for r in requires if "extra ==" not in r]
    return found


def test_the_base_install_reaches_no_heavy_library() -> None:
    chains = reached(PYPROJECT["dependencies"])
    pulled = {name: chain for name, chain in chains.items() if name in HEAVY.values()}
    assert not pulled, pulled
    assert "faster-whisper" in chains and "onnxruntime" in chains  # the walk follows what is installed


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def heavy_imports() -> dict[str, set[str]]:
    """Module -> the heavy libraries it imports anywhere (module level or inside functions)."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            libraries = {n.split(".")[0] for n in names} & set(HEAVY)
            if libraries:
                found.setdefault(module_name(path), set()).update(libraries)
    return found


def home_of(module: str) -> str | None:
    return next((extra for home, extra in HOMES.items() if module == home or module.startswith(home + ".")), None)


def test_heavy_imports_live_in_backends_whose_extra_brings_them() -> None:
    found = heavy_imports()
    assert "voicerag_cli.models.sonar.embedders" in found  # the scan sees the known users
    for module, libraries in found.items():
        extra = home_of(module)
        assert extra is not None, f"{module} imports {sorted(libraries)} outside the backends that may"
        missing = {HEAVY[lib] for lib in libraries} - extra_names(extra)
        assert not missing, f"{module} imports {sorted(missing)}, which voicerag[{extra}] does not install"


def test_backend_rows_name_the_extra_of_their_heavy_modules() -> None:
    for spec in BACKENDS:
        extra = home_of(spec.factory.partition(":")[0])
        if extra is not None:
            assert spec.extra == extra, f"{spec.role}/{spec.name} runs in voicerag[{extra}] but names {spec.extra!r}"
        if spec.extra:
            assert spec.extra in PYPROJECT["optional-dependencies"], f"{spec.name}: no extra {spec.extra!r}"


# The CLI as a user without the torch extras has it: the three libraries cannot be imported.
WITHOUT_TORCH = (
    "import runpy, sys\n"
    "for name in ('torch', 'transformers', 'sentence_transformers'):\n"
    "    sys.modules[name] = None\n"
    "sys.argv = ['voicerag', *sys.argv[1:]]\n"
    "runpy.run_module('voicerag_cli', run_name='__main__')\n"
)


def run_without_torch(*args: object, env: dict[str, str] | None = None) -> CliResult:
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_TORCH, *(str(a) for a in args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
        check=False,
    )
    return CliResult([str(a) for a in args], proc.returncode, proc.stdout, proc.stderr)


@pytest.mark.parametrize(
    ("args", "env", "extra"),
    [
        (["ask", "--text", "Who studied the bee dance?", "--generator", "glm4voice"], {}, "glm4voice"),
        (["index", EXAMPLES, "--name", "sonar"], {"VOICERAG_MODELS__TEXT_EMBEDDER": "sonar"}, "sonar"),
        (
            ["ask", "--text", "Who studied the bee dance?"],
            {"VOICERAG_MODELS__TEXT_EMBEDDER": "sentence-transformers"},
            "sentence-transformers",
        ),
    ],
    ids=["glm4voice", "sonar", "sentence-transformers"],
)
def test_a_backend_without_its_extra_is_named_in_one_line(
    on_demo_index, args: list[object], env: dict[str, str], extra: str
) -> None:
    assert_error(run_without_torch(*args, env=env), 5, f"pip install 'voicerag[{extra}]'")


def test_the_default_commands_need_no_torch(on_demo_index) -> None:
    assert run_without_torch("ask", "--text", "Who studied the bee dance?").code == 0
    listed = run_without_torch("models", "--check", "--json")  # loads every default backend
    assert listed.code == 0, listed
    rows = json.loads(listed.stdout)["models"]
    assert {row["role"] for row in rows} >= {"text_embedder", "speech_embedder", "asr", "reader"}
    assert all(row["status"].startswith("loaded in") for row in rows), rows


PYPI_FILE_LIMIT = 100 * 10**6  # PyPI's default upload limit per file


def test_the_package_files_fit_in_one_pypi_upload() -> None:
    """Everything the wheel packs (src/voicerag_cli, bytecode aside), counted uncompressed, stays
    under PyPI's file limit: the bundled models ship compact (all-MiniLM-L6-v2 as int8)."""
    files = [p for p in PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert sum(p.stat().st_size for p in files) < PYPI_FILE_LIMIT
