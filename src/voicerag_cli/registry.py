"""One registry: role -> backend name -> lazily constructed, cached instance.

The backends themselves are rows of the table in backends.py (import strings only), so
nothing heavy (torch, transformers, ctranslate2) is imported until a command needs that role.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from voicerag_cli.backends import BACKENDS, ROLES, BackendSpec, find_spec, known_backends, load

if TYPE_CHECKING:
    from voicerag_cli.config import Settings

__all__ = ["BACKENDS", "ROLES", "BackendSpec", "Registry", "find_spec", "known_backends"]


class Registry:
    """Constructs each configured backend on first use and keeps it for the process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._instances: dict[str, Any] = {}
        self.load_seconds: dict[str, float] = {}
        self.on_load: Callable[[str, str], None] | None = None  # told (role, backend) before a load

    def backend_name(self, role: str) -> str:
        return getattr(self.settings.models, role)

    def spec(self, role: str) -> BackendSpec:
        return find_spec(role, self.backend_name(role))

    def is_loaded(self, role: str) -> bool:
        return role in self._instances

    def get(self, role: str) -> Any:
        if role not in self._instances:
            spec = self.spec(role)
            if self.on_load is not None:
                self.on_load(role, spec.name)
            started = time.perf_counter()
            factory = load(spec.factory)
            self._instances[role] = factory(self.settings, self)
            self.load_seconds[role] = time.perf_counter() - started
        return self._instances[role]

    # Typed accessors keep call sites readable.
    def text_embedder(self) -> Any:
        return self.get("text_embedder")

    def speech_embedder(self) -> Any:
        return self.get("speech_embedder")

    def asr(self) -> Any:
        return self.get("asr")

    def generator(self) -> Any:
        return self.get("generator")

    def tts(self) -> Any:
        return self.get("tts")
