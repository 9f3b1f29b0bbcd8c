"""Where the distilled speech embedder's files are: the head shipped in weights/ beside this
module and the bundled Whisper tiny.en it was trained on. Standard library only, so the
registry's weights probe and training find them without importing numpy or the backend."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from voicerag_cli.models.weights_info import WeightsInfo, file_weights

if TYPE_CHECKING:
    from voicerag_cli.config import Settings

HEAD_FILE = "whisper-tiny-distilled-minilm.safetensors"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def head_path() -> Path:
    """The one head file shipped inside the package (models/distilled/weights/)."""
    return WEIGHTS_DIR / HEAD_FILE


def head_weights(settings: Settings) -> WeightsInfo:
    """The `whisper-tiny-distilled` backend's weights probe: its head file."""
    return file_weights(head_path())


def head_identity(settings: Settings) -> str:
    """The row's identity hook: the head file's name and size (a new head in an upgrade makes
    new vectors)."""
    location = Path(head_weights(settings).location)
    size = location.stat().st_size if location.is_file() else 0
    return f"{location.name}:{size}"


def bundled_whisper_dir() -> Path | None:
    """The bundled Whisper tiny.en folder (bundled.WHISPER_TINY_EN), if installed."""
    from voicerag_cli.models.bundled import WHISPER_TINY_EN
    from voicerag_cli.models.pinned import bundle_folder

    return bundle_folder(WHISPER_TINY_EN)
