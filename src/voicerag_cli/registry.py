"""One registry: role -> backend name -> lazily constructed, cached instance.

The backends themselves are rows of the table in backends.py (import strings only), so
nothing heavy (torch, transformers, ctranslate2) is imported until a command needs that role.
Which backend names are valid is checked here (check_models), against that table.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from voicerag_cli.backends import (
    BACKENDS,
    ROLES,
    BackendSpec,
    add_rows_for,
    current_table,
    find_spec,
    known_backends,
    load,
)
from voicerag_cli.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from voicerag_cli.config import Settings
    from voicerag_cli.models.base import (
        Generator,
        PassageReader,
        SpeechEmbedder,
        SpeechRecognizer,
        SpeechSynthesizer,
        TextEmbedder,
    )

__all__ = ["BACKENDS", "ROLES", "BackendSpec", "Registry", "check_models", "find_spec", "known_backends"]


def check_models(settings: Settings, table: tuple[BackendSpec, ...] | None = None) -> None:
    """Every role's configured backend (models.<role>) is a row of the table (the built-in rows,
    and installed packages' rows when a name is not built in)."""
    chosen = dataclasses.asdict(settings.models)
    if table is None:
        add_rows_for(chosen.items())
        table = current_table()
    for role, backends in known_backends(table).items():
        if chosen[role] not in backends:
            raise ConfigError(
                key=f"models.{role}", detail=f"unknown backend {chosen[role]!r}; choose from {', '.join(backends)}"
            )


def missing_library(spec: BackendSpec, exc: ModuleNotFoundError) -> ModelError | None:
    """A backend's library that is not installed, as a one-line ModelError naming the pip extra
    that brings it (torch for `sonar`: pip install 'voicerag[sonar]'). A module of voicerag itself
    that cannot be found is a broken install or a bug: None, and that error stays as it is."""
    library = (exc.name or "").split(".")[0]
    if not library or library == "voicerag_cli":
        return None
    where = f"pip install 'voicerag[{spec.extra}]'" if spec.extra else "reinstall voicerag"
    return ModelError(
        f"{spec.role} backend {spec.name!r} needs python package {library}, which is not installed: {where}"
    )


class Registry:
    """Constructs each configured backend on first use and keeps it for the process."""

    def __init__(self, settings: Settings, table: tuple[BackendSpec, ...] | None = None) -> None:
        check_models(settings, table)
        self.settings = settings
        self.table = current_table() if table is None else table
        self._instances: dict[str, object] = {}
        self.load_seconds: dict[str, float] = {}
        self.on_load: Callable[[str, str], None] | None = None  # told (role, backend) before a load

    def backend_name(self, role: str) -> str:
        return str(getattr(self.settings.models, role))

    def spec(self, role: str) -> BackendSpec:
        return find_spec(role, self.backend_name(role), self.table)

    def is_loaded(self, role: str) -> bool:
        return role in self._instances

    def get(self, role: str) -> object:
        if role not in self._instances:
            spec = self.spec(role)
            if self.on_load is not None:
                self.on_load(role, spec.name)
            started = time.perf_counter()
            try:
                factory = load(spec.factory)
                self._instances[role] = factory(self.settings, self)
            except ModuleNotFoundError as exc:
                error = missing_library(spec, exc)
                if error is None:
                    raise
                raise error from exc
            self.load_seconds[role] = time.perf_counter() - started
        return self._instances[role]

    def index_extra(self, previous: dict[str, Any] | None) -> dict[str, Any]:
        """What the configured text embedder records in an index's manifest besides its
        language (the row's index_extra hook; most record nothing)."""
        hook = self.spec("text_embedder").index_extra
        return dict(load(hook)(self.settings, previous)) if hook else {}

    # Typed accessors: each role's instance as its protocol (models/base.py). The factory's
    # return type is the backend's promise; the registry does not re-check it per call.
    def text_embedder(self) -> TextEmbedder:
        return cast("TextEmbedder", self.get("text_embedder"))

    def speech_embedder(self) -> SpeechEmbedder:
        return cast("SpeechEmbedder", self.get("speech_embedder"))

    def asr(self) -> SpeechRecognizer:
        return cast("SpeechRecognizer", self.get("asr"))

    def generator(self) -> Generator:
        return cast("Generator", self.get("generator"))

    def tts(self) -> SpeechSynthesizer:
        return cast("SpeechSynthesizer", self.get("tts"))

    def reader(self) -> PassageReader | None:
        """The passage reader, or None where none is configured (models.reader = "none")."""
        return cast("PassageReader | None", self.get("reader"))
