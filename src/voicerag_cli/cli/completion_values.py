"""Values offered by shell completion: retrieval modes, backend names, existing index names.

Completion runs the app with _VOICERAG_COMPLETE set; these functions must stay cheap (no models)
and never fail: a broken data dir or config simply offers nothing.
"""

from __future__ import annotations


def _matching(values: list[str], incomplete: str) -> list[str]:
    return [value for value in values if value.startswith(incomplete)]


def rag_modes(incomplete: str) -> list[str]:
    return _matching(["asr", "e2e"], incomplete)


def generators(incomplete: str) -> list[str]:
    from voicerag_cli.registry import known_backends

    return _matching(known_backends()["generator"], incomplete)


def index_names(incomplete: str) -> list[str]:
    from voicerag_cli.cli.context import STATE

    try:
        return _matching(sorted(STATE.index_root().names()), incomplete)
    except Exception:
        return []
