"""GLM-4-Voice LM conversion parity with the official ChatGLM code, on every run.

tests/fixtures/parity/lm/ holds two tiny random-weight ChatGLM snapshots written by the official
`modeling_chatglm.py` (`save_pretrained`: `transformer.*` names, fused q/k/v, `model_type =
"chatglm"`) and what that code computed from them: the logits of a prompt, the logits of its
KV-cache path (prefill, then one token per call) and its greedy `generate` answer (written by
scripts/make_lm_fixtures.py, which runs the official files in a scratch environment). Here they go
through voicerag's converting loader and its static-cache decoder, which never run that code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from voicerag_cli.models.glm4voice.chatglm_weights import glm_config, load_chatglm, native_tensors
from voicerag_cli.models.glm4voice.static_lm import SamplingParams, StaticGlmDecoder

FIXTURES = Path(__file__).parent / "fixtures" / "parity" / "lm"
VARIANTS = ("published", "multi_head")

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    return json.loads((FIXTURES / "lm_reference.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def cases() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "lm_cases.npz") as data:
        return dict(data)


def load(variant: str) -> Any:
    folder = FIXTURES / variant
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    return load_chatglm(folder, config, "cpu", torch.float32)


@pytest.mark.parametrize("variant", VARIANTS)
def test_converted_logits_equal_the_official_chatglm_forward(variant: str, cases: dict[str, np.ndarray]) -> None:
    """Every position's logits: the published settings (multi-query attention, q/k/v bias,
    original_rope) and full multi-head attention (q/k/v interleaved per head) with rope_ratio 500
    and original_rope off."""
    model = load(variant)
    prompt = torch.from_numpy(cases[f"{variant}_prompt"])[None]
    expected = torch.from_numpy(cases[f"{variant}_logits"])
    assert expected.std() > 1.0  # spread enough that a wrong rotary or head order shows
    with torch.no_grad():
        logits = model(prompt).logits[0]
    assert logits.shape == expected.shape
    assert (logits - expected).abs().max() < 1e-4


@pytest.mark.parametrize("variant", VARIANTS)
def test_static_decoder_equals_the_official_cache_path_and_greedy_generate(
    variant: str, reference: dict[str, Any], cases: dict[str, np.ndarray]
) -> None:
    """The decoder voicerag answers with: its prefill and one-token steps against the official
    `past_key_values` path, and its greedy answer against the official `generate`."""
    decoder = StaticGlmDecoder(load(variant), "cpu")
    prompt = torch.from_numpy(cases[f"{variant}_prompt"])[None]
    prefill = reference["prefill"]
    expected = torch.from_numpy(cases[f"{variant}_cached_logits"])
    with torch.no_grad():
        decoder.reserve(prompt.shape[1] + 1)
        logits = [decoder.logits(prompt[:, :prefill], decoder.slots[:prefill])[0]]
        for i in range(prefill, prompt.shape[1]):
            logits.append(decoder.logits(prompt[:, i : i + 1], decoder.slots[i : i + 1])[0])
    assert (torch.stack(logits) - expected).abs().max() < 1e-4
    answer: list[int] = []
    decoder.generate(prompt[0].tolist(), SamplingParams(0.0, 1.0), len(reference[variant]["greedy"]), (), answer.append)
    assert answer == reference[variant]["greedy"]


def test_the_comparison_sees_a_wrong_qkv_layout(cases: dict[str, np.ndarray]) -> None:
    """Reading the multi-head checkpoint's fused rows as three stacked blocks (the multi-query
    layout) is not a rounding difference: the parity test above would fail."""
    from safetensors.torch import load_file
    from transformers import GlmForCausalLM

    folder = FIXTURES / "multi_head"
    native = glm_config(json.loads((folder / "config.json").read_text(encoding="utf-8")))
    state = {
        key: tensor
        for name, value in load_file(str(folder / "model.safetensors")).items()
        for key, tensor in native_tensors(name, value, native, multi_query=True)
    }
    model = GlmForCausalLM(native).eval()
    model.load_state_dict(state, strict=True)
    prompt = torch.from_numpy(cases["multi_head_prompt"])[None]
    with torch.no_grad():
        wrong = model(prompt).logits[0]
    assert (wrong - torch.from_numpy(cases["multi_head_logits"])).abs().max() > 1.0
