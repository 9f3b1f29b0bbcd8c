"""The frozen front-end in PyTorch, for featurizing training audio on a GPU.

Inference runs the Whisper tiny.en encoder through CTranslate2 on the CPU
(`voicerag_cli/models/distilled/frontend.py`); training needs the same states for hundreds of thousands of
clips, which a batched GPU encoder computes in seconds. This module reads the encoder's weights
straight from the bundled CTranslate2 `model.bin` (so training and inference use one set of
weights) and reproduces faster-whisper's log-mel features and the encoder's arithmetic for a
padded batch exactly as if each clip were encoded on its own (masked convolutions and keys).
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import torch
from torch import nn
from training.speech.student import time_pool

N_FFT = 400
HOP = 160
_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_ct2_variables(model_bin: Path, prefix: str = "encoder/") -> dict[str, np.ndarray]:
    """The variables of a CTranslate2 model file whose names start with `prefix` (model spec v6)."""
    with open(model_bin, "rb") as f:

        def u32() -> int:
            return struct.unpack("<I", f.read(4))[0]

        def string() -> str:
            (n,) = struct.unpack("<H", f.read(2))
            return f.read(n)[:-1].decode()

        version = u32()
        if version < 5:
            raise ValueError(f"unsupported CTranslate2 model version {version} in {model_bin}")
        string()  # spec name
        u32()  # revision
        out: dict[str, np.ndarray] = {}
        for _ in range(u32()):
            name = string()
            rank = f.read(1)[0]
            shape = [u32() for _ in range(rank)]
            dtype = _CT2_DTYPES[f.read(1)[0]]
            nbytes = u32()
            if name.startswith(prefix):
                out[name] = np.frombuffer(f.read(nbytes), dtype=dtype).reshape(shape).copy()
            else:
                f.seek(nbytes, 1)
    return out


def mel_filters(n_mels: int = 80) -> np.ndarray:
    from faster_whisper.feature_extractor import FeatureExtractor

    return FeatureExtractor.get_mel_filters(16_000, N_FFT, n_mels).astype(np.float32)


class LogMel(nn.Module):
    """faster-whisper's log-mel (its 160-sample end padding, per-clip max - 8 floor) for a batch."""

    def __init__(self, filters: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("filters", torch.from_numpy(filters))
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True))

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """audio [B, S] zero-padded, lengths [B] samples -> mel [B, 80, F], frames [B] (even, <= 3000)."""
        padded = nn.functional.pad(audio, (0, HOP))
        spec = torch.stft(padded, N_FFT, HOP, window=self.window, center=True, pad_mode="reflect", return_complex=True)
        power = spec[..., :-1].abs() ** 2
        mel = torch.log10(torch.clamp(self.filters @ power, min=1e-10))
        # each clip as faster-whisper sees it alone: frames = (samples + 160) // 160
        frames = torch.clamp((lengths + HOP) // HOP, max=3000)
        frames = frames - frames % 2
        valid = torch.arange(mel.shape[-1], device=mel.device)[None, :] < frames[:, None]
        peak = torch.where(valid[:, None, :], mel, torch.full_like(mel, -1e9)).amax(dim=(1, 2), keepdim=True)
        mel = (torch.maximum(mel, peak - 8.0) + 4.0) / 4.0
        return mel * valid[:, None, :], frames


class WhisperEncoder(nn.Module):
    """Whisper's audio encoder (pre-norm transformer over two convolutions), CTranslate2 weights."""

    def __init__(self, variables: dict[str, np.ndarray]) -> None:
        super().__init__()
        v = {
            k.removeprefix("encoder/"): torch.from_numpy(np.asarray(a, dtype=np.float32)) for k, a in variables.items()
        }
        self.heads = int(variables["encoder/num_heads"]) if "encoder/num_heads" in variables else 6
        self.conv1 = nn.Conv1d(v["conv1/weight"].shape[1], v["conv1/weight"].shape[0], 3, padding=1)
        self.conv2 = nn.Conv1d(v["conv2/weight"].shape[0], v["conv2/weight"].shape[0], 3, stride=2, padding=1)
        for conv, name in ((self.conv1, "conv1"), (self.conv2, "conv2")):
            conv.weight.data.copy_(v[f"{name}/weight"])
            conv.bias.data.copy_(v[f"{name}/bias"])
        self.register_buffer("positions", v["position_encodings/encodings"])
        self.n_layers = sum(1 for k in v if k.endswith("self_attention/linear_0/weight"))
        self.params = nn.ParameterDict(
            {k.replace("/", "__"): nn.Parameter(t, requires_grad=False) for k, t in v.items() if k.startswith("layer")}
        )
        self.final_gamma = nn.Parameter(v["layer_norm/gamma"], requires_grad=False)
        self.final_beta = nn.Parameter(v["layer_norm/beta"], requires_grad=False)

    def _p(self, name: str) -> torch.Tensor:
        return self.params[name.replace("/", "__")]

    def forward(self, mel: torch.Tensor, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mel [B, 80, F] (zero beyond each clip's frames) -> states [B, F/2, 384], state counts [B]."""
        gelu = nn.functional.gelu
        x = gelu(self.conv1(mel))
        # zero past each clip's end: alone, the clip's conv2 would see zero padding there
        x = x * (torch.arange(x.shape[-1], device=x.device)[None, :] < frames[:, None])[:, None, :]
        x = gelu(self.conv2(x)).transpose(1, 2)
        counts = frames // 2
        t = x.shape[1]
        x = x + self.positions[:t]
        keep = torch.arange(t, device=x.device)[None, :] < counts[:, None]  # [B, T]
        mask = torch.zeros(keep.shape, dtype=x.dtype, device=x.device).masked_fill(~keep, float("-inf"))[
            :, None, None, :
        ]
        d = x.shape[-1]
        hd = d // self.heads
        for i in range(self.n_layers):
            p = f"layer_{i}/"
            h = nn.functional.layer_norm(
                x, (d,), self._p(p + "self_attention/layer_norm/gamma"), self._p(p + "self_attention/layer_norm/beta")
            )
            qkv = nn.functional.linear(
                h, self._p(p + "self_attention/linear_0/weight"), self._p(p + "self_attention/linear_0/bias")
            )
            q, k, val = (z.reshape(z.shape[0], t, self.heads, hd).transpose(1, 2) for z in qkv.split(d, dim=-1))
            attn = nn.functional.scaled_dot_product_attention(
                q, k, val, attn_mask=mask.to(q.dtype), scale=1.0 / math.sqrt(hd)
            )
            attn = attn.transpose(1, 2).reshape(x.shape[0], t, d)
            x = x + nn.functional.linear(
                attn, self._p(p + "self_attention/linear_1/weight"), self._p(p + "self_attention/linear_1/bias")
            )
            h = nn.functional.layer_norm(
                x, (d,), self._p(p + "ffn/layer_norm/gamma"), self._p(p + "ffn/layer_norm/beta")
            )
            h = gelu(nn.functional.linear(h, self._p(p + "ffn/linear_0/weight"), self._p(p + "ffn/linear_0/bias")))
            x = x + nn.functional.linear(h, self._p(p + "ffn/linear_1/weight"), self._p(p + "ffn/linear_1/bias"))
        x = nn.functional.layer_norm(x, (d,), self.final_gamma, self.final_beta)
        return x * keep[..., None], counts


def encoder_variables(encoder: WhisperEncoder) -> dict[str, np.ndarray]:
    """`encoder`'s weights under CTranslate2's names (float16): what `WhisperEncoder` loads."""
    out = {f"encoder/{k.replace('__', '/')}": p.detach() for k, p in encoder.params.items()}
    for name, conv in (("conv1", encoder.conv1), ("conv2", encoder.conv2)):
        out[f"encoder/{name}/weight"], out[f"encoder/{name}/bias"] = conv.weight.detach(), conv.bias.detach()
    out["encoder/layer_norm/gamma"], out["encoder/layer_norm/beta"] = (
        encoder.final_gamma.detach(),
        encoder.final_beta.detach(),
    )
    out["encoder/position_encodings/encodings"] = encoder.positions
    arrays = {k: v.float().cpu().numpy().astype(np.float16) for k, v in out.items()}
    arrays["encoder/num_heads"] = np.array(encoder.heads, dtype=np.int16)
    return arrays


class TunedEncoderHead(nn.Module):
    """The encoder's top `tune_layers` layers trained with the head (0: the encoder frozen, still
    run per batch): log-mel frames [B, F, 80] in, the head's unit vector out."""

    def __init__(self, encoder: WhisperEncoder, head: nn.Module, tune_layers: int) -> None:
        super().__init__()
        self.encoder, self.head, self.cfg = encoder, head, head.cfg
        first = encoder.n_layers - tune_layers
        for name, p in encoder.params.items():  # "layer_3__ffn__..." (and the final norm's copy, unused)
            layer = name.split("__")[0].removeprefix("layer_")
            p.requires_grad = layer.isdigit() and int(layer) >= first
        for p in (encoder.final_gamma, encoder.final_beta):
            p.requires_grad = tune_layers > 0
        for p in [*encoder.conv1.parameters(), *encoder.conv2.parameters()]:
            p.requires_grad = tune_layers > encoder.n_layers  # the convolutions only past every layer

    def encoder_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.encoder.parameters() if p.requires_grad]

    def forward(self, mel: torch.Tensor, mask: torch.Tensor, pooled: bool = True) -> torch.Tensor:
        states, counts = self.encoder(mel.transpose(1, 2), mask.sum(1))
        keep = torch.arange(states.shape[1], device=states.device)[None] < counts[:, None]
        x, pmask = time_pool(states, keep, self.head.cfg.pool)
        return self.head(x, pmask, pooled=True)
