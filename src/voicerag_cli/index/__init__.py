"""Document loading, chunking, and the on-disk vector index (hnswlib + SQLite)."""
