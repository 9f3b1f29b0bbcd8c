"""Moving a folder larger than one device call may carry, in several calls.

The device machine keeps files written outside the working tree between calls while it stays
warm, so a folder travels as parts, one per call, each call following the previous one closely:
`split` (here) cuts the folder into part folders no larger than a size limit, big files into
chunks, each part with the same manifest (every file's size, SHA-256 and chunks); `receive`
(there) copies one part into a store outside the working tree and, once every part has arrived,
joins the chunks, checks the hashes and writes the folder. Each `receive` says what the store
held before it, so a call that landed on a fresh machine (an empty store after part 1) shows.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Received:
    parts_before: list[int]  # parts already in the store before this call
    parts_now: list[int]
    total: int  # parts in the manifest
    folder: Path | None  # the joined folder, once complete

    @property
    def complete(self) -> bool:
        return self.folder is not None

    def describe(self) -> str:
        fresh = (
            "fresh store (no earlier part here)" if not self.parts_before else f"store held parts {self.parts_before}"
        )
        state = f"complete: {self.folder}" if self.folder else f"waiting for parts {self.missing}"
        return f"{fresh}; now parts {self.parts_now} of {self.total}; {state}"

    @property
    def missing(self) -> list[int]:
        return [p for p in range(1, self.total + 1) if p not in self.parts_now]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def split(folder: Path, out: Path, limit: int) -> list[Path]:
    """`folder`'s files as part folders out/part1, out/part2, ... of at most `limit` bytes each
    (files larger than that as chunks). Returns the part folders."""
    if limit <= 0:
        raise ValueError("limit must be positive")
    pieces: list[tuple[str, Path, int, int]] = []  # (chunk name, source, offset, size)
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        size = path.stat().st_size
        chunks = []
        for index, offset in enumerate(range(0, max(size, 1), limit)):
            chunk = f"{name}.chunk{index:03d}"
            pieces.append((chunk, path, offset, min(limit, size - offset)))
            chunks.append(chunk)
        files.append({"name": name, "size": size, "sha256": _sha256(path), "chunks": chunks})
    parts: list[list[tuple[str, Path, int, int]]] = [[]]
    used = 0
    for piece in sorted(pieces, key=lambda p: -p[3]):  # largest first; a new part when one is full
        if parts[-1] and used + piece[3] > limit:
            parts.append([])
            used = 0
        parts[-1].append(piece)
        used += piece[3]
    where = {chunk: k + 1 for k, part in enumerate(parts) for chunk, _, _, _ in part}
    for entry in files:
        entry["parts"] = [where[c] for c in entry["chunks"]]
    manifest = {"parts": len(parts), "files": files}
    shutil.rmtree(out, ignore_errors=True)
    folders = []
    for k, part in enumerate(parts, 1):
        target = out / f"part{k}"
        target.mkdir(parents=True)
        for chunk, source, offset, size in part:
            with source.open("rb") as f:
                f.seek(offset)
                data = f.read(size)
            (target / chunk.replace("/", "__")).write_bytes(data)
        (target / MANIFEST).write_text(json.dumps(manifest, indent=1))
        folders.append(target)
    return folders


def receive(part: Path, store: Path) -> Received:
    """Copy a part folder into `store` (outside the working tree); once all parts are there,
    join them into store/folder and check every file's SHA-256."""
    manifest = json.loads((part / MANIFEST).read_text())
    if (store / MANIFEST).exists() and json.loads((store / MANIFEST).read_text()) != manifest:
        shutil.rmtree(store)  # parts of another split: start over
    store.mkdir(parents=True, exist_ok=True)
    before = _parts_present(store, manifest)
    for chunk in part.iterdir():
        if chunk.name != MANIFEST:
            shutil.copyfile(chunk, store / chunk.name)
    (store / MANIFEST).write_text(json.dumps(manifest))
    now = _parts_present(store, manifest)
    if len(now) < manifest["parts"]:
        return Received(before, now, manifest["parts"], None)
    folder = store / "folder"
    for entry in manifest["files"]:
        target = folder / entry["name"]
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as out:
            for chunk in entry["chunks"]:
                out.write((store / chunk.replace("/", "__")).read_bytes())
        if _sha256(target) != entry["sha256"]:
            raise ValueError(f"{entry['name']}: SHA-256 differs from the manifest after joining")
    return Received(before, now, manifest["parts"], folder)


def _parts_present(store: Path, manifest: dict) -> list[int]:
    """Parts all of whose chunks are in the store, with the manifest's sizes."""
    missing: set[int] = set()
    for entry in manifest["files"]:
        for chunk, part in zip(entry["chunks"], entry["parts"], strict=True):
            if not (store / chunk.replace("/", "__")).exists():
                missing.add(part)
    return [p for p in range(1, manifest["parts"] + 1) if p not in missing]
