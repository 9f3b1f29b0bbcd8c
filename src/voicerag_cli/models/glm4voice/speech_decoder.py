"""The GLM-4-Voice speech decoder (flow matching + HiFT) loaded from the public
`glm-4-voice-decoder` folder, decoding whole answers or streaming them block by block.

Streaming has two stages, each with its own overlap:

1. tokens -> mel: every new block is decoded with all earlier tokens as context and the mel
   already decided as the flow's prompt (upstream's scheme). The mel of the last `hold_tokens`
   tokens is held back, regenerated with the next block (which gives it right context), and the
   regenerated frames are cross-faded in from the held version, which was generated in one pass
   with the mel before it and so joins it smoothly.
2. mel -> audio: the vocoder runs on a window reaching `context_frames` back into decided mel,
   and the last `hold_frames` of audio wait for the next mel. With both at least the vocoder's
   receptive field, and the excitation source continued exactly (see `hift.py`), the streamed
   audio equals whole-utterance vocoding of the same mel up to float rounding."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from voicerag_cli.errors import ModelError
from voicerag_cli.models.glm4voice.checkpoint import load_strict, require_dir
from voicerag_cli.models.glm4voice.decoder_config import WHAT, DecoderConfig, read_decoder_config
from voicerag_cli.models.glm4voice.flow import FlowDecoder
from voicerag_cli.models.glm4voice.hift import HiFTGenerator, SourceState, fold_weight_norm

F0_CONTEXT = 8  # frames of left context for the F0 predictor (five kernel-3 convolutions need 5)


PICKLE_KEY = "glm4voice.allow_pickle"


def _tensors_only(state: object, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{WHAT}: {path} is not a plain state dict of tensors")
    return state


def read_state_dict(folder: Path, stem: str, allow_pickle: bool = False) -> dict[str, torch.Tensor]:
    """`stem.safetensors` if present, else upstream's `stem.pt` read with `weights_only=True`
    (tensors and plain containers only). A file holding more (objects a full unpickle would
    build, which can run code) is refused with a message naming the opt-in; with `allow_pickle`
    it is unpickled fully, and still only a mapping of names to tensors is accepted."""
    safetensors_path, pickle_path = folder / f"{stem}.safetensors", folder / f"{stem}.pt"
    try:
        if safetensors_path.is_file():
            from safetensors.torch import load_file

            return load_file(str(safetensors_path), device="cpu")
        if not pickle_path.is_file():
            raise ModelError(f"{WHAT}: missing {stem}.pt (or {stem}.safetensors) in {folder}")
        try:
            return _tensors_only(torch.load(str(pickle_path), map_location="cpu", weights_only=True), pickle_path)
        except pickle.UnpicklingError as exc:  # what weights_only raises for anything beyond tensors
            if not allow_pickle:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise ModelError(
                    f"{WHAT}: {pickle_path} holds more than tensors, so it was not unpickled ({reason}); "
                    f"convert it to {stem}.safetensors, or if you trust the file set config key "
                    f"'{PICKLE_KEY}' = true (a full unpickle can run code)"
                ) from exc
        return _tensors_only(torch.load(str(pickle_path), map_location="cpu", weights_only=False), pickle_path)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, AttributeError, ImportError) as exc:
        raise ModelError(f"{WHAT}: cannot read {stem} weights in {folder}: {str(exc).splitlines()[0]}") from exc


class SpeechDecoder:
    def __init__(
        self,
        config: DecoderConfig,
        flow: FlowDecoder,
        hift: HiFTGenerator,
        device: str = "cpu",
        hold_tokens: int = 3,
        context_frames: int = 32,
        hold_frames: int = 16,
    ) -> None:
        self.config = config
        # Inference only: no parameter needs autograd, whichever grad mode the caller is in.
        self.flow = flow.eval().requires_grad_(False).to(device)
        self.hift = hift.eval().requires_grad_(False).to(device)
        self.device = device
        self.hold_tokens = hold_tokens
        self.context_frames = context_frames
        self.hold_frames = hold_frames

    @classmethod
    def load(
        cls,
        folder: str | Path,
        device: str = "cpu",
        config_key: str = "glm4voice.decoder_path",
        allow_pickle: bool = False,
    ) -> SpeechDecoder:
        root = require_dir(folder, WHAT, config_key)
        config_path = root / "config.yaml"
        if not config_path.is_file():
            raise ModelError(f"{WHAT}: missing config.yaml in {root}")
        config = read_decoder_config(config_path)
        flow, hift = FlowDecoder(config.flow), HiFTGenerator(config.hift)
        load_strict(flow, read_state_dict(root, "flow", allow_pickle), f"{WHAT} flow")
        load_strict(hift, fold_weight_norm(read_state_dict(root, "hift", allow_pickle)), f"{WHAT} HiFT")
        return cls(config, flow, hift, device)

    def prepare(self, first_block: int, compile: bool = False) -> None:
        """On CUDA, record the first block's flow solve as a graph (see `flow.py`), compiled first
        with `compile`. (The vocoder is not graphed: its inverse STFT synchronises with the host.)"""
        self.flow.capture_first_block(first_block, compile)

    @property
    def sample_rate(self) -> int:
        return self.config.hift.sample_rate

    def _tokens(self, tokens: list[int]) -> torch.Tensor:
        return torch.tensor([tokens], dtype=torch.long, device=self.device)

    @torch.inference_mode()
    def decode_mel(self, tokens: list[int]) -> torch.Tensor:
        return self.flow.inference(self._tokens(tokens))

    @torch.inference_mode()
    def decode(self, tokens: list[int]) -> np.ndarray:
        """The whole answer at once: float32 audio at `sample_rate`."""
        if not tokens:
            return np.zeros(0, dtype=np.float32)
        return self.hift.inference(self.decode_mel(tokens))[0].float().cpu().numpy()

    def stream(self) -> DecoderStream:
        return DecoderStream(self)


def _fade(length: int, device: torch.device) -> torch.Tensor:
    """Raised-cosine fade-in weights 0 -> 1 over `length` frames (excluding both ends)."""
    position = (torch.arange(length, device=device, dtype=torch.float32) + 1) / (length + 1)
    return 0.5 - 0.5 * torch.cos(torch.pi * position)


@dataclass
class DecoderStream:
    """One answer being decoded: `push` speech tokens as they arrive, get the audio that is final."""

    decoder: SpeechDecoder
    tokens: list[int] = field(default_factory=list)
    decided_tokens: int = 0
    mel: torch.Tensor | None = None  # decided mel [1, 80, frames]
    held: torch.Tensor | None = None  # mel generated past the decided part, awaiting right context
    audio_frames: int = 0  # mel frames already turned into returned audio
    source: SourceState | None = None  # excitation state at frame window_start
    window_start: int = 0
    finished: bool = False

    @torch.inference_mode()
    def push(self, tokens: list[int], final: bool = False) -> np.ndarray:
        if self.finished:
            raise RuntimeError("push after the final block")
        self.finished = final
        self.tokens.extend(tokens)
        self._decide_mel(final)
        return self._vocode(final)

    def _decide_mel(self, final: bool) -> None:
        decoder, flow_config = self.decoder, self.decoder.config.flow
        total = len(self.tokens)
        decide = total if final else max(self.decided_tokens, total - decoder.hold_tokens)
        if not total or (decide == self.decided_tokens and not final):
            return
        new = decoder.flow.inference(decoder._tokens(self.tokens), prompt_mel=self.mel)
        count = flow_config.frames(decide) - (0 if self.mel is None else self.mel.shape[-1])
        decided = new[:, :, :count].clone()
        if self.held is not None:
            overlap = min(self.held.shape[-1], decided.shape[-1])
            weights = _fade(overlap, decided.device)
            decided[:, :, :overlap] = weights * decided[:, :, :overlap] + (1 - weights) * self.held[:, :, :overlap]
        self.held = None if final else new[:, :, count:]
        self.mel = decided if self.mel is None else torch.cat([self.mel, decided], dim=-1)
        self.decided_tokens = decide

    def _vocode(self, final: bool) -> np.ndarray:
        decoder, hift = self.decoder, self.decoder.hift
        if self.mel is None:
            return np.zeros(0, dtype=np.float32)
        frames = self.mel.shape[-1]
        end = frames if final else max(self.audio_frames, frames - decoder.hold_frames)
        if end <= self.audio_frames:
            return np.zeros(0, dtype=np.float32)
        start = self.window_start
        f0_start = max(0, start - F0_CONTEXT)
        f0 = hift.f0_predictor(self.mel[:, :, f0_start:frames])[0, start - f0_start :]
        state = self.source or hift.start()
        source, _ = hift.source(f0, state)
        audio = hift.vocode(self.mel[:, :, start:frames], source)[0]
        per_frame = hift.config.samples_per_frame
        chunk = audio[(self.audio_frames - start) * per_frame : (end - start) * per_frame]
        # The next window starts `context_frames` before the new end; carry the source state there.
        next_start = max(0, end - decoder.context_frames)
        _, self.source = hift.source(f0[: next_start - start], state)
        self.window_start, self.audio_frames = next_start, end
        return chunk.float().cpu().numpy()
