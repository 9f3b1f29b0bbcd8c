"""Where voicerag keeps its data: platformdirs locations, overridable by config."""

from __future__ import annotations

import re
from pathlib import Path

from voicerag_cli.errors import ConfigError, IndexError_

_INDEX_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def data_dir(configured: str) -> Path:
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("voicerag", appauthor=False))


def cache_dir(configured: str) -> Path:
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("voicerag", appauthor=False))


def validate_index_name(name: str, key: str | None = None) -> str:
    # fullmatch: `$` in match() would accept a trailing newline ("docs\n")
    if not _INDEX_NAME.fullmatch(name) or name.startswith("."):
        message = f"invalid index name {name!r}: use letters, digits, '.', '_' or '-' (max 64)"
        if key:
            raise ConfigError(key=key, detail=message)
        raise IndexError_(message)
    return name


def indexes_root(data: Path) -> Path:
    return data / "indexes"
