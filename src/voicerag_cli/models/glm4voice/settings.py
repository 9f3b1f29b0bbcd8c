"""The `glm4voice` generator's config section and weights probe. Standard library only (the
rest of this package imports torch): settings and `voicerag models` read it cheaply."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from voicerag_cli.config_schema import at_least, one_of, setting
from voicerag_cli.errors import ConfigError
from voicerag_cli.models.weights_info import WeightsInfo, dir_size

if TYPE_CHECKING:
    from voicerag_cli.config import Settings


@dataclass(frozen=True)
class Glm4VoiceConfig:
    """The `glm4voice` generator: three local checkpoint folders and generation settings."""

    tokenizer_path: str = ""  # glm-4-voice-tokenizer folder
    lm_path: str = ""  # glm-4-voice-9b snapshot
    decoder_path: str = ""  # glm-4-voice-decoder folder
    trust_remote_code: bool = False  # run code shipped in the 9B snapshot (lm_runtime "remote" only: the native one reads its tokenizer files itself)
    allow_pickle: bool = False  # fully unpickle a flow.pt/hift.pt that holds more than tensors (can run code)
    # native: built-in GLM, static cache, CUDA graphs; remote: the snapshot's code
    lm_runtime: str = setting("native", one_of("native", "remote", quoted=False))
    device: str = "auto"  # auto: cuda when available, else cpu
    compile: bool = True  # on CUDA: torch.compile the LM step and the first block's flow (slower load)
    temperature: float = 0.2
    top_p: float = 0.8
    # -1: as the 9B snapshot's generation_config.json (upstream's generate); 0: off
    top_k: int = setting(-1, at_least(-1, "must be -1 (from the snapshot), 0 (off) or positive"))
    max_new_tokens: int = 2000
    seed: int = -1  # >= 0: reproducible sampling
    first_block: int = 10  # speech tokens decoded before the first audio (later blocks grow to 200)
    # reference: upstream's system prompt, passages in the user turn; grounded
    prompt_layout: str = setting("reference", one_of("reference", "grounded", quoted=False))
    user_template: str = ""  # reference layout's user turn with {context} and {question}; empty: built in

    def check(self) -> None:
        """The generation limits (one message for all), and the template's fields."""
        if self.max_new_tokens <= 0 or self.first_block <= 0 or self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ConfigError(
                "config keys 'glm4voice.*': need max_new_tokens > 0, first_block > 0, temperature >= 0, 0 < top_p <= 1"
            )
        if self.user_template and not all(f in self.user_template for f in ("{context}", "{question}")):
            raise ConfigError(key="glm4voice.user_template", detail="must contain {context} and {question}")


def weights(settings: Settings) -> WeightsInfo:
    """The three checkpoint folders, present only when all are."""
    config = settings.section(Glm4VoiceConfig)
    folders = [config.tokenizer_path, config.lm_path, config.decoder_path]
    paths = [Path(folder).expanduser() for folder in folders if folder]
    present = len(paths) == 3 and all(path.is_dir() for path in paths)
    location = " + ".join(folders) if any(folders) else "[glm4voice] tokenizer_path, lm_path, decoder_path (not set)"
    return WeightsInfo(location, present, sum(dir_size(path) for path in paths) if present else None)
