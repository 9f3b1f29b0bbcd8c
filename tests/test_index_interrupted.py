"""Killing `voicerag index` mid-write (SIGKILL) or interrupting it (Ctrl-C) leaves the live
generation of an existing index intact and usable; the next run cleans up and completes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from voicerag_cli.errors import ExitCode
from vrtest import Isolated, cli_command, run_cli, tree_hash

CANARY = "The lighthouse keeper on Skerryvore rock polished the great lens every morning at dawn."
WORDS = [
    "river",
    "mountain",
    "engine",
    "harbour",
    "violin",
    "glacier",
    "lantern",
    "orchard",
    "comet",
    "bridge",
    "castle",
    "meadow",
    "copper",
    "falcon",
    "quartz",
    "tundra",
    "canyon",
    "basalt",
    "pepper",
    "saffron",
    "marble",
    "typhoon",
    "beacon",
    "compass",
    "anchor",
    "citadel",
]


def write_bulk(folder: Path, files: int, sentences: int, seed: int) -> None:
    """Many files of plain sentences: enough chunks that embedding them takes several seconds."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(files):
        lines = []
        for _ in range(sentences):
            words = rng.choices(WORDS, k=rng.randint(8, 14))
            lines.append(f"Record {number} notes that the {' '.join(words)}.")
        (folder / f"bulk-{number:04d}.txt").write_text(" ".join(lines), encoding="utf-8")


def live_files(index_dir: Path) -> dict[str, str]:
    """Hashes of everything except staging folders (a killed writer may leave one behind)."""
    return {path: digest for path, digest in tree_hash(index_dir).items() if not path.startswith(".staging-")}


def _default_sigint() -> None:
    # A suite started in the background (`pytest &` in a script) inherits SIGINT ignored, and
    # Python then installs no KeyboardInterrupt handler: give the child Ctrl-C's usual meaning.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_index(folder: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cli_command("index", folder), stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_default_sigint
    )


def wait_for_staging(proc: subprocess.Popen[bytes], index_dir: Path, timeout: float = 300) -> Path:
    """Poll until the writer has created its staging folder (it then embeds into it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        staged = list(index_dir.glob(".staging-*"))
        if staged:
            return staged[0]
        if proc.poll() is not None:
            _, stderr = proc.communicate()
            pytest.fail(f"index exited ({proc.returncode}) before staging was seen: {stderr.decode()}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail("no staging folder appeared")


def ask_canary() -> None:
    result = run_cli("ask", "--text", "Who polished the lens of the lighthouse?", "-k", "3", "--json")
    assert result.code == 0, result
    top = result.json()["sources"][0]
    assert top["text"] == CANARY and top["source"].endswith("canary.txt")


@pytest.mark.slow
def test_kill_and_interrupt_during_embedding(isolated_env: Isolated, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "canary.txt").write_text(CANARY, encoding="utf-8")
    first = run_cli("index", docs, "--json")
    assert first.code == 0 and first.json()["generation"] == 1, first
    index_dir = isolated_env.data_dir / "indexes" / "default"
    before = live_files(index_dir)

    # 1. SIGKILL while the new generation is being embedded into the staging folder
    write_bulk(docs / "bulk", files=40, sentences=30, seed=1)
    proc = start_index(docs)
    staging = wait_for_staging(proc, index_dir)
    time.sleep(0.3)
    assert proc.poll() is None, "indexing finished before it could be killed: make the corpus bigger"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert staging.exists()  # the killed writer's leftovers...
    assert live_files(index_dir) == before  # ...but the live generation is untouched
    assert (index_dir / "CURRENT").read_text(encoding="utf-8").strip() == "gen-000001"
    ask_canary()  # and still answers from the old content

    # 2. the next run cleans the stale staging folder and completes
    rerun = run_cli("index", docs, "--json")
    assert rerun.code == 0, rerun
    summary = rerun.json()
    assert (summary["added"], summary["unchanged"], summary["generation"]) == (40, 1, 2)
    assert not staging.exists() and not list(index_dir.glob(".staging-*"))
    ask_canary()

    # 3. Ctrl-C (SIGINT) while embedding: exit 130, its staging folder removed, generation 2 live
    before = live_files(index_dir)
    for path in sorted((docs / "bulk").iterdir()):
        path.write_text(path.read_text(encoding="utf-8") + " One more sentence changes the hash.", encoding="utf-8")
    proc = start_index(docs)
    wait_for_staging(proc, index_dir)
    time.sleep(0.3)
    assert proc.poll() is None, "indexing finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == ExitCode.INTERRUPTED, stderr.decode()
    assert "interrupted" in stderr.decode() and "Traceback" not in stderr.decode()
    assert not list(index_dir.glob(".staging-*"))
    assert live_files(index_dir) == before
    assert not os.path.exists(isolated_env.data_dir / "indexes" / "default" / "gen-000003")
