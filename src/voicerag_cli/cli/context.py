"""State shared by all commands: global options, settings, the model registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicerag_cli.errors import ConfigError

if TYPE_CHECKING:
    from voicerag_cli.config import Settings
    from voicerag_cli.index.base import StoreRoot, StoreSpec
    from voicerag_cli.registry import Registry


@dataclass
class AppState:
    config_file: Path | None = None
    data_dir: Path | None = None
    debug: bool = False
    profile: str | None = None  # global --profile; a command's own --profile wins
    # Set by a command whose output is complete and flushed and which holds nothing to clean up:
    # main() then ends the process at once instead of tearing down every loaded model (~0.15 s).
    exit_when_done: bool = False
    _settings: Settings | None = field(default=None, repr=False)
    _registry: Registry | None = field(default=None, repr=False)
    _store: StoreSpec | None = field(default=None, repr=False)  # index.store, parsed once

    def settings(self, overrides: dict[str, Any] | None = None, profile: str | None = None) -> Settings:
        """Load settings once per process; `overrides` and `profile` are this command's flags."""
        if self._settings is None:
            from voicerag_cli.config import load_settings

            layered = dict(overrides or {})
            if self.data_dir is not None:
                layered["paths.data_dir"] = str(self.data_dir)
            from voicerag_cli.index.base import parse_store
            from voicerag_cli.registry import check_models

            try:
                settings = load_settings(self.config_file, overrides=layered, profile=profile or self.profile)
                check_models(settings)  # the schema takes any name; the registry knows the backends
                store = parse_store(settings.index.store)  # the one parse of this command's store address
            except ConfigError as exc:
                raise _as_usage_error(exc, layered) from exc
            self._settings, self._store = _name_from_store(settings, store, layered.get("index.name")), store
        return self._settings

    def store(self) -> StoreSpec:
        """The parsed `index.store` address."""
        self.settings()
        assert self._store is not None
        return self._store

    def registry(self) -> Registry:
        if self._registry is None:
            from voicerag_cli.registry import Registry

            self._registry = Registry(self.settings())
        return self._registry

    def index_root(self) -> StoreRoot:
        """The store named by `index.store` (`--store`): hnswlib under the data dir by default."""
        from voicerag_cli.index.selection import open_store
        from voicerag_cli.paths import data_dir, indexes_root

        settings = self.settings()
        return open_store(self.store(), indexes_root(data_dir(settings.paths.data_dir)))


# The flag that sets a key, where its name differs from --<key with dashes>.
_FLAGS = {
    "ask.k": "-k",
    "ask.rag": "--rag",
    "ask.rounds": "--rounds",
    "index.name": "--name / --index",
    "index.store": "--store",
    "index.json_text_field": "--json-field",
    "models.generator": "--generator",
    "paths.data_dir": "--data-dir",
}


def _as_usage_error(exc: ConfigError, flags: dict[str, Any]) -> Exception:
    """A bad value that came from a command-line flag is a usage error (exit 2) naming the
    flag, as click reports a value of the wrong type; other config errors stay exit 6."""
    key = exc.key
    if key is None or flags.get(key) is None:
        return exc
    import typer

    from voicerag_cli.backends import lang_keys

    default = "--lang" if key in lang_keys() else "--" + key.partition(".")[2].replace("_", "-")
    flag = _FLAGS.get(key, default)
    return typer.BadParameter(exc.detail, param_hint=f"'{flag}'")


def _name_from_store(settings: Settings, store: StoreSpec, flag: str | None) -> Settings:
    """A `milvus://host:port/collection` store names the index; a different --name/--index is an error."""
    collection = store.collection
    if collection is None:
        return settings
    if flag is not None and flag != collection:
        raise ConfigError(f"index {flag!r} conflicts with the collection {collection!r} named in index.store")
    return settings.updated({"index.name": collection})


STATE = AppState()
