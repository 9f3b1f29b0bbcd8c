"""scripts/apt_wait.sh: the set-up scripts wait while another package manager holds dpkg's lock
(as a fresh cloud machine's automatic updates do) instead of failing at once. Real apt-get and a
real lock: runs as root on a Debian/Ubuntu machine with espeak-ng installed (what CI is)."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "apt_wait.sh"
LOCK = Path("/var/lib/dpkg/lock-frontend")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("apt-get") is None or not LOCK.exists() or shutil.which("espeak-ng") is None,
    reason="needs root, apt-get and an installed espeak-ng (a Debian/Ubuntu CI machine)",
)


def _hold_lock(seconds: float, held: threading.Event) -> None:
    with LOCK.open("w") as fh:
        fcntl.lockf(fh, fcntl.LOCK_EX)
        held.set()
        time.sleep(seconds)


def _apt_get(limit: int) -> subprocess.CompletedProcess[str]:
    # installing a package that is already installed takes dpkg's lock and changes nothing
    command = f'as_root=(); source "{SCRIPT}"; apt_get install -y -qq --no-install-recommends espeak-ng'
    return subprocess.run(
        ["bash", "-c", command], env={**os.environ, "APT_LOCK_WAIT": str(limit)}, capture_output=True, text=True
    )


def _with_lock_held(seconds: float, limit: int) -> tuple[subprocess.CompletedProcess[str], float]:
    held = threading.Event()
    holder = threading.Thread(target=_hold_lock, args=(seconds, held))
    holder.start()
    assert held.wait(10)
    started = time.monotonic()
    try:
        result = _apt_get(limit)
    finally:
        holder.join()
    return result, time.monotonic() - started


def test_waits_for_a_held_lock_then_succeeds() -> None:
    result, took = _with_lock_held(seconds=6, limit=60)
    assert result.returncode == 0, result.stderr
    assert "waiting for another package manager" in result.stdout
    assert result.stdout.count("waiting for another package manager") == 1  # said once, not every 5 s
    assert took >= 5


def test_gives_up_after_its_limit_with_apts_message() -> None:
    result, _ = _with_lock_held(seconds=12, limit=5)
    assert result.returncode == 100
    assert "lock" in result.stderr.lower()
    assert "still holds the lock after 5s" in result.stderr
