"""Layered configuration: defaults < TOML file < profile < VOICERAG_* environment < CLI flags.

A profile (`--profile NAME` / `VOICERAG_PROFILE`) is a named set of keys: built in (`sonar`, `zh`:
profiles.py, data beside the backend table) or a `[profiles.NAME.<section>]` table in the TOML file.

The schema is a set of frozen dataclasses; every key a user can set is a field there, so unknown
keys and wrongly typed values are reported with their full dotted name, and a field's rules are
declared with it (`setting(default, *checks)`, config_schema.py), which one validator checks
after the last layer. The core sections are declared here; a backend's own section (`[sonar]`, `[openai]`, ...) is the dataclass its row in
the backend table names (backends.py), so this module names no backend. Which backend names are
valid is the registry's to check (registry.check_models), not the schema's.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, get_type_hints

from voicerag_cli.backends import (
    add_installed_rows,
    add_rows_for,
    config_sections,
    current_table,
    default_backend,
    load,
)
from voicerag_cli.config_schema import at_least, at_most, between, check_section, in_range, one_of, positive, setting
from voicerag_cli.errors import ConfigError
from voicerag_cli.paths import validate_index_name
from voicerag_cli.profiles import BUILTIN_PROFILES, ZH_SIMPLIFIED_PROMPT

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["BUILTIN_PROFILES", "ZH_SIMPLIFIED_PROMPT", "Settings", "load_settings"]

ENV_PREFIX = "VOICERAG_"
# Short aliases for the variables people set most; everything else is VOICERAG_<SECTION>__<KEY>.
ENV_ALIASES = {"VOICERAG_DATA_DIR": ("paths", "data_dir"), "VOICERAG_CACHE_DIR": ("paths", "cache_dir")}
ENV_RESERVED = {"VOICERAG_CONFIG", "VOICERAG_DEBUG", "VOICERAG_PROFILE"}


@dataclass(frozen=True)
class PathsConfig:
    data_dir: str = ""  # empty: the platform's user data dir
    cache_dir: str = ""  # empty: the platform's user cache dir


@dataclass(frozen=True)
class ModelsConfig:
    """Each role's backend; the defaults are the rows marked default in the backend table."""

    text_embedder: str = default_backend("text_embedder")
    speech_embedder: str = default_backend("speech_embedder")
    asr: str = default_backend("asr")
    generator: str = default_backend("generator")
    tts: str = default_backend("tts")
    reader: str = default_backend("reader")


# Upper bounds on counts (at_most): values past these are typos that would exhaust memory or
# overflow a C int.
@dataclass(frozen=True)
class IndexConfig:
    name: str = "default"
    chunk_words: int = setting(120, positive(), at_most(100_000))
    overlap_words: int = 30  # >= 0 and below chunk_words (check)
    batch_size: int = setting(32, positive(), at_most(65_536))
    json_text_field: str = "text"
    # Speak each chunk's first words (espeak-ng) and embed them with the speech embedder, for e2e
    # questions to match speech with speech (`index.spoken`); ~0.13 s per chunk at index time.
    spoken_passages: bool = False
    extensions: list[str] = field(
        default_factory=lambda: [
            ".txt",
            ".md",
            ".markdown",
            ".rst",
            ".html",
            ".htm",
            ".json",
            ".jsonl",
            ".pdf",
        ]
    )
    # fnmatch patterns for names (or, with a '/', paths below a folder indexed) never indexed:
    # dependency lists, build output and theme folders, lock files
    exclude: list[str] = field(
        default_factory=lambda: [
            "*requirements*.txt",
            "*.lock",
            "package-lock.json",
            "build",
            "_build",
            "dist",
            "site-packages",
            "node_modules",
            "_static",
            "_templates",
            "_themes",
        ]
    )
    follow_symlinks: bool = False  # index symlinks that lead outside the folders given
    hnsw_m: int = setting(16, positive(), at_most(1024))
    hnsw_ef_construction: int = setting(200, positive(), at_most(1_000_000))
    hnsw_ef_search: int = setting(128, positive(), at_most(1_000_000))
    # "" (hnswlib under the data dir), "milvus://host:port[/collection]" or "milvus-lite:PATH.db"
    # (checked where it is parsed: index.base.parse_store)
    store: str = ""

    def check(self) -> None:
        if not 0 <= self.overlap_words < self.chunk_words:
            raise ConfigError(
                key="index.overlap_words",
                detail=f"must be >= 0 and < index.chunk_words, got {self.overlap_words}",
            )
        validate_index_name(self.name, key="index.name")


@dataclass(frozen=True)
class AskConfig:
    rag: str = setting("asr", one_of("asr", "e2e"))
    k: int = setting(5, positive(), at_most(1000))
    rounds: int = setting(1, one_of(1, 2))  # 2: the seed's two-round retrieval (question + first answer)
    # longer question audio is refused before any model runs
    max_audio_s: float = setting(60.0, in_range(0, 3600, above=True))
    # Weight of the lexical (BM25, Chinese as pinyin) ranking fused with the vector's for a
    # question with text (asr, typed); 0: vectors alone. e2e has no text: vectors alone. docs/retrieval.md
    # has the measurements (RGB-en spoken Hit@5 0.53 -> 0.60 at 0.5; 0.7 costs typed questions).
    lexical_weight: float = setting(0.5, between(0, 1))
    # e2e: weight of the spoken-passage vectors against the text vectors, where the index has them
    spoken_weight: float = setting(0.5, between(0, 1))
    # Reorder the passages read by the reader's relevance before answering. Off: on RGB-en and
    # HotpotQA (pooled) it lowered answer accuracy (benchmarks/README.md).
    rerank: bool = False


# A transcript's mean token log-probability, below which it is decoded again (asr.index_prompt)
LOG_PROBABILITY = in_range(-20, 0, "a mean token log-probability, -20..0 (0: always)")


@dataclass(frozen=True)
class ChatConfig:
    start_threshold: float = 0.5  # VAD speech probability that starts an utterance
    end_threshold: float = 0.35  # below this a frame is silence
    min_speech_ms: int = setting(250, positive())  # shorter sounds are ignored
    silence_ms: int = setting(500, positive())  # silence that ends an utterance
    history_turns: int = setting(3, at_least(0))  # earlier turns given to the generator
    barge_in: bool = True  # speech during the answer stops playback
    # asr.index_prompt_below for spoken turns: only transcripts Whisper is unsure of are decoded
    # again, since a second decoding costs ~0.2 s of the turn's 1.5 s latency budget (docs/retrieval.md)
    index_prompt_below: float = setting(-0.8, LOG_PROBABILITY)

    def check(self) -> None:
        if not 0 < self.end_threshold <= self.start_threshold < 1:
            raise ConfigError(
                "config keys 'chat.start_threshold'/'chat.end_threshold': need 0 < end <= start < 1, "
                f"got {self.start_threshold}/{self.end_threshold}"
            )


@dataclass(frozen=True)
class AsrConfig:
    model_path: str = ""  # CTranslate2 Whisper folder; empty: the bundled tiny.en
    language: str = "en"
    beam_size: int = setting(1, positive())
    compute_type: str = "int8"
    # Decoder prompt; the zh profile's Simplified sentence steers Whisper base away from Traditional characters.
    initial_prompt: str = ""
    # Convert Traditional characters in transcripts to Simplified (OpenCC t2s, voicerag[zh]): the
    # prompt alone does not hold over long utterances.
    simplified: bool = False
    # Decode a second time, prompted with the start of the passages the first transcript found:
    # the index's own spelling of names and terms (docs/retrieval.md, benchmarks/README.md).
    index_prompt: bool = True
    # ... when the first transcript's mean token log-probability is below this (0: always;
    # chat has its own, chat.index_prompt_below)
    index_prompt_below: float = setting(0.0, LOG_PROBABILITY)


@dataclass(frozen=True)
class TextEmbedderConfig:
    model_path: str = ""  # sentence-transformers folder; empty: the bundled all-MiniLM-L6-v2
    space_id: str = ""  # empty: derived from the model folder's name


@dataclass(frozen=True)
class GeneratorConfig:
    max_sentences: int = setting(3, positive(), at_most(1000))
    # extractive, questions with words (not e2e): the best passages it reads and the reader reranks
    # (at least ask.k); the sources show the top k and the deeper ones it quotes. The answering
    # chunk is often below the top 5; the reader's time grows with each passage read.
    read_passages: int = setting(8, positive(), at_most(1000))
    # extractive: a text question whose best passage scores below this cosine similarity gets
    # "found nothing" (JSON "found": false); 0 turns it off. Calibrated on RGB/HotpotQA (benchmarks/README.md).
    min_score: float = setting(0.36, in_range(-1, 1))


@dataclass(frozen=True)
class TtsConfig:
    voice: str = "en-us"
    rate: int = setting(170, positive())  # words per minute
    pitch: int = setting(50, in_range(0, 99))


def backend_section_types() -> dict[str, type[DataclassInstance]]:
    """Section name -> its dataclass, for every backend of the table that declares one (light
    modules by the table's rule: loading them loads no model library). The table grows when an
    installed package's rows are read (backends.add_installed_rows), so this is asked, not kept."""
    return {section: load(target) for section, target in config_sections().items()}


S = TypeVar("S")


@dataclass(frozen=True)
class Settings:
    """Every section a user can set, validated (`load_settings`); frozen: a changed copy comes
    from `updated`, which checks it again."""

    paths: PathsConfig = field(default_factory=PathsConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    ask: AskConfig = field(default_factory=AskConfig)
    chat: ChatConfig = field(default_factory=ChatConfig)
    asr: AsrConfig = field(default_factory=AsrConfig)
    text_embedder: TextEmbedderConfig = field(default_factory=TextEmbedderConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    tts: TtsConfig = field(default_factory=TtsConfig)
    # The backends' own sections by name ([sonar], [openai], ...): the backend table declares them,
    # so this module names no backend; a backend reads its own with `section(ItsConfig)`.
    backend_sections: Mapping[str, Any] = field(
        default_factory=lambda: {name: cls() for name, cls in backend_section_types().items()}
    )
    source: str = "defaults"  # where the file layer came from, for `config show`
    profile: str = "default"  # the profile layer applied

    def section(self, cls: type[S]) -> S:
        """A backend's own section by its dataclass: `settings.section(SonarConfig)`."""
        for value in self.backend_sections.values():
            if isinstance(value, cls):
                return value
        raise KeyError(f"no config section holds {cls.__name__}")

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: dataclasses.asdict(_section_of(self, name)) for name in section_names()}

    def updated(self, values: Mapping[str, Any]) -> Settings:
        """A copy with `{"section.key": value}` set, each value checked as a flag's is."""
        changes: dict[str, dict[str, Any]] = {}
        for dotted, value in values.items():
            section, _, key = dotted.partition(".")
            _apply(changes, section, key, value, "settings.updated", from_text=False)
        return _assemble(self, changes, self.source, self.profile)


_NOT_SECTIONS = {"backend_sections", "source", "profile"}
_SETTINGS_TYPES = get_type_hints(Settings)
CORE_SECTIONS: dict[str, type[DataclassInstance]] = {
    f.name: _SETTINGS_TYPES[f.name] for f in dataclasses.fields(Settings) if f.name not in _NOT_SECTIONS
}


def section_names() -> list[str]:
    """Core sections in declaration order, each backend section right after the section of
    the role its backend serves (`[sonar]` after `[text_embedder]`), as `config show` prints them."""
    core = list(CORE_SECTIONS)
    after: dict[str, list[str]] = {}
    placed: set[str] = set()
    for spec in current_table():
        if spec.section and spec.section not in placed:
            placed.add(spec.section)
            after.setdefault(spec.role if spec.role in core else core[-1], []).append(spec.section)
    return [name for section in core for name in (section, *after.get(section, []))]


def _section_of(settings: Settings, name: str) -> Any:
    return getattr(settings, name) if name in CORE_SECTIONS else settings.backend_sections[name]


def _assemble(base: Settings, changes: Mapping[str, Mapping[str, Any]], source: str, profile: str) -> Settings:
    """`base` with `changes` ({section: {key: value}}, values already of their field's type) applied, validated."""
    core = {name: dataclasses.replace(getattr(base, name), **changes.get(name, {})) for name in CORE_SECTIONS}
    models = {**dataclasses.asdict(base.models), **changes.get("models", {})}
    add_rows_for(models.items())  # a backend name not built in: read the installed packages' rows
    backends = {
        name: dataclasses.replace(base.backend_sections.get(name) or cls(), **changes.get(name, {}))
        for name, cls in backend_section_types().items()
    }
    settings = Settings(**core, backend_sections=backends, source=source, profile=profile)
    validate(settings)
    return settings


_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*:)(?P<secret>[^@\s]*)(?=@)")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
REDACTED = "***"


def redact_url(text: str) -> str:
    """`scheme://user:password@host` with the password replaced (store URLs, base URLs)."""
    return _URL_PASSWORD.sub(lambda m: m.group("head") + REDACTED, text)


def redacted(settings: Settings) -> dict[str, dict[str, Any]]:
    """`to_dict()` fit to print: no password from a URL, no API key pasted where the name of
    its environment variable belongs."""
    data = settings.to_dict()
    for values in data.values():
        for key, value in values.items():
            if isinstance(value, str):
                values[key] = redact_url(value)
    for section, cls in backend_section_types().items():
        # a backend section names the keys that hold an environment variable's name
        for key in getattr(cls, "ENV_NAME_KEYS", ()):
            env_name = data[section][key]
            if env_name and not _ENV_NAME.match(env_name):
                data[section][key] = REDACTED
    return data


def _section_types(section: str) -> dict[str, Any]:
    cls = CORE_SECTIONS.get(section) or backend_section_types()[section]
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}  # fields only, no ClassVar


def _coerce(dotted: str, expected: Any, value: Any, from_text: bool) -> Any:
    """Return `value` as `expected`, or raise ConfigError naming the key."""
    origin = getattr(expected, "__origin__", None)
    try:
        if expected is bool:
            if isinstance(value, bool):
                return value
            if from_text and str(value).lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
                return str(value).lower() in {"1", "true", "yes", "on"}
        elif expected is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if from_text:
                return int(value)
        elif expected is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            if from_text:
                return float(value)
        elif expected is str:
            if isinstance(value, str):
                return value
        elif origin is list or expected is list or isinstance(expected, types.GenericAlias):
            if from_text and isinstance(value, str):
                return [item.strip() for item in value.split(",") if item.strip()]
            if isinstance(value, list) and all(isinstance(item, str) for item in value):
                return value
    except ValueError:
        pass
    type_name = getattr(expected, "__name__", str(expected))
    raise ConfigError(key=dotted, detail=f"expected {type_name}, got {value!r}")


def _apply(
    changes: dict[str, dict[str, Any]], section: str, key: str, value: Any, origin: str, from_text: bool
) -> None:
    """Record `section.key = value` in `changes`, once the key is known and the value of its type."""
    if section not in section_names():
        add_installed_rows()  # a section no built-in backend declares: perhaps an installed package's
    if section not in section_names():
        raise ConfigError(f"unknown config section '{section}' (in {origin}); known: {', '.join(section_names())}")
    types_ = _section_types(section)
    dotted = f"{section}.{key}"
    if key not in types_:
        raise ConfigError(f"unknown config key '{dotted}' (in {origin}); known: {', '.join(types_)}")
    changes.setdefault(section, {})[key] = _coerce(dotted, types_[key], value, from_text)


def default_config_path() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir("voicerag", appauthor=False)) / "config.toml"


def config_path(explicit: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if explicit:
        return Path(explicit).expanduser()
    if env.get("VOICERAG_CONFIG"):
        return Path(env["VOICERAG_CONFIG"]).expanduser()
    return default_config_path()


CONFIG_MAX_BYTES = 1 << 20  # a config file is a few kB; a bigger "config" is a mistake or an attack
TOML_MAX_DEPTH = 64  # arrays and inline tables nested deeper (tomllib recurses: 50,000 overflow it)
TOML_MAX_KEY_PARTS = 64  # parts of one dotted key (a.b.c...)


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a TOML config file, refusing first what would hang or exhaust the parser: a FIFO,
    a device or a directory, a file over CONFIG_MAX_BYTES, nesting deeper than TOML_MAX_DEPTH
    or a dotted key of more than TOML_MAX_KEY_PARTS parts."""
    from voicerag_cli.errors import os_reason
    from voicerag_cli.safe_io import NotRegular, read_capped

    try:
        raw = read_capped(path, CONFIG_MAX_BYTES)
    except NotRegular as exc:
        if exc.size is not None:
            raise ConfigError(
                f"config file {path} is {exc.size} bytes: larger than {CONFIG_MAX_BYTES} bytes (not a config file?)"
            ) from exc
        raise ConfigError(f"config file {path} is {exc.kind}, not a regular file") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {os_reason(exc)}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read config file {path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    _check_toml_shape(text, path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    except RecursionError as exc:  # the shape check should have caught it
        raise ConfigError(f"config file {path} is nested too deeply to read") from exc


def _check_toml_shape(text: str, path: Path) -> None:
    """Bracket depth and dotted-key length of TOML text, outside strings and comments. Errs on
    the side of the parser: a real config never comes near the limits."""
    depth = deepest = 0
    parts = 1
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "\"'":
            quote = text[i : i + 3] if text[i : i + 3] in ('"""', "'''") else ch
            i += len(quote)
            while i < n and not text.startswith(quote, i):
                i += 2 if ch == '"' and text[i] == "\\" else 1
            i += len(quote)
            continue
        if ch == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
        elif ch == ".":
            parts += 1
        elif ch in "=\n,":
            parts = 1
        if deepest > TOML_MAX_DEPTH:
            raise ConfigError(f"config file {path} nests arrays or tables more than {TOML_MAX_DEPTH} deep")
        if parts > TOML_MAX_KEY_PARTS:
            raise ConfigError(f"config file {path} has a dotted key of more than {TOML_MAX_KEY_PARTS} parts")
        i += 1


def load_settings(
    explicit_path: str | os.PathLike[str] | None = None,
    environ: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
    profile: str | None = None,
) -> Settings:
    """Build settings from every layer. `overrides` are CLI flags as {"section.key": value};
    `profile` is --profile (else VOICERAG_PROFILE, else none)."""
    changes: dict[str, dict[str, Any]] = {}  # section -> key -> value, each layer over the one below
    source = "defaults"
    env = os.environ if environ is None else environ
    profiles: dict[str, Any] = dict(BUILTIN_PROFILES)
    path = config_path(explicit_path, env)
    if path.exists():
        data = read_config_file(path)
        user_profiles = data.pop("profiles", {})
        if not isinstance(user_profiles, dict) or not all(isinstance(v, dict) for v in user_profiles.values()):
            raise ConfigError(f"config key 'profiles' (in {path}) must hold [profiles.NAME] tables")
        profiles.update(user_profiles)
        for section, values in data.items():
            if not isinstance(values, dict):
                raise ConfigError(f"config key '{section}' (in {path}) must be a [section] table")
            for key, value in values.items():
                _apply(changes, section, key, value, str(path), from_text=False)
        source = str(path)
    elif explicit_path:
        raise ConfigError(f"config file not found: {path}")
    elif env.get("VOICERAG_CONFIG"):  # named on purpose, like --config: a typo must not go unnoticed
        raise ConfigError(f"config file not found: {path} (from VOICERAG_CONFIG)")

    chosen = profile or env.get("VOICERAG_PROFILE") or "default"
    if chosen not in profiles:
        raise ConfigError(f"unknown profile {chosen!r}; known: {', '.join(sorted(profiles))}")
    for section, values in profiles[chosen].items():
        if not isinstance(values, dict):
            raise ConfigError(f"config key 'profiles.{chosen}.{section}' must be a [profiles.{chosen}.{section}] table")
        for key, value in values.items():
            _apply(changes, section, key, value, f"profile {chosen!r}", from_text=False)

    for name, value in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or name in ENV_RESERVED:
            continue
        if name in ENV_ALIASES:
            section, key = ENV_ALIASES[name]
        elif "__" in name:
            section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        else:
            raise ConfigError(
                f"unknown environment variable {name}: use VOICERAG_<SECTION>__<KEY>, e.g. VOICERAG_MODELS__ASR"
            )
        _apply(changes, section, key, value, f"environment variable {name}", from_text=True)

    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        _apply(changes, section, key, value, "command-line flag", from_text=False)
    return _assemble(Settings(), changes, source, profile=chosen)


def validate(settings: Settings) -> None:
    """Every section's declared checks and its own cross-field rules, in `config show` order
    (backend names: registry.check_models; index.store: index.base.parse_store)."""
    for name in section_names():
        check_section(name, _section_of(settings, name))


def render_toml(settings: Settings, redact: bool = False) -> str:
    import tomli_w

    return tomli_w.dumps(redacted(settings) if redact else settings.to_dict())
