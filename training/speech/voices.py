"""espeak-ng voices for training and the voices held out for evaluation.

A voice is an accent (espeak-ng language voice) plus an optional variant (`+f3`). Held out,
never used in training: the whole Caribbean accent `en-029`, and the variants in
`HELD_OUT_VARIANTS` with every accent. Rates and pitches are sampled per clip.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

ACCENTS = (
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-rp",
    "en-gb-x-gbcwmd",
    "en-us-nyc",
    "en-029",
)
VARIANTS = (
    "",
    "f1", "f2", "f3", "f4", "f5",
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8",
    "klatt", "klatt2", "klatt3", "klatt4",
    "Alex", "Andy", "Annie", "adam", "announcer", "aunty", "belinda", "benjamin", "boris",
    "caleb", "david", "ed", "edward", "grandma", "grandpa", "iven", "john", "linda", "max",
    "michel", "norbert", "paul", "quincy", "rob", "robert", "shelby", "steph", "travis",
    "victor", "whisper", "croak",
)  # fmt: skip
HELD_OUT_ACCENTS = frozenset({"en-029"})
HELD_OUT_VARIANTS = frozenset({"f4", "m5", "klatt3", "linda", "travis", "grandpa"})
# The fixed voices that speak evaluation questions (RGB, held-out sentences): all held out.
EVAL_VOICES = (
    "en-029",
    "en-us+f4",
    "en-gb+m5",
    "en-us-nyc+travis",
    "en-gb-x-rp+linda",
    "en-us+klatt3",
    "en-029+f4",
    "en-gb-scotland+grandpa",
)
EVAL_RATES = (150, 175)


@dataclass(frozen=True)
class Voice:
    name: str  # espeak-ng -v argument, e.g. "en-gb+f3"
    rate: int  # words per minute
    pitch: int  # 0-99
    word_gap: int = 0  # extra pause between words, in 10 ms units


def voice_name(accent: str, variant: str) -> str:
    return f"{accent}+{variant}" if variant else accent


def is_held_out(name: str) -> bool:
    accent, _, variant = name.partition("+")
    return accent in HELD_OUT_ACCENTS or variant in HELD_OUT_VARIANTS


def train_voice_names() -> list[str]:
    names = [voice_name(a, v) for a in ACCENTS for v in VARIANTS]
    return [n for n in names if not is_held_out(n)]


def sample_train_voice(rng: random.Random, names: list[str]) -> Voice:
    # Rates and pitches span slow-to-fast and low-to-high speakers around espeak's defaults.
    return Voice(
        name=rng.choice(names),
        rate=rng.randint(125, 215),
        pitch=rng.randint(25, 75),
        word_gap=rng.choice((0, 0, 0, 1, 2, 4)),
    )


def sample_eval_voice(rng: random.Random) -> Voice:
    return Voice(name=rng.choice(EVAL_VOICES), rate=rng.choice(EVAL_RATES), pitch=rng.randint(35, 65))
