"""The words a user reads for internal names: model roles and pipeline stages. One place, so
the status line, the timing line and `models` speak alike."""

from __future__ import annotations

ROLE_WORDS = {
    "text_embedder": "the text search model",
    "speech_embedder": "the speech search model",
    "asr": "speech recognition",
    "generator": "the answer generator",
    "tts": "speech synthesis",
    "reader": "the passage reader",
}

# What the status line says while a stage runs.
STAGE_ACTIVITIES = {
    "read_audio": "reading the audio",
    "asr": "transcribing",
    "asr_round2": "transcribing again",
    "embed_text": "reading the question",
    "embed_speech": "listening to the question",
    "search": "searching",
    "search_prompt": "searching",
    "rerank": "ranking passages",
    "generate": "writing the answer",
    "embed_round2": "reading the first answer",
    "search_round2": "searching again",
    "generate_round2": "writing the final answer",
    "tts": "speaking the answer",
}

# The timing line's groups: several internal stages add up under one word, in this order.
TIMING_GROUPS = {
    "read_audio": "reading audio",
    "asr": "speech recognition",
    "asr_round2": "speech recognition",
    "embed_text": "search",
    "embed_speech": "search",
    "search": "search",
    "search_prompt": "search",
    "rerank": "search",
    "embed_round2": "search",
    "search_round2": "search",
    "generate": "answer",
    "generate_round2": "answer",
    "tts": "speech",
}


def role_words(role: str) -> str:
    return ROLE_WORDS.get(role, role.replace("_", " "))


def stage_activity(stage: str) -> str:
    return STAGE_ACTIVITIES.get(stage, stage.replace("_", " "))


def grouped_timings(timings_ms: dict[str, float]) -> dict[str, float]:
    """Stage timings summed under their user words, in first-seen order ("total" left out)."""
    groups: dict[str, float] = {}
    for stage, ms in timings_ms.items():
        if stage == "total":
            continue
        word = TIMING_GROUPS.get(stage, stage.replace("_", " "))
        groups[word] = groups.get(word, 0.0) + ms
    return groups


def duration(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def pack_line(items: list[str], width: int, separator: str = " · ") -> list[str]:
    """`items` joined by `separator` into lines of at most `width` characters, breaking only
    between items so that no item is split (one longer than `width` gets a line of its own)."""
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + len(separator) + len(item) <= width:
            lines[-1] += separator + item
        else:
            lines.append(item)
    return lines
