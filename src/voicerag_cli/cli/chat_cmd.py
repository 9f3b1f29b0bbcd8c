"""`voicerag chat`: live spoken conversation (issue 7)."""

from __future__ import annotations

from typing import Annotated

import typer

from voicerag_cli.errors import VoiceragError


class NotYetAvailable(VoiceragError):
    exit_code = 2


def chat(
    mic: Annotated[bool, typer.Option("--mic", help="Listen on the default microphone.")] = False,
) -> None:
    """Live spoken conversation over an index (not yet available)."""
    raise NotYetAvailable("`voicerag chat` is not yet available in this version; use `voicerag ask`")
