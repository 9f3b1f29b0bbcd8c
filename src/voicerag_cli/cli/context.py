"""State shared by all commands: global options, settings, the model registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voicerag_cli.config import Settings
    from voicerag_cli.index.store import IndexRoot
    from voicerag_cli.registry import Registry


@dataclass
class AppState:
    config_file: Path | None = None
    data_dir: Path | None = None
    debug: bool = False
    _settings: Settings | None = field(default=None, repr=False)
    _registry: Registry | None = field(default=None, repr=False)

    def settings(self, overrides: dict[str, Any] | None = None) -> Settings:
        """Load settings once per process; `overrides` are this command's flags."""
        if self._settings is None:
            from voicerag_cli.config import load_settings

            layered = dict(overrides or {})
            if self.data_dir is not None:
                layered["paths.data_dir"] = str(self.data_dir)
            self._settings = load_settings(self.config_file, overrides=layered)
        return self._settings

    def registry(self) -> Registry:
        if self._registry is None:
            from voicerag_cli.registry import Registry

            self._registry = Registry(self.settings())
        return self._registry

    def index_root(self) -> IndexRoot:
        from voicerag_cli.index.store import IndexRoot
        from voicerag_cli.paths import data_dir, indexes_root

        return IndexRoot(indexes_root(data_dir(self.settings().paths.data_dir)))


STATE = AppState()
