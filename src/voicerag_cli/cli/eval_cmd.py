"""`voicerag eval`: benchmark evaluation (issue 3)."""

from __future__ import annotations

from voicerag_cli.cli.chat_cmd import NotYetAvailable


def eval_command() -> None:
    """Evaluate retrieval and answers on spoken benchmark questions (not yet available)."""
    raise NotYetAvailable("`voicerag eval` is not yet available in this version")
