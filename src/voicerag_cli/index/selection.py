"""`index.store` / `--store`: which store holds the indexes.

    ""  or "hnswlib"                      the embedded hnswlib + SQLite store under the data dir
    milvus://[user:password@]host:port[/collection]
    milvuss://...                          the same over TLS
    milvus-lite:PATH.db                    a local milvus-lite folder, started in-process

A collection in a `milvus://` address names the index (it takes the place of `index.name`).
Parsing imports nothing heavy: pymilvus is imported only when a Milvus store is opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from voicerag_cli.config import redact_url
from voicerag_cli.errors import ConfigError
from voicerag_cli.paths import validate_index_name

if TYPE_CHECKING:
    from voicerag_cli.index.base import StoreRoot

FORMS = "'hnswlib', 'milvus://host:port[/collection]' or 'milvus-lite:PATH.db'"


@dataclass(frozen=True)
class StoreSpec:
    kind: str  # "hnswlib", "milvus" or "milvus-lite"
    uri: str = ""  # what pymilvus connects to: http(s)://host:port, or the milvus-lite folder
    token: str = ""  # "user:password" for a server with authentication
    collection: str | None = None  # the index name, when the address names one
    text: str = ""  # as the user wrote it, without the password

    @property
    def is_milvus(self) -> bool:
        return self.kind != "hnswlib"


def parse_store(text: str, key: str = "index.store") -> StoreSpec:
    value = text.strip()
    if value in {"", "hnswlib"}:
        return StoreSpec("hnswlib", text="hnswlib")
    if value.startswith("milvus-lite:"):
        path = value[len("milvus-lite:") :]
        if not path.endswith(".db"):
            raise ConfigError(f"config key '{key}': a milvus-lite store is a path ending in .db, got {value!r}")
        resolved = str(Path(path).expanduser().resolve())
        return StoreSpec("milvus-lite", uri=resolved, text=f"milvus-lite:{resolved}")
    if value.startswith(("milvus://", "milvuss://")):
        return _parse_server(value, key)
    raise ConfigError(f"config key '{key}': unknown store {redact_url(value)!r}; use {FORMS}")


def _parse_server(value: str, key: str) -> StoreSpec:
    shown_value = redact_url(value)
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket: milvus://[::1:9
        raise ConfigError(f"config key '{key}': malformed address {shown_value!r} ({exc})") from exc
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"config key '{key}': bad port in {shown_value!r}") from exc
    if not hostname or port is None:
        raise ConfigError(f"config key '{key}': a Milvus address needs host and port, e.g. milvus://localhost:19530")
    collection = parts.path.strip("/") or None
    if collection is not None:
        if "/" in collection:
            raise ConfigError(f"config key '{key}': one collection name after host:port, got {parts.path!r}")
        validate_index_name(collection, key=key)
    scheme = "https" if parts.scheme == "milvuss" else "http"
    host = f"[{hostname}]" if ":" in hostname else hostname
    token = ""
    if parts.username is not None:
        token = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    shown = f"{parts.scheme}://{host}:{port}" + (f"/{collection}" if collection else "")
    return StoreSpec("milvus", uri=f"{scheme}://{host}:{port}", token=token, collection=collection, text=shown)


def open_store(spec: StoreSpec, indexes_dir: Path) -> StoreRoot:
    """The store root for `spec`; hnswlib indexes (and Milvus writer locks) live in `indexes_dir`."""
    if not spec.is_milvus:
        from voicerag_cli.index.store import IndexRoot

        return IndexRoot(indexes_dir)
    from voicerag_cli.index.milvus_store import MilvusRoot

    return MilvusRoot(spec, lock_dir=indexes_dir)
