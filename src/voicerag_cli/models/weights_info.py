"""What a weights probe reports, and finding data shipped inside installed packages.

A leaf module (standard library only): backends, the registry and training all import it,
so it must import none of them.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voicerag_cli.config import Settings


@dataclass(frozen=True)
class WeightsInfo:
    location: str  # a path, a package, an executable or a URL
    present: bool
    size_bytes: int | None = None


def package_dir(package: str, subdir: str) -> Path | None:
    """`subdir` inside the installed `package`, found without importing the package (None if not installed)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / subdir


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def folder_weights(configured: str, package: str, subdir: str) -> WeightsInfo:
    """A configured folder, else the one shipped in `package`."""
    path = Path(configured).expanduser() if configured else package_dir(package, subdir)
    if path is None:
        return WeightsInfo(f"python package {package} (not installed)", False)
    if not path.is_dir():
        return WeightsInfo(str(path), False)
    return WeightsInfo(str(path), True, dir_size(path))


def file_weights(path: Path) -> WeightsInfo:
    return WeightsInfo(str(path), path.is_file(), path.stat().st_size if path.is_file() else None)


def nothing_needed(settings: Settings) -> WeightsInfo:
    """The probe of a backend that needs no weights (it computes from what it is given)."""
    return WeightsInfo("-", True, 0)
