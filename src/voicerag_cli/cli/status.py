"""A transient status line on stderr ("loading speech recognition…", "transcribing…") while a
command waits on models or a slow stage, so a cold start is never a silent pause. Only on a
terminal (stdout and stderr both): piped or redirected output gets nothing, so logs and scripts
see the same lines as before. It appears only once the wait passes SHOW_AFTER_S: a line that
flashes for a fast stage would only flicker."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from voicerag_cli.cli.words import role_words, stage_activity

SHOW_AFTER_S = 0.5


def stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty() and os.environ.get("TERM", "") != "dumb"
    except ValueError:  # closed stream
        return False


def stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except ValueError:  # closed stream
        return False


def status_line_wanted(as_json: bool = False) -> bool:
    """Whether a status line belongs on this run: never with --json, only when a person watches."""
    return not as_json and stderr_is_terminal() and stdout_is_terminal()


class StatusLine:
    """`loading(role, backend)` and `stage(name)` say what runs now; `stop()` clears the line
    (call it before printing results). `prefix` marks the question in a batch ("[2/5] ")."""

    def __init__(self, enabled: bool | None = None, delay_s: float = SHOW_AFTER_S) -> None:
        self.enabled = status_line_wanted() if enabled is None else enabled
        self.prefix = ""
        self.delay_s = delay_s
        self._message = ""
        self._status: Any = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def show(self, message: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._message = f"{self.prefix}{message}…"
            if self._status is not None:
                self._status.update(self._message)
            elif self._timer is None:
                self._timer = threading.Timer(self.delay_s, self._appear)
                self._timer.daemon = True
                self._timer.start()

    def _appear(self) -> None:
        with self._lock:
            if self._timer is None:  # stopped meanwhile
                return
            from voicerag_cli.cli.console import err

            self._status = err.status(self._message, spinner="dots")
            self._status.start()

    def loading(self, role: str, backend: str) -> None:
        self.show(f"loading {role_words(role)} ({backend})")

    def stage(self, name: str) -> None:
        self.show(stage_activity(name))

    def stop(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._status is not None:
                self._status.stop()  # transient: the line is erased; its refresh thread ends at once
                self._status = None
