"""Placeholder backends for roles whose real implementation is not configured."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from voicerag_cli.errors import ModelError
from voicerag_cli.models.weights_info import WeightsInfo

if TYPE_CHECKING:
    from voicerag_cli.config import Settings
    from voicerag_cli.models.base import Roles


def create_speech_embedder(settings: Settings, registry: Roles) -> NoReturn:
    raise ModelError(
        "--rag e2e needs a speech embedder, and none is configured (models.speech_embedder = 'none'); use --rag asr"
    )


def weights(settings: Settings) -> WeightsInfo:
    return WeightsInfo("-", False)


def create_reader(settings: Settings, registry: Roles) -> None:
    """No reader: its users fall back to what they do without one."""
    return None
