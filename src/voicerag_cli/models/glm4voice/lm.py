"""The GLM-4-Voice-9B language model from a local snapshot, generating in a background thread
so that its tokens can be parsed, printed and spoken while it is still running."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
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


class _TokenQueue:
    """A transformers streamer: generate() puts new ids here, the consumer iterates them."""

    def __init__(self) -> None:
        self.items: queue.Queue[int | BaseException | None] = queue.Queue()
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:  # the first call carries the prompt
            self.prompt_seen = True
            return
        for token in value.reshape(-1).tolist():
            self.items.put(int(token))

    def end(self) -> None:
        self.items.put(None)


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

    def stream(
        self,
        prompt_ids: Sequence[int],
        tokens: TokenMap,
        params: GenerationParams,
        logits_processor: Any = None,
    ) -> Iterator[int]:
        """Generated ids, one at a time, as the model produces them; stops at `<|user|>` (or the
        end-of-text tokens), after `max_new_tokens`, or when the consumer stops iterating.
        `logits_processor` (a transformers LogitsProcessorList) is for tests and benchmarks."""
        from transformers import StoppingCriteria, StoppingCriteriaList

        streamer = _TokenQueue()
        inputs = torch.tensor([list(prompt_ids)], device=self.device)
        cancelled = threading.Event()

        class _Cancelled(StoppingCriteria):
            def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
                return torch.full((input_ids.shape[0],), cancelled.is_set(), device=input_ids.device)

        def run() -> None:
            try:
                if params.seed is not None:
                    torch.manual_seed(params.seed)
                with torch.inference_mode():
                    self.model.generate(
                        input_ids=inputs,
                        attention_mask=torch.ones_like(inputs),
                        eos_token_id=list(tokens.stop_ids),
                        pad_token_id=tokens.stop_ids[1],
                        streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([_Cancelled()]),
                        logits_processor=logits_processor,
                        **params.kwargs(),
                    )
            except BaseException as exc:  # surfaced in the consumer's thread
                streamer.items.put(exc)
                return

        worker = threading.Thread(target=run, name="glm4voice-generate", daemon=True)
        worker.start()
        try:
            while True:
                item = streamer.items.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise BackendError(f"{WHAT}: generation failed: {item}") from item
                yield item
        finally:
            cancelled.set()  # a consumer that stops early (an error, Ctrl-C) stops the model too
            worker.join()
