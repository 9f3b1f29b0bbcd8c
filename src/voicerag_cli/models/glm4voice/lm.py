"""The GLM-4-Voice-9B language model from a local snapshot, handing out each token as it is
generated so that it can be parsed, printed and spoken while the model is still running.

Two runtimes (`glm4voice.lm_runtime`):
- native (default): the weights in transformers' own GLM class (the published ChatGLM layout is
  converted on load, `chatglm_weights.py`), decoded by `static_lm.py` with a static KV cache and,
  on CUDA, a CUDA graph per token; the tokenizer's files read by `glm_tokenizer.py`. None of the
  snapshot's code is run.
- remote: the snapshot's own model code (opt-in) through transformers' `generate`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from voicerag_cli.errors import BackendError, ModelError
from voicerag_cli.models.glm4voice.checkpoint import read_json, require_dir
from voicerag_cli.models.glm4voice.protocol import TokenMap
from voicerag_cli.models.glm4voice.static_lm import SamplingParams, StaticGlmDecoder

WHAT = "GLM-4-Voice LM"
RUNTIMES = ("native", "remote")


@dataclass(frozen=True)
class GenerationParams:
    temperature: float = 0.2  # the upstream demo's defaults
    top_p: float = 0.8
    max_new_tokens: int = 2000
    seed: int | None = None  # fixes sampling, for reproducible answers
    top_k: int = 0  # 0: none

    @property
    def sampling(self) -> SamplingParams:
        return SamplingParams(self.temperature, self.top_p, self.top_k)

    def kwargs(self) -> dict[str, Any]:
        if self.temperature <= 0:
            return {"do_sample": False, "max_new_tokens": self.max_new_tokens}
        return {
            "do_sample": True,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,  # explicit (0: none): generate would otherwise apply its default 50
            "max_new_tokens": self.max_new_tokens,
        }


# transformers' GenerationConfig default, which upstream's `generate` call applies when the
# snapshot's generation_config.json names no top_k.
TRANSFORMERS_TOP_K = 50


def snapshot_top_k(folder: Path) -> int | None:
    """The top_k upstream's `model.generate(temperature=..., top_p=...)` samples with: the
    snapshot's generation_config.json's, or transformers' default 50 where the file names none.
    None without the file. (Its `do_sample` is not followed: `temperature` decides sampling.)"""
    path = folder / "generation_config.json"
    if not path.is_file():
        return None
    top_k = read_json(folder, "generation_config.json", WHAT).get("top_k", TRANSFORMERS_TOP_K)
    if top_k is None:
        return 0
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 0:
        raise ModelError(f"{WHAT}: {path} has top_k {top_k!r}, expected a non-negative integer")
    return top_k


def resolve_sampling(params: GenerationParams, top_k: int, snapshot_top_k: int | None) -> GenerationParams:
    """The config's `top_k`: -1 follows the snapshot (`snapshot_top_k`; no generation_config.json:
    no top-k), 0 turns top-k off, n > 0 keeps the n most likely tokens."""
    from dataclasses import replace

    if top_k >= 0:
        return replace(params, top_k=top_k)
    return replace(params, top_k=snapshot_top_k or 0)


def check_snapshot(folder: Path, trust_remote_code: bool, config_key: str, runtime: str = "native") -> dict[str, Any]:
    """The files a snapshot needs, and the remote-code opt-in, checked before anything loads;
    returns config.json. Native GLM and ChatGLM layouts need no model code, and upstream's tiktoken
    tokenizer is read natively (`glm_tokenizer.py`); another tokenizer that ships its own code and
    the remote runtime need the opt-in."""
    from voicerag_cli.models.glm4voice.glm_tokenizer import is_glm4_tokenizer

    config = read_json(folder, "config.json", WHAT)
    tokenizer_config = read_json(folder, "tokenizer_config.json", WHAT)
    if not any(folder.glob("*.safetensors")):
        raise ModelError(f"{WHAT}: no *.safetensors weights in {folder} (pickled .bin weights are not loaded)")
    native_model = runtime == "native" and config.get("model_type") in ("glm", "chatglm")
    if runtime == "native" and not native_model:
        raise ModelError(
            f"{WHAT}: {folder} holds model_type {config.get('model_type')!r}, which the native runtime does not "
            'run (GLM or ChatGLM); set glm4voice.lm_runtime = "remote" to use the snapshot\'s own code'
        )
    shipped = [part for part, data in (("model", config), ("tokenizer", tokenizer_config)) if "auto_map" in data]
    native_tokenizer = runtime == "native" and is_glm4_tokenizer(folder)
    needs_code = [part for part in shipped if not native_model or (part == "tokenizer" and not native_tokenizer)]
    if needs_code and not trust_remote_code:
        raise ModelError(
            f"{WHAT}: {folder} ships its own {' and '.join(needs_code)} code (auto_map); review it, then set "
            f"config key '{config_key}' = true to run it"
        )
    return config


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
    def __init__(self, model: Any, tokenizer: Any, device: str, compile: bool = False) -> None:
        from transformers import GlmForCausalLM

        self.model = model.eval()
        self.tokenizer = tokenizer
        self.device = device
        # Native GLM weights get the static-cache decoder; anything else goes through `generate`.
        native = isinstance(model, GlmForCausalLM)
        self.fast = StaticGlmDecoder(self.model, device, compile=compile) if native else None
        self.snapshot_top_k: int | None = None  # from generation_config.json, see `load`

    @classmethod
    def load(
        cls,
        folder: str | Path,
        trust_remote_code: bool,
        device: str,
        path_key: str = "glm4voice.lm_path",
        trust_key: str = "glm4voice.trust_remote_code",
        runtime: str = "native",
        compile: bool = False,
    ) -> InterleavedLM:
        from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

        from voicerag_cli.models._offline import prepare_hf_offline
        from voicerag_cli.models.glm4voice.chatglm_weights import is_chatglm, load_chatglm
        from voicerag_cli.models.glm4voice.glm_tokenizer import is_glm4_tokenizer, load_glm4_tokenizer

        root = require_dir(folder, WHAT, path_key)
        config = check_snapshot(root, trust_remote_code, trust_key, runtime)
        prepare_hf_offline()
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        options: dict[str, Any] = {"trust_remote_code": trust_remote_code, "local_files_only": True}
        try:
            if runtime == "native" and is_glm4_tokenizer(root):  # upstream's files, without its code
                tokenizer = load_glm4_tokenizer(root)
            else:
                tokenizer = AutoTokenizer.from_pretrained(str(root), **options)
            if runtime == "native" and is_chatglm(config):
                model = load_chatglm(root, config, device, dtype)
            elif runtime == "native":
                model = AutoModelForCausalLM.from_pretrained(str(root), dtype=dtype, use_safetensors=True)
            else:
                try:
                    model = AutoModelForCausalLM.from_pretrained(
                        str(root), dtype=dtype, use_safetensors=True, **options
                    )
                except ValueError:  # remote code registered only under AutoModel (as upstream loads it)
                    model = AutoModel.from_pretrained(str(root), dtype=dtype, use_safetensors=True, **options)
        except (OSError, ValueError, ImportError) as exc:
            raise ModelError(f"{WHAT}: cannot load {root}: {str(exc).splitlines()[0]}") from exc
        lm = cls(model.to(device), tokenizer, device, compile)
        lm.snapshot_top_k = snapshot_top_k(root)
        return lm

    def prepare(self, params: GenerationParams, prompt_tokens: int = 2048) -> None:
        """Take the cache and record the decoding graph now rather than in the first answer."""
        if self.fast is not None:
            self.fast.prepare(params.sampling, prompt_tokens + params.max_new_tokens)

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
        if params.seed is not None:
            torch.manual_seed(params.seed)
        try:
            if self.fast is not None:
                self.fast.generate(
                    prompt_ids,
                    params.sampling,
                    params.max_new_tokens,
                    tokens.stop_ids,
                    on_token,
                    logits_processor,
                )
                return
            inputs = torch.tensor([list(prompt_ids)], device=self.device)
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
