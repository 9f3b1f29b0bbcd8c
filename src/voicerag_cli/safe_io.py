"""Open user-named input files without hanging or exhausting memory.

A path given as a config file or an audio file may name a FIFO (an open for reading would wait
for a writer forever), a device (/dev/zero and /dev/urandom never end), or a huge file. Every
such input is opened non-blocking, checked to be a regular file and below a size cap, and only
then read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

# Paths whose reads are harmless though they are no regular files: an empty config.
_ALLOWED_DEVICES = frozenset({os.devnull})


def file_kind(mode: int) -> str:
    """A short name for what a non-regular path is, for messages."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular(path: Path) -> tuple[int, os.stat_result]:
    """Open `path` for reading without blocking on a FIFO; return (fd, its stat). Raises OSError;
    the caller checks the stat. The descriptor is switched back to blocking reads."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        os.set_blocking(fd, True)
    except OSError:
        os.close(fd)
        raise
    return fd, info


class NotRegular(Exception):
    """The path is no regular file (its kind in `kind`) or is over the cap (`size` set)."""

    def __init__(self, kind: str, size: int | None = None) -> None:
        super().__init__(kind)
        self.kind = kind
        self.size = size


def read_capped(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. Raises NotRegular (a FIFO, a device,
    a directory, or a file over `limit`) or OSError; /dev/null reads as empty."""
    if os.path.realpath(path) in _ALLOWED_DEVICES:
        return b""
    fd, info = open_regular(path)
    try:
        if not stat.S_ISREG(info.st_mode):
            raise NotRegular(file_kind(info.st_mode))
        if info.st_size > limit:
            raise NotRegular("too large", info.st_size)
        chunks = []
        left = limit + 1
        while left > 0:
            block = os.read(fd, min(left, 1 << 20))
            if not block:
                break
            chunks.append(block)
            left -= len(block)
        data = b"".join(chunks)
        if len(data) > limit:  # it grew while read
            raise NotRegular("too large", len(data))
        return data
    finally:
        os.close(fd)


def check_regular(path: Path, limit: int | None = None) -> os.stat_result:
    """Stat `path` (without opening it: a FIFO never blocks a stat) and check that it is a regular
    file of at most `limit` bytes. Raises NotRegular or OSError."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise NotRegular(file_kind(info.st_mode))
    if limit is not None and info.st_size > limit:
        raise NotRegular("too large", info.st_size)
    return info
