"""Helpers shared by the test modules: run the real CLI in a subprocess, hash stored index
data, synthesize speech with espeak-ng. (Fixtures built on them live in conftest.py.)"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
EXAMPLES = REPO / "examples" / "docs"
ERROR_PREFIX = "voicerag: error: "


@dataclass(frozen=True)
class Isolated:
    data_dir: Path  # VOICERAG_DATA_DIR (not created)
    config_file: Path  # the default config file under XDG_CONFIG_HOME (absent unless a test writes it)
    cache_dir: Path


@dataclass(frozen=True)
class DemoIndex:
    data_dir: Path
    name: str
    docs: Path

    @property
    def path(self) -> Path:
        return self.data_dir / "indexes" / self.name


@dataclass
class CliResult:
    args: list[str]
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:  # shown by pytest when an assertion on the result fails
        return (
            f"voicerag {' '.join(self.args)} -> exit {self.code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
        )


def load_script(name: str) -> ModuleType:
    """A script of scripts/ (not a package) imported as a module, to test its functions."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cli_command(*args: object) -> list[str]:
    return [sys.executable, "-m", "voicerag_cli", *(str(a) for a in args)]


def run_cli(
    *args: object,
    stdin: bytes | str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 600,
    inherit: bool = True,
) -> CliResult:
    """Run `voicerag ARGS...` as a fresh process (`python -m voicerag_cli`). The environment is
    this process's (each test gets an isolated one from conftest) plus `env`; with
    `inherit=False`, this process's minus every VOICERAG_* variable, plus `env`."""
    environment = dict(os.environ) if inherit else isolated_environ()
    environment.update(env or {})
    data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
    proc = subprocess.run(
        cli_command(*args),
        input=data if data is not None else b"",
        capture_output=True,
        env=environment,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    return CliResult(
        [str(a) for a in args],
        proc.returncode,
        proc.stdout.decode("utf-8", errors="replace"),
        proc.stderr.decode("utf-8", errors="replace"),
    )


def isolated_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("VOICERAG_")}


def assert_error(result: CliResult, code: int, *fragments: str) -> str:
    """The documented error contract: the exit code, exactly one stderr line starting with
    `voicerag: error:`, no traceback, nothing on stdout. Returns the message."""
    assert result.code == code, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result
    assert lines[0].startswith(ERROR_PREFIX), result
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result
    assert result.stdout == "", result
    message = lines[0][len(ERROR_PREFIX) :]
    for fragment in fragments:
        assert fragment.lower() in message.lower(), f"{fragment!r} not in {message!r}"
    return message


def tree_hash(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under `folder`, keyed by relative path (empty if it does not exist)."""
    if not folder.exists():
        return {}
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def espeak_wav(text: str, path: Path, voice: str = "en-us") -> Path:
    """`espeak-ng -v VOICE -w PATH TEXT`: a real spoken question as a WAV file."""
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    assert path.stat().st_size > 44, f"espeak-ng wrote no audio for {text!r}"
    return path


def pdf_file(objects: list[bytes]) -> bytes:
    """A PDF from its numbered objects (1 is the catalog), with a correct xref table and trailer."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
