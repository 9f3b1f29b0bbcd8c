"""`index.store` / `--store` parsing and the config key (no engine needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicerag_cli.config import load_settings
from voicerag_cli.errors import ConfigError
from voicerag_cli.index.base import parse_store
from voicerag_cli.index.hnsw_store import IndexRoot
from voicerag_cli.index.selection import open_store


def test_default_is_the_embedded_hnswlib_store(tmp_path: Path) -> None:
    for text in ("", "hnswlib", "  "):
        spec = parse_store(text)
        assert spec.kind == "hnswlib" and not spec.is_milvus
    root = open_store(parse_store(""), tmp_path / "indexes")
    assert isinstance(root, IndexRoot) and root.kind == "hnswlib"
    assert root.location("docs") == str(tmp_path / "indexes" / "docs")


def test_milvus_server_addresses() -> None:
    spec = parse_store("milvus://db.example:19530/papers")
    assert (spec.kind, spec.uri, spec.collection, spec.token) == ("milvus", "http://db.example:19530", "papers", "")
    assert spec.text == "milvus://db.example:19530/papers"
    plain = parse_store("milvus://localhost:19530")
    assert plain.collection is None and plain.uri == "http://localhost:19530"
    secure = parse_store("milvuss://alice:s%40cret@milvus.internal:443/")
    assert secure.uri == "https://milvus.internal:443" and secure.token == "alice:s@cret"
    assert "cret" not in secure.text  # the password is never shown


def test_milvus_lite_paths_are_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = parse_store("milvus-lite:./idx.db")
    assert spec.kind == "milvus-lite" and spec.uri == str(tmp_path / "idx.db") and spec.collection is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("faiss", "unknown store"),
        ("milvus://localhost", "host and port"),
        ("milvus://localhost:notaport", "bad port"),
        ("milvus://localhost:19530/a/b", "one collection"),
        ("milvus://localhost:19530/.hidden", "invalid index name"),
        ("milvus-lite:./idx", "ending in .db"),
    ],
)
def test_bad_store_values_name_the_key(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_store(text)
    assert "index.store" in str(error.value) and fragment in str(error.value)


def test_config_key_and_environment(tmp_path: Path) -> None:
    settings = load_settings(None, environ={"VOICERAG_INDEX__STORE": "milvus-lite:/x/idx.db"})
    assert settings.index.store == "milvus-lite:/x/idx.db"
    config = tmp_path / "config.toml"
    config.write_text('[index]\nstore = "milvus://h:1/docs"\n', encoding="utf-8")
    assert load_settings(config, environ={}).index.store == "milvus://h:1/docs"
    config.write_text('[index]\nstore = "milvus://h"\n', encoding="utf-8")
    # the settings are a schema; the address is parsed (once) where a command opens its store
    with pytest.raises(ConfigError, match=r"index\.store"):
        parse_store(load_settings(config, environ={}).index.store)
