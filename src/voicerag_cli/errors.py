"""Error types that map to documented exit codes.

Every failure a user can cause (bad input, missing index, missing weights, bad config)
raises a subclass of :class:`VoiceragError`; the CLI prints its message on one line and
exits with its code. Anything else is a bug and exits with 1.
"""

from __future__ import annotations

import errno


class ExitCode:
    OK = 0
    INTERNAL = 1
    USAGE = 2  # click/typer usage errors use 2 too
    INPUT = 3
    INDEX = 4
    MODEL = 5
    CONFIG = 6
    BACKEND = 7
    STORAGE = 8
    INTERRUPTED = 130


class VoiceragError(Exception):
    exit_code = ExitCode.INTERNAL


class InputError(VoiceragError):
    """The user's audio, text or document input is missing or unusable."""

    exit_code = ExitCode.INPUT


class IndexError_(VoiceragError):
    """An index is unknown, empty, or incompatible with the configured models."""

    exit_code = ExitCode.INDEX


class ModelError(VoiceragError):
    """A model backend is unavailable or its weights are missing."""

    exit_code = ExitCode.MODEL


class ConfigError(VoiceragError):
    """The configuration file, an environment variable or a flag has a bad key or value.

    `ConfigError(key="ask.k", detail="must be positive, got 0")` names one key: its message is
    "config key 'ask.k': must be positive, got 0", and the CLI reads `.key` to name the flag that
    set it. Errors about no single key (a file that cannot be read) pass the whole message."""

    exit_code = ExitCode.CONFIG

    def __init__(self, message: str = "", *, key: str | None = None, detail: str = "") -> None:
        super().__init__(f"config key '{key}': {detail}" if key is not None else message)
        self.key = key
        self.detail = detail if key is not None else message


class BackendError(VoiceragError):
    """A backend failed at run time (e.g. the HTTP generator's server answered with an error)."""

    exit_code = ExitCode.BACKEND


class StorageError(VoiceragError):
    """The file system refused to store something: no space left (or over quota), an I/O error,
    or a write the file system does not allow. The message names the path; stored data is left
    as it was."""

    exit_code = ExitCode.STORAGE


# errno values that mean the disk, not the input, is the problem
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG})
# errno values of a file system that refuses an operation on a path
REFUSED_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENAMETOOLONG, errno.ETXTBSY})


def os_reason(exc: OSError) -> str:
    """The OS's short description ("No space left on device"), without the repeated path."""
    return exc.strerror or type(exc).__name__


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC-like OSErrors, and SQLite's way of saying the same ("database or disk is full")."""
    if isinstance(exc, OSError):
        return exc.errno in DISK_ERRNOS
    import sqlite3

    return isinstance(exc, sqlite3.OperationalError) and any(
        words in str(exc).lower() for words in ("disk is full", "disk i/o error", "readonly database")
    )


def storage_error(exc: BaseException, path: object, doing: str = "write") -> StorageError:
    """A one-line StorageError for an OSError (or SQLite's disk errors) while writing `path`."""
    reason = os_reason(exc) if isinstance(exc, OSError) else str(exc)
    return StorageError(f"cannot {doing} {path}: {reason}")


EXIT_CODE_TABLE: list[tuple[int, str]] = [
    (ExitCode.OK, "success"),
    (ExitCode.INTERNAL, "internal error (a bug: rerun with --debug and report it)"),
    (ExitCode.USAGE, "bad command-line usage"),
    (ExitCode.INPUT, "bad input: missing/unreadable/empty/silent audio, no documents, bad dataset"),
    (ExitCode.INDEX, "unknown or empty index, or index built with another embedding space"),
    (ExitCode.MODEL, "model backend unavailable or its weights missing"),
    (ExitCode.CONFIG, "bad configuration key or value"),
    (ExitCode.BACKEND, "a backend failed at run time (e.g. HTTP generator unreachable)"),
    (ExitCode.STORAGE, "the file system refused a write (no space left, I/O error, read-only); names the path"),
    (ExitCode.INTERRUPTED, "interrupted (Ctrl-C); stored data left as it was"),
]
