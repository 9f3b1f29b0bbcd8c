"""The shipped speech head's numpy inference against the torch module it was trained as."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from voicerag_cli.models.distilled import head as speech_head
from voicerag_cli.models.distilled.head import NumpySpeechHead, pool_states, read_head_file
from voicerag_cli.models.distilled.paths import head_path


def _torch_head(head: speech_head.HeadFile) -> Any:
    import torch
    from training.speech.student import HeadConfig, SpeechHead

    model = SpeechHead(HeadConfig(**head.config)).eval()  # type: ignore[arg-type]
    model.load_state_dict({name: torch.from_numpy(t) for name, t in head.tensors.items()}, strict=True)
    return model


@pytest.mark.parametrize("frames", [37, 40, 181])  # 37 and 181: the last pooling group is short
def test_numpy_head_equals_the_torch_head(frames: int) -> None:
    import torch

    head = read_head_file(head_path())
    states = np.random.default_rng(frames).standard_normal((frames, 384)).astype(np.float32)
    with torch.no_grad():
        expected = _torch_head(head)(torch.from_numpy(states)[None], torch.ones(1, frames, dtype=torch.bool))[0]
    got = NumpySpeechHead(head)(states)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected.numpy(), atol=2e-5)


def test_numpy_head_computes_in_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    """A float64 operand anywhere (an integer count, a numpy float64 scalar) silently promotes the
    rest of the head to float64, which made it ~3x slower: every layer's input must stay float32."""
    seen: list[tuple[str, np.dtype]] = []
    linear = NumpySpeechHead._linear

    def recording(self: NumpySpeechHead, x: np.ndarray, name: str) -> np.ndarray:
        seen.append((name, x.dtype))
        return linear(self, x, name)

    monkeypatch.setattr(NumpySpeechHead, "_linear", recording)
    NumpySpeechHead(read_head_file(head_path()))(np.ones((41, 384), dtype=np.float32))
    assert seen and all(dtype == np.float32 for _, dtype in seen), seen


def test_pool_states_averages_groups_and_the_short_tail() -> None:
    states = np.arange(10, dtype=np.float32).reshape(5, 2)  # rows (0,1) (2,3) (4,5) (6,7) (8,9)
    pooled = pool_states(states, 2)
    assert pooled.dtype == np.float32
    np.testing.assert_array_equal(pooled, [[1, 2], [5, 6], [8, 9]])
