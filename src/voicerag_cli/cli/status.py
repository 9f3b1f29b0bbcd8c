"""A transient status line on stderr ("loading the speech recognizer...", "transcribing...") while
a command waits on models, so a cold start is never a silent pause. Only on a terminal: piped or
redirected stderr gets nothing, so logs and scripts see the same lines as before."""

from __future__ import annotations

import os
import sys
from typing import Any

ROLE_WORDS = {
    "text_embedder": "text embedder",
    "speech_embedder": "speech embedder",
    "asr": "speech recognizer",
    "generator": "answer generator",
    "tts": "speech synthesizer",
}
STAGE_WORDS = {
    "asr": "transcribing",
    "embed_text": "embedding the question",
    "embed_speech": "embedding the spoken question",
    "search": "searching",
    "generate": "writing the answer",
    "embed_round2": "embedding round two",
    "search_round2": "searching again",
    "generate_round2": "writing the final answer",
    "tts": "speaking the answer",
}


def stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty() and os.environ.get("TERM", "") != "dumb"
    except ValueError:  # closed stream
        return False


class StatusLine:
    """`loading(role, backend)` and `stage(name)` show what runs now; `stop()` clears the line
    (call it before printing results). `prefix` marks the question in a batch ("[2/5] ")."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = stderr_is_terminal() if enabled is None else enabled
        self.prefix = ""
        self._status: Any = None

    def show(self, message: str) -> None:
        if not self.enabled:
            return
        text = f"{self.prefix}{message}..."
        if self._status is None:
            from voicerag_cli.cli.console import err

            self._status = err.status(text, spinner="dots")
            self._status.start()
        else:
            self._status.update(text)

    def loading(self, role: str, backend: str) -> None:
        self.show(f"loading the {ROLE_WORDS.get(role, role)} ({backend})")

    def stage(self, name: str) -> None:
        self.show(STAGE_WORDS.get(name, name))

    def stop(self) -> None:
        if self._status is not None:
            self._status.stop()  # transient: the line is erased; its refresh thread ends at once
            self._status = None
