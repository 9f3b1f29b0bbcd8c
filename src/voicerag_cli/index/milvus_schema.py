"""Milvus connection, collection names, schemas and filter expressions for `milvus_store`.

Three kinds of collection:

- `voicerag_indexes` (one per Milvus database): one row per index, its manifest JSON and the
  names of its live collections. Upserting that row is the atomic "publish" of a write.
- `<base>_c<epoch>`: the chunks (id, vector, source, offsets, text, file key, hash) with
  `added_gen`/`removed_gen`, the generation that added and the one that removed each row.
- `<base>_f<epoch>`: the indexed files (key, content hash, size) with the same two fields.

`<base>` is the index name when it is a valid collection name, else a sanitized form plus a
hash; `<epoch>` is the generation at which the collections were created (new on --rebuild).
pymilvus is imported only here and only when a Milvus store is opened.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

from voicerag_cli.errors import BackendError, ModelError

META = "voicerag_indexes"
TEXT_MAX = 65_535  # bytes of a VARCHAR field in Milvus
KEY_MAX = 8_192
_COLLECTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")


def import_pymilvus() -> Any:
    try:
        import pymilvus
    except ImportError as exc:
        raise ModelError(
            "the Milvus store needs pymilvus (and milvus-lite for a local .db): pip install 'voicerag[milvus]'"
        ) from exc
    # pymilvus logs every failed RPC with a traceback (we report them as one line), and
    # query_iterator warns when a server (milvus-lite) does not report an MVCC timestamp.
    # milvus-lite logs a traceback when its folder is locked by another process (reported below).
    for name in ("pymilvus", "milvus_lite"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return pymilvus


def connect(uri: str, token: str) -> Any:
    pymilvus = import_pymilvus()
    try:
        return pymilvus.MilvusClient(uri=uri, token=token, timeout=30)
    except Exception as exc:  # pymilvus raises MilvusException, grpc errors or plain ones
        hint = "" if "://" in uri else " (a milvus-lite folder serves one process at a time: is another using it?)"
        raise BackendError(f"cannot connect to Milvus at {uri}: {exc}{hint}") from exc


def collection_base(name: str) -> str:
    if _COLLECTION_NAME.match(name):
        return name
    safe = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return f"vr_{safe}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def chunks_collection(name: str, epoch: int) -> str:
    return f"{collection_base(name)}_c{epoch:06d}"


def files_collection(name: str, epoch: int) -> str:
    return f"{collection_base(name)}_f{epoch:06d}"


def literal(value: str) -> str:
    """A string literal for a Milvus filter expression."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def visible_at(generation: int) -> str:
    """Rows that belong to the index as published at `generation`."""
    return f"added_gen <= {generation} and (removed_gen == 0 or removed_gen > {generation})"


def _small_vector_index(client: Any, schema: Any) -> Any:
    """Milvus requires a vector field (and its index) in every collection; the bookkeeping
    collections carry a constant 2-d one."""
    schema.add_field("pad", import_pymilvus().DataType.FLOAT_VECTOR, dim=2)
    params = client.prepare_index_params()
    params.add_index(field_name="pad", index_type="FLAT", metric_type="L2")
    return params


PAD = [1.0, 0.0]


def create_meta(client: Any) -> None:
    data_type = import_pymilvus().DataType
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("name", data_type.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("manifest", data_type.VARCHAR, max_length=TEXT_MAX)
    schema.add_field("chunks", data_type.VARCHAR, max_length=255)
    schema.add_field("files", data_type.VARCHAR, max_length=255)
    schema.add_field("retired", data_type.VARCHAR, max_length=TEXT_MAX)  # JSON list of collections to drop
    params = _small_vector_index(client, schema)
    client.create_collection(META, schema=schema, index_params=params, consistency_level="Strong")


def create_chunks(client: Any, collection: str, dim: int, m: int, ef_construction: int) -> None:
    data_type = import_pymilvus().DataType
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", data_type.INT64, is_primary=True)
    schema.add_field("vector", data_type.FLOAT_VECTOR, dim=dim)
    schema.add_field("file_key", data_type.VARCHAR, max_length=KEY_MAX)
    schema.add_field("source", data_type.VARCHAR, max_length=KEY_MAX)
    schema.add_field("ordinal", data_type.INT64)
    schema.add_field("start", data_type.INT64)
    schema.add_field("end", data_type.INT64)
    schema.add_field("text", data_type.VARCHAR, max_length=TEXT_MAX)
    schema.add_field("content_hash", data_type.VARCHAR, max_length=64)
    schema.add_field("added_gen", data_type.INT64)
    schema.add_field("removed_gen", data_type.INT64)
    params = client.prepare_index_params()
    params.add_index(
        field_name="vector",
        index_type="HNSW",
        metric_type="COSINE",
        params={"M": m, "efConstruction": ef_construction},
    )
    client.create_collection(collection, schema=schema, index_params=params, consistency_level="Strong")


def create_files(client: Any, collection: str) -> None:
    data_type = import_pymilvus().DataType
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("row", data_type.VARCHAR, is_primary=True, max_length=KEY_MAX + 16)  # "<gen>|<key>"
    schema.add_field("key", data_type.VARCHAR, max_length=KEY_MAX)
    schema.add_field("content_hash", data_type.VARCHAR, max_length=128)
    schema.add_field("size", data_type.INT64)
    schema.add_field("indexed_at", data_type.DOUBLE)
    schema.add_field("added_gen", data_type.INT64)
    schema.add_field("removed_gen", data_type.INT64)
    params = _small_vector_index(client, schema)
    client.create_collection(collection, schema=schema, index_params=params, consistency_level="Strong")


def query_all(client: Any, collection: str, expr: str, fields: list[str], batch: int = 4096) -> list[dict[str, Any]]:
    """Every row matching `expr` (Milvus caps one query's limit; the iterator pages)."""
    iterator = client.query_iterator(collection, batch_size=batch, filter=expr, output_fields=fields)
    rows: list[dict[str, Any]] = []
    try:
        while page := iterator.next():
            rows.extend(page)
    finally:
        iterator.close()
    return rows


def load(client: Any, collection: str) -> None:
    """Collections are released when a server restarts (or milvus-lite reopens its folder);
    searching and querying need them loaded."""
    state = str(client.get_load_state(collection).get("state", ""))
    if not state.endswith("Loaded"):
        client.load_collection(collection)


def count(client: Any, collection: str, expr: str) -> int:
    result = client.query(collection, filter=expr, output_fields=["count(*)"])
    return int(result[0]["count(*)"])
