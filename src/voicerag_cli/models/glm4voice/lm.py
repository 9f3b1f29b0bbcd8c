"""The GLM-4-Voice-9B language model from a local snapshot, handing out each token as it is
generated so that it can be parsed, printed and spoken while the model is still running."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from voicerag_cli.errors import BackendError, ModelError
from voicerag_cli.models.glm4voice.checkpoint import read_json, require_dir, require_file
from voicerag_cli.models.glm4voice.protocol import TokenMap

WHAT = "GLM-4-Voice LM"


@dataclass(frozen=True)
class GenerationParams:
    temperature: float = 0.2  # the upstream demo's defaults
    top_p: float = 0.8
    max_new_tokens: int = 2000
    seed: int | None = None  # fixes sampling, for reproducible answers

    def kwargs(self) -> dict[str, Any]:
        if self.temperature <= 0:
            return {"do_sample": False, "max_new_tokens": self.max_new_tokens}
        return {
            "do_sample": True,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_new_tokens": self.max_new_tokens,
        }


def check_snapshot(folder: Path, trust_remote_code: bool, config_key: str) -> None:
    """The files a snapshot needs, and the remote-code opt-in, checked before anything loads."""
    config = read_json(folder, "config.json", WHAT)
    require_file(folder, "tokenizer_config.json", WHAT)
    if not any(folder.glob("*.safetensors")):
        raise ModelError(f"{WHAT}: no *.safetensors weights in {folder} (pickled .bin weights are not loaded)")
    if "auto_map" in config and not trust_remote_code:
        raise ModelError(
            f"{WHAT}: {folder} ships its own model code (auto_map in config.json); review it, then set "
            f"config key '{config_key}' = true to run it"
        )


class _Callback:
    """A transformers streamer that hands each new id to `on_token` inside the generation loop."""

    def __init__(self, on_token: Callable[[int], None]) -> None:
        self.on_token = on_token
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:  # the first call carries the prompt
            self.prompt_seen = True
            return
        for token in value.reshape(-1).tolist():
            self.on_token(int(token))

    def end(self) -> None:
        pass


class InterleavedLM:
    def __init__(self, model: Any, tokenizer: Any, device: str) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.device = device

    @classmethod
    def load(
        cls,
        folder: str | Path,
        trust_remote_code: bool,
        device: str,
        path_key: str = "glm4voice.lm_path",
        trust_key: str = "glm4voice.trust_remote_code",
    ) -> InterleavedLM:
        from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

        from voicerag_cli.models._offline import prepare_hf_offline

        root = require_dir(folder, WHAT, path_key)
        check_snapshot(root, trust_remote_code, trust_key)
        prepare_hf_offline()
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        options = {"trust_remote_code": trust_remote_code, "local_files_only": True}
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(root), **options)
            try:
                model = AutoModelForCausalLM.from_pretrained(str(root), dtype=dtype, use_safetensors=True, **options)
            except ValueError:  # remote code registered only under AutoModel (as upstream loads it)
                model = AutoModel.from_pretrained(str(root), dtype=dtype, use_safetensors=True, **options)
        except (OSError, ValueError, ImportError) as exc:
            raise ModelError(f"{WHAT}: cannot load {root}: {str(exc).splitlines()[0]}") from exc
        return cls(model.to(device), tokenizer, device)

    def run(
        self,
        prompt_ids: Sequence[int],
        tokens: TokenMap,
        params: GenerationParams,
        on_token: Callable[[int], None],
        logits_processor: Any = None,
    ) -> None:
        """Generate, calling `on_token` with each new id as soon as it exists; stops at `<|user|>`
        (or the end-of-text tokens) or after `max_new_tokens`. `on_token` runs in this thread,
        between two decoding steps: work it does (decoding speech) pauses the model instead of
        competing with it for the interpreter, and an exception it raises ends generation.
        `logits_processor` (a transformers LogitsProcessorList) is for tests and benchmarks."""
        inputs = torch.tensor([list(prompt_ids)], device=self.device)
        if params.seed is not None:
            torch.manual_seed(params.seed)
        try:
            with torch.inference_mode():
                self.model.generate(
                    input_ids=inputs,
                    attention_mask=torch.ones_like(inputs),
                    eos_token_id=list(tokens.stop_ids),
                    pad_token_id=tokens.stop_ids[1],
                    streamer=_Callback(on_token),
                    logits_processor=logits_processor,
                    **params.kwargs(),
                )
        except (RuntimeError, ValueError) as exc:  # CUDA out of memory, bad generation settings
            raise BackendError(f"{WHAT}: generation failed: {str(exc).splitlines()[0]}") from exc
