"""Writing a command's output folder (`ask --out`, `chat --save`) so that a failure leaves no
partial files behind and a full disk is a one-line error naming the folder."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from voicerag_cli.errors import StorageError, VoiceragError, is_disk_full, os_reason

# Below this many free bytes a failed write (libsndfile says only "system error") is a full disk.
NEARLY_FULL = 256 << 10


def disk_failure(exc: BaseException, folder: Path, flag: str) -> StorageError | None:
    """The StorageError for a write into `folder` that failed because its disk is full (or
    failing); None when the failure is something else."""
    if isinstance(exc, StorageError):
        return None
    if is_disk_full(exc):
        reason = os_reason(exc) if isinstance(exc, OSError) else str(exc)
        return StorageError(f"cannot write to {flag} {folder}: {reason}")
    if isinstance(exc, (OSError, RuntimeError, VoiceragError)) and _nearly_full(folder):
        return StorageError(f"cannot write to {flag} {folder}: No space left on device")
    return None


def _nearly_full(folder: Path) -> bool:
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free < NEARLY_FULL
    except OSError:
        return False


def remove_parts(folder: Path) -> None:
    """Delete the `*.part` files (writes that did not complete) under `folder`."""
    if folder.is_dir():
        for part in folder.rglob("*.part"):
            with contextlib.suppress(OSError):
                part.unlink()


@contextlib.contextmanager
def writing_to(folder: Path, flag: str, fresh: bool | None = None, keep_complete: bool = False) -> Iterator[None]:
    """Run a block that writes into `folder`. On any failure: `*.part` files are removed, and
    unless `keep_complete` so is everything the block added (the whole folder when it was
    `fresh`, i.e. did not exist before: `fresh=None` looks now); a full disk becomes a
    StorageError naming the folder."""
    if fresh is None:
        fresh = not folder.exists()
    before = set() if fresh or keep_complete or not folder.is_dir() else set(os.listdir(folder))
    try:
        yield
    except BaseException as exc:
        remove_parts(folder)
        if not keep_complete and folder.is_dir():
            if fresh:
                shutil.rmtree(folder, ignore_errors=True)
            else:
                for name in set(os.listdir(folder)) - before:
                    entry = folder / name
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        with contextlib.suppress(OSError):
                            entry.unlink()
        failure = disk_failure(exc, folder, flag)
        if failure is not None:
            raise failure from exc
        raise
