"""`--lang`: an ISO 639-1 code (en, zh) picks the offline language profile; every code also
goes to the backends that take a language (the backend table's lang hooks: SONAR's sonar.lang,
where anything else, such as eng, cmn or an NLLB code, is a SONAR language as before).

An index records the language it was built for, so a question in another language fails with
one line instead of silently retrieving through the wrong models."""

from __future__ import annotations

from typing import Any

from voicerag_cli.errors import IndexError_

# language -> built-in profile (None: the default models)
PROFILE_LANGS: dict[str, str | None] = {"en": None, "zh": "zh"}
LANG_HELP = (
    "Language: en or zh picks the offline profile (zh: Whisper base + multilingual-e5, needs voicerag\\[zh]); "
    "eng, cmn, ... or an NLLB code sets the SONAR language (sonar.lang)."
)


def resolve(lang: str | None, profile: str | None) -> tuple[str | None, dict[str, Any]]:
    """(profile, config overrides) for a command's --lang and --profile; an explicit --profile wins."""
    from voicerag_cli.backends import lang_settings

    if lang is None:
        return profile, {}
    code = lang.strip().lower()
    if code in PROFILE_LANGS:
        return profile or PROFILE_LANGS[code], lang_settings(code)
    return profile, lang_settings(lang)


def index_language(settings: Any) -> str:
    """The language an index built with these settings is for: the question language (asr.language)."""
    return str(settings.asr.language or "en")


def check_language(index_name: str, extra: dict[str, Any], settings: Any) -> None:
    recorded = extra.get("language")
    wanted = index_language(settings)
    if recorded and recorded != wanted:
        raise IndexError_(
            f"index {index_name!r} was built for language {recorded!r} but this question is {wanted!r}: "
            f"ask with --lang {recorded} (or index your documents again with --lang {wanted})"
        )
