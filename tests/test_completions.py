"""Shell completion: the committed scripts equal freshly generated ones, and completing
through them (bash) or through the protocol they use (zsh, fish) lists real commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from vrtest import REPO, cli_command, load_script


def load_generator() -> ModuleType:
    return load_script("generate_completions")


GENERATOR = load_generator()


@pytest.fixture(scope="module")
def bin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PATH entry providing `voicerag`: the installed console script, else a shim to this interpreter."""
    folder = tmp_path_factory.mktemp("bin")
    installed = shutil.which("voicerag")
    shim = folder / "voicerag"
    if installed:
        shim.symlink_to(installed)
    else:
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m voicerag_cli "$@"\n', encoding="utf-8")
        shim.chmod(0o755)
    return folder


@pytest.mark.parametrize("shell", sorted(GENERATOR.FILES))
def test_committed_scripts_are_up_to_date(shell: str) -> None:
    committed = (REPO / "completions" / GENERATOR.FILES[shell]).read_text(encoding="utf-8")
    assert committed == GENERATOR.generate(shell), "stale: run python3 scripts/generate_completions.py"
    assert "_VOICERAG_COMPLETE=complete_" + shell in committed


def bash_complete(bin_dir: Path, words: list[str], cword: int) -> list[str]:
    """Source completions/voicerag.bash in a real bash and run its completion function."""
    script = (
        f"source {REPO / 'completions' / 'voicerag.bash'}\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)})\n"
        f"COMP_CWORD={cword}\n"
        '_voicerag_completion voicerag\nprintf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line]


@pytest.mark.parametrize(
    ("words", "cword", "expected"),
    [
        (["voicerag", "in"], 1, ["index"]),
        (["voicerag", ""], 1, ["index", "ask", "chat", "eval", "models", "config"]),
        (["voicerag", "ask", "--r"], 2, ["--rag", "--rounds"]),
        (["voicerag", "config", ""], 2, ["path", "show", "init"]),
        (["voicerag", "--d"], 1, ["--data-dir", "--debug"]),
    ],
)
def test_bash_completion_end_to_end(bin_dir: Path, words: list[str], cword: int, expected: list[str]) -> None:
    completions = bash_complete(bin_dir, words, cword)
    assert set(expected) <= set(completions), completions
    prefix = words[cword]
    assert all(item.startswith(prefix) for item in completions)


def complete(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli_command(), capture_output=True, text=True, env={**os.environ, **env}, check=False)


def test_click_style_instruction_names_work_too() -> None:
    proc = complete({"_VOICERAG_COMPLETE": "bash_complete", "COMP_WORDS": "voicerag in", "COMP_CWORD": "1"})
    assert (proc.returncode, proc.stdout.split()) == (0, ["index"]), proc.stderr


def test_zsh_protocol() -> None:
    proc = complete({"_VOICERAG_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "voicerag config "})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("_arguments '*: :((")
    for command in ("path", "show", "init"):
        assert f'"{command}":' in proc.stdout


def test_fish_protocol() -> None:
    env = {"_VOICERAG_COMPLETE": "complete_fish", "_TYPER_COMPLETE_ARGS": "voicerag ask --ro"}
    proc = complete({**env, "_TYPER_COMPLETE_FISH_ACTION": "get-args"})
    assert proc.returncode == 0, proc.stderr
    assert [line.split("\t")[0] for line in proc.stdout.splitlines()] == ["--rounds"]
    assert complete({**env, "_TYPER_COMPLETE_FISH_ACTION": "is-args"}).returncode == 0


@pytest.mark.slow
def test_values_complete_modes_backends_and_existing_indexes(
    bin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.md").write_text("Bees dance to tell each other where the flowers are.\n", encoding="utf-8")
    env = {"VOICERAG_DATA_DIR": str(tmp_path / "data"), "VOICERAG_CONFIG": os.devnull}
    for name in ("papers", "personal"):
        built = subprocess.run(
            [*cli_command(), "index", str(docs), "--name", name],
            env={**os.environ, **env},
            capture_output=True,
            check=False,
        )
        assert built.returncode == 0, built.stderr
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert bash_complete(bin_dir, ["voicerag", "ask", "--rag", ""], 3) == ["asr", "e2e"]
    assert bash_complete(bin_dir, ["voicerag", "chat", "--rag", "e"], 3) == ["e2e"]
    assert set(bash_complete(bin_dir, ["voicerag", "ask", "-g", ""], 3)) >= {"extractive", "openai", "glm4voice"}
    assert bash_complete(bin_dir, ["voicerag", "ask", "--index", "pe"], 3) == ["personal"]
    assert bash_complete(bin_dir, ["voicerag", "index", "--name", ""], 3) == ["papers", "personal"]
