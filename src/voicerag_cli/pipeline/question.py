"""What a question to the pipeline is, apart from the pipeline (light: no numpy, so a command
can read and check its inputs before any heavy import)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voicerag_cli.audio.io import Audio

# A conversation's earlier (question, answer) turns, oldest first.
History = Sequence[tuple[str, str]]


@dataclass
class Question:
    """One input: a clip (read in `read_ms`) or a typed question."""

    clip: Audio | None
    text: str | None
    read_ms: float = 0.0
