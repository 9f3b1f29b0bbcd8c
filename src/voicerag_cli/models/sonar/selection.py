"""Which SONAR cards and languages the settings select, and what `voicerag models` reports
about their files. Reads only YAML and the file system: no torch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from voicerag_cli.errors import ModelError, VoiceragError
from voicerag_cli.models.base import EmbeddingSpace
from voicerag_cli.models.sonar.assets import AssetStore, Card, FileState
from voicerag_cli.models.sonar.languages import NLLB_LANGS, speech_lang, text_lang
from voicerag_cli.models.sonar.settings import SonarConfig
from voicerag_cli.models.weights_info import WeightsInfo

if TYPE_CHECKING:
    from voicerag_cli.config import Settings

SPACE_PREFIX = "sonar/"
SPEECH_CARD_PREFIX = "sonar_speech_encoder_"
# The id of an l2 space ends so: distinct from the cosine space's name in every manifest and message.
L2_SPACE_SUFFIX = "+l2"


def space_id(settings: Settings) -> str:
    """Both encoders map into the space of the configured text encoder (the speech encoders were
    trained as students of text_sonar_basic_encoder), so both report its name; with
    `sonar.metric = "l2"` the space is another one (raw vectors, Euclidean distance), so an index
    built under one metric is never searched under the other."""
    config = settings.section(SonarConfig)
    suffix = L2_SPACE_SUFFIX if config.metric == "l2" else ""
    return f"{SPACE_PREFIX}{config.text_encoder}{suffix}"


def embedding_space(settings: Settings, dim: int) -> EmbeddingSpace:
    return EmbeddingSpace(space_id(settings), dim, settings.section(SonarConfig).metric)


def speech_card_name(settings: Settings) -> str:
    config = settings.section(SonarConfig)
    return config.speech_encoder or f"{SPEECH_CARD_PREFIX}{speech_lang(config.lang)}"


def card_langs(card: Card) -> list[str]:
    config = card.get("tokenizer_config") or {}
    config = config.get("_set_", config) if isinstance(config, dict) else {}
    langs = config.get("langs") if isinstance(config, dict) else None
    if not isinstance(langs, list) or not all(isinstance(lang, str) for lang in langs):
        raise ModelError(f"SONAR asset card {card.name!r} ({card.origin}) lists no tokenizer_config langs")
    return langs


def resolved_text_lang(settings: Settings) -> str:
    """The NLLB code that `--lang` selects (checked against the card's languages at load time)."""
    known = tuple(dict.fromkeys([*NLLB_LANGS, *_extra_langs(settings)]))
    return text_lang(settings.section(SonarConfig).lang, known)


def _extra_langs(settings: Settings) -> list[str]:
    """Languages a user's own text card adds beyond NLLB's (e.g. a fine-tuned tokenizer)."""
    try:
        store = AssetStore.from_settings(settings)
        return card_langs(store.card(settings.section(SonarConfig).text_encoder))
    except VoiceragError:
        return []


def index_extra(settings: Settings, previous: dict[str, Any] | None) -> dict[str, Any]:
    """What an index built with the SONAR text encoder records in its manifest: every text
    language it was fed (one index may hold documents in several), and the encoder card."""
    langs = set((previous or {}).get("text_langs", []))
    langs.add(resolved_text_lang(settings))
    return {"text_langs": sorted(langs), "text_encoder": settings.section(SonarConfig).text_encoder}


def _describe(states: list[FileState]) -> str:
    parts = []
    for state in states:
        if state.present:
            parts.append(f"{state.key} {state.path}")
        elif state.url:
            parts.append(f"{state.key} missing ({state.url}; download = true fetches it to {state.path})")
        else:
            parts.append(f"{state.key} missing ({state.path})")
    return "; ".join(parts)


def _weights(settings: Settings, card_name: str, keys: tuple[str, ...], note: str = "") -> WeightsInfo:
    try:
        store = AssetStore.from_settings(settings)
        card = store.card(card_name)
        states = [store.file_state(card, key) for key in keys]
    except VoiceragError as exc:
        return WeightsInfo(f"{card_name}: {exc}", False)
    present = all(state.present for state in states)
    size = sum(state.size for state in states) if present else None
    return WeightsInfo(f"{card_name} ({card.origin}): {_describe(states)}{note}", present, size)


def text_weights(settings: Settings) -> WeightsInfo:
    return _weights(settings, settings.section(SonarConfig).text_encoder, ("checkpoint", "tokenizer"))


def speech_weights(settings: Settings) -> WeightsInfo:
    """The configured language's speech encoder, plus which other languages' are on this machine."""
    name = speech_card_name(settings)
    others = []
    try:
        store = AssetStore.from_settings(settings)
        for other in store.names():
            if other.startswith(SPEECH_CARD_PREFIX) and other != name:
                card = store.card(other)
                if "checkpoint" in card.fields and store.file_state(card, "checkpoint").present:
                    others.append(other.removeprefix(SPEECH_CARD_PREFIX))
    except VoiceragError:
        pass
    note = f"; other languages present: {', '.join(others)}" if others else ""
    return _weights(settings, name, ("checkpoint",), note)
