"""Layered configuration: defaults < TOML file < profile < VOICERAG_* environment < CLI flags.

A profile (`--profile NAME` / `VOICERAG_PROFILE`) is a named set of keys: built in (`sonar`) or
a `[profiles.NAME.<section>]` table in the TOML file.

The schema is a set of dataclasses; every key a user can set is a field there, so unknown
keys and wrongly typed values are reported with their full dotted name. The core sections are
declared here; a backend's own section (`[sonar]`, `[openai]`, ...) is the dataclass its row in
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
from typing import Any, get_type_hints

from voicerag_cli.backends import BACKENDS, config_sections, default_backend, load
from voicerag_cli.errors import ConfigError

__all__ = ["Settings", "load_settings"]

ENV_PREFIX = "VOICERAG_"
# Short aliases for the variables people set most; everything else is VOICERAG_<SECTION>__<KEY>.
ENV_ALIASES = {"VOICERAG_DATA_DIR": ("paths", "data_dir"), "VOICERAG_CACHE_DIR": ("paths", "cache_dir")}
ENV_RESERVED = {"VOICERAG_CONFIG", "VOICERAG_DEBUG", "VOICERAG_PROFILE"}
# A short Simplified-Chinese sentence: Whisper continues in the prompt's script.
ZH_SIMPLIFIED_PROMPT = "以下是普通话的句子，使用简体中文。"
# Built-in profiles; a TOML [profiles.NAME] table of the same name replaces one.
BUILTIN_PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "default": {},
    # The reference system's retrieval: Meta SONAR text and speech encoders, one shared space.
    "sonar": {"models": {"text_embedder": "sonar", "speech_embedder": "sonar"}},
    # Mandarin offline (pip install voicerag[zh]): Whisper base multilingual, multilingual-e5-small,
    # and Kokoro for spoken answers (voicerag[tts]): espeak-ng says "Chinese letter" per character.
    "zh": {
        "models": {"asr": "whisper-base", "text_embedder": "e5-small", "tts": "kokoro"},
        "asr": {"language": "zh", "initial_prompt": ZH_SIMPLIFIED_PROMPT, "simplified": True},
        # homophones dominate Chinese transcripts' errors, and pinyin terms see through them
        "ask": {"lexical_weight": 0.7},
    },
}


@dataclass
class PathsConfig:
    data_dir: str = ""  # empty: the platform's user data dir
    cache_dir: str = ""  # empty: the platform's user cache dir


@dataclass
class ModelsConfig:
    """Each role's backend; the defaults are the rows marked default in the backend table."""

    text_embedder: str = default_backend("text_embedder")
    speech_embedder: str = default_backend("speech_embedder")
    asr: str = default_backend("asr")
    generator: str = default_backend("generator")
    tts: str = default_backend("tts")
    reader: str = default_backend("reader")


@dataclass
class IndexConfig:
    name: str = "default"
    chunk_words: int = 120
    overlap_words: int = 30
    batch_size: int = 32
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
    hnsw_m: int = 16
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 128
    # "" (hnswlib under the data dir), "milvus://host:port[/collection]" or "milvus-lite:PATH.db"
    store: str = ""


@dataclass
class AskConfig:
    rag: str = "asr"
    k: int = 5
    rounds: int = 1  # 2: the seed's two-round retrieval (question + first answer)
    max_audio_s: float = 60.0  # longer question audio is refused before any model runs
    # Weight of the lexical (BM25, Chinese as pinyin) ranking fused with the vector's for a
    # question with text (asr, typed); 0: vectors alone. e2e has no text: vectors alone. README
    # has the measurements (RGB-en spoken Hit@5 0.53 -> 0.60 at 0.5; 0.7 costs typed questions).
    lexical_weight: float = 0.5
    # e2e: weight of the spoken-passage vectors against the text vectors, where the index has them
    spoken_weight: float = 0.5
    # Reorder the passages read by the reader's relevance before answering. Off: on RGB-en and
    # HotpotQA (pooled) it lowered answer accuracy (benchmarks/README.md).
    rerank: bool = False


@dataclass
class ChatConfig:
    start_threshold: float = 0.5  # VAD speech probability that starts an utterance
    end_threshold: float = 0.35  # below this a frame is silence
    min_speech_ms: int = 250  # shorter sounds are ignored
    silence_ms: int = 500  # silence that ends an utterance
    history_turns: int = 3  # earlier turns given to the generator
    barge_in: bool = True  # speech during the answer stops playback
    # asr.index_prompt_below for spoken turns: only transcripts Whisper is unsure of are decoded
    # again, since a second decoding costs ~0.2 s of the turn's 1.5 s latency budget (README)
    index_prompt_below: float = -0.8


@dataclass
class AsrConfig:
    model_path: str = ""  # CTranslate2 Whisper folder; empty: the bundled tiny.en
    language: str = "en"
    beam_size: int = 1
    compute_type: str = "int8"
    # Decoder prompt; the zh profile's Simplified sentence steers Whisper base away from Traditional characters.
    initial_prompt: str = ""
    # Convert Traditional characters in transcripts to Simplified (OpenCC t2s, voicerag[zh]): the
    # prompt alone does not hold over long utterances.
    simplified: bool = False
    # Decode a second time, prompted with the start of the passages the first transcript found:
    # the index's own spelling of names and terms (README "Decoding again with the index's words").
    index_prompt: bool = True
    # ... when the first transcript's mean token log-probability is below this (0: always;
    # chat has its own, chat.index_prompt_below)
    index_prompt_below: float = 0.0


@dataclass
class TextEmbedderConfig:
    model_path: str = ""  # sentence-transformers folder; empty: the bundled all-MiniLM-L6-v2
    space_id: str = ""  # empty: derived from the model folder's name


@dataclass
class GeneratorConfig:
    max_sentences: int = 3
    # extractive, questions with words (not e2e): the best passages it reads and the reader reranks
    # (at least ask.k); the sources show the top k and the deeper ones it quotes. The answering
    # chunk is often below the top 5; the reader's time grows with each passage read.
    read_passages: int = 8
    # extractive: a text question whose best passage scores below this cosine similarity gets
    # "found nothing" (JSON "found": false); 0 turns it off. Calibrated on RGB/HotpotQA (README).
    min_score: float = 0.36


@dataclass
class TtsConfig:
    voice: str = "en-us"
    rate: int = 170  # words per minute
    pitch: int = 50  # 0-99


@dataclass
class CoreSettings:
    """The sections every install has; `Settings` adds the backends' own sections."""

    paths: PathsConfig = field(default_factory=PathsConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    ask: AskConfig = field(default_factory=AskConfig)
    chat: ChatConfig = field(default_factory=ChatConfig)
    asr: AsrConfig = field(default_factory=AsrConfig)
    text_embedder: TextEmbedderConfig = field(default_factory=TextEmbedderConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    tts: TtsConfig = field(default_factory=TtsConfig)
    source: str = "defaults"  # where the file layer came from, for `config show`
    profile: str = "default"  # the profile layer applied

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: dataclasses.asdict(getattr(self, name)) for name in section_names()}


def _backend_sections() -> dict[str, type]:
    """Section name -> its dataclass, for every backend that declares one (standard-library
    modules by the table's rule: loading them loads no model library)."""
    return {section: load(target) for section, target in config_sections().items()}


BACKEND_SECTIONS = _backend_sections()
_NOT_SECTIONS = {"source", "profile"}


def _section_order() -> list[str]:
    """Core sections in declaration order, each backend section right after the section of
    the role its backend serves (`[sonar]` after `[text_embedder]`), as `config show` prints them."""
    core = [f.name for f in dataclasses.fields(CoreSettings) if f.name not in _NOT_SECTIONS]
    after: dict[str, list[str]] = {}
    placed: set[str] = set()
    for spec in BACKENDS:
        if spec.section and spec.section not in placed:
            placed.add(spec.section)
            after.setdefault(spec.role if spec.role in core else core[-1], []).append(spec.section)
    return [name for section in core for name in (section, *after.get(section, []))]


# Settings: the core sections plus one field per backend section, each defaulting to its dataclass.
Settings = dataclasses.make_dataclass(
    "Settings",
    [(name, cls, field(default_factory=cls)) for name, cls in BACKEND_SECTIONS.items()],
    bases=(CoreSettings,),
)
Settings.__module__ = __name__


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
    for section, cls in BACKEND_SECTIONS.items():
        # a backend section names the keys that hold an environment variable's name
        for key in getattr(cls, "ENV_NAME_KEYS", ()):
            env_name = data[section][key]
            if env_name and not _ENV_NAME.match(env_name):
                data[section][key] = REDACTED
    return data


def section_names() -> list[str]:
    return _section_order()


def _section_types(section: str) -> dict[str, Any]:
    cls = type(getattr(Settings(), section))
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
    raise ConfigError(f"config key '{dotted}': expected {type_name}, got {value!r}")


def _apply(settings: Settings, section: str, key: str, value: Any, origin: str, from_text: bool) -> None:
    if section not in section_names():
        raise ConfigError(f"unknown config section '{section}' (in {origin}); known: {', '.join(section_names())}")
    types_ = _section_types(section)
    dotted = f"{section}.{key}"
    if key not in types_:
        raise ConfigError(f"unknown config key '{dotted}' (in {origin}); known: {', '.join(types_)}")
    setattr(getattr(settings, section), key, _coerce(dotted, types_[key], value, from_text))


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
    settings = Settings()
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
                _apply(settings, section, key, value, str(path), from_text=False)
        settings.source = str(path)
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
            _apply(settings, section, key, value, f"profile {chosen!r}", from_text=False)
    settings.profile = chosen

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
        _apply(settings, section, key, value, f"environment variable {name}", from_text=True)

    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        _apply(settings, section, key, value, "command-line flag", from_text=False)
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    """Checks that span beyond one value's type (backend names: registry.check_models)."""
    if settings.ask.rounds not in (1, 2):
        raise ConfigError(f"config key 'ask.rounds': expected 1 or 2, got {settings.ask.rounds}")
    if settings.ask.rag not in {"asr", "e2e"}:
        raise ConfigError(f"config key 'ask.rag': expected 'asr' or 'e2e', got {settings.ask.rag!r}")
    positive = {
        "ask.k": settings.ask.k,
        "index.chunk_words": settings.index.chunk_words,
        "index.batch_size": settings.index.batch_size,
        "index.hnsw_m": settings.index.hnsw_m,
        "index.hnsw_ef_construction": settings.index.hnsw_ef_construction,
        "index.hnsw_ef_search": settings.index.hnsw_ef_search,
        "asr.beam_size": settings.asr.beam_size,
        "generator.max_sentences": settings.generator.max_sentences,
        "generator.read_passages": settings.generator.read_passages,
        "tts.rate": settings.tts.rate,
    }
    for dotted, value in positive.items():
        if value <= 0:
            raise ConfigError(f"config key '{dotted}': must be positive, got {value}")
    # Upper bounds: values past these are typos that would exhaust memory or overflow a C int.
    bounded = {
        "ask.k": (settings.ask.k, 1000),
        "index.chunk_words": (settings.index.chunk_words, 100_000),
        "index.batch_size": (settings.index.batch_size, 65_536),
        "index.hnsw_m": (settings.index.hnsw_m, 1024),
        "index.hnsw_ef_construction": (settings.index.hnsw_ef_construction, 1_000_000),
        "index.hnsw_ef_search": (settings.index.hnsw_ef_search, 1_000_000),
        "generator.max_sentences": (settings.generator.max_sentences, 1000),
        "generator.read_passages": (settings.generator.read_passages, 1000),
    }
    for dotted, (value, most) in bounded.items():
        if value > most:
            raise ConfigError(f"config key '{dotted}': at most {most:,}, got {value:,}")
    if not -1 <= settings.generator.min_score <= 1:
        raise ConfigError(f"config key 'generator.min_score': must be in -1..1, got {settings.generator.min_score}")
    if not 0 <= settings.ask.spoken_weight <= 1:
        raise ConfigError(f"config key 'ask.spoken_weight': must be between 0 and 1, got {settings.ask.spoken_weight}")
    if not 0 <= settings.ask.lexical_weight <= 1:
        raise ConfigError(
            f"config key 'ask.lexical_weight': must be between 0 and 1, got {settings.ask.lexical_weight}"
        )
    for dotted, below in (
        ("asr.index_prompt_below", settings.asr.index_prompt_below),
        ("chat.index_prompt_below", settings.chat.index_prompt_below),
    ):
        if not -20 <= below <= 0:
            raise ConfigError(f"config key '{dotted}': a mean token log-probability, -20..0 (0: always), got {below}")
    if not 0 < settings.ask.max_audio_s <= 3600:
        raise ConfigError(f"config key 'ask.max_audio_s': must be > 0 and <= 3600, got {settings.ask.max_audio_s}")
    if not 0 <= settings.index.overlap_words < settings.index.chunk_words:
        raise ConfigError(
            f"config key 'index.overlap_words': must be >= 0 and < index.chunk_words, got {settings.index.overlap_words}"
        )
    chat = settings.chat
    if not 0 < chat.end_threshold <= chat.start_threshold < 1:
        raise ConfigError(
            "config keys 'chat.start_threshold'/'chat.end_threshold': need 0 < end <= start < 1, "
            f"got {chat.start_threshold}/{chat.end_threshold}"
        )
    for key in ("min_speech_ms", "silence_ms"):
        if getattr(chat, key) <= 0:
            raise ConfigError(f"config key 'chat.{key}': must be positive, got {getattr(chat, key)}")
    if chat.history_turns < 0:
        raise ConfigError(f"config key 'chat.history_turns': must be >= 0, got {chat.history_turns}")
    if not 0 <= settings.tts.pitch <= 99:
        raise ConfigError(f"config key 'tts.pitch': must be in 0..99, got {settings.tts.pitch}")
    # Backends' own sections check themselves.
    for section in BACKEND_SECTIONS:
        check = getattr(getattr(settings, section), "check", None)
        if check is not None:
            check()
    from voicerag_cli.paths import validate_index_name

    validate_index_name(settings.index.name, key="index.name")  # index.store: index.base.parse_store


def render_toml(settings: Settings, redact: bool = False) -> str:
    import tomli_w

    return tomli_w.dumps(redacted(settings) if redact else settings.to_dict())
