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


@pytest.mark.parametrize("attention", ["", "_eager"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_converted_logits_equal_the_official_chatglm_forward(
    variant: str, attention: str, cases: dict[str, np.ndarray]
) -> None:
    """Every position's logits: the published settings (multi-query attention, q/k/v bias,
    original_rope) and full multi-head attention (q/k/v interleaved per head) with rope_ratio 500
    and original_rope off; the official code under its default SdpaAttention and its CoreAttention
    (`_eager`: its own masks and layer-number scaling)."""
    model = load(variant)
    prompt = torch.from_numpy(cases[f"{variant}_prompt"])[None]
    expected = torch.from_numpy(cases[f"{variant}{attention}_logits"])
    assert expected.std() > 1.0  # spread enough that a wrong rotary or head order shows
    with torch.no_grad():
        logits = model(prompt).logits[0]
    assert logits.shape == expected.shape
    assert (logits - expected).abs().max() < 1e-4
    steps = torch.from_numpy(cases[f"{variant}{attention}_cached_logits"])  # its past_key_values path
    assert (logits[-steps.shape[0] :] - steps).abs().max() < 1e-4


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


# --- tokenizer and prompt ids ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from voicerag_cli.models.glm4voice.glm_tokenizer import is_glm4_tokenizer, load_glm4_tokenizer

    assert is_glm4_tokenizer(FIXTURES / "published")  # tokenizer.model + the class upstream names
    return load_glm4_tokenizer(FIXTURES / "published")


def test_prompt_ids_equal_the_official_tokenizer_on_the_official_prompts(
    tokenizer: Any, reference: dict[str, Any]
) -> None:
    """web_demo.py's prompts (first turn, second turn with the whole first exchange, text turn),
    encoded as model_server.py does (`tokenizer([prompt])`: `[gMASK]<sop>` first), equal voicerag's
    `encode_prompt` through its native reading of the tokenizer files, id for id."""
    from voicerag_cli.models.glm4voice.protocol import TokenMap, encode_prompt

    prompts = json.loads((FIXTURES.parent / "glm4voice_reference.json").read_text(encoding="utf-8"))["prompt"]
    official = reference["tokenizer"]
    assert len(tokenizer) == official["vocab_size"]
    tokens = TokenMap.from_tokenizer(tokenizer)
    for token, token_id in official["special_ids"].items():
        assert tokenizer.convert_tokens_to_ids(token) == token_id, token
    for turn, expected in official["prompt_ids"].items():
        ids = encode_prompt(tokenizer, tokens, prompts[turn])
        assert ids == expected, turn
        assert ids[:2] == [official["special_ids"]["[gMASK]"], official["special_ids"]["<sop>"]]
    assert len(official["prompt_ids"]["second_turn"]) > len(official["prompt_ids"]["first_turn"]) + 20


def test_text_ids_and_history_decoding_equal_the_official_tokenizer(tokenizer: Any, reference: dict[str, Any]) -> None:
    """Whitespace runs, digits, contractions, Chinese, accents, emoji, code and inline special
    tokens encode to the official ids; an interleaved completion decodes to the string web_demo.py
    keeps as history (`spaces_between_special_tokens=False`)."""
    official = reference["tokenizer"]
    pairs = list(zip(official["texts"], official["text_ids"], strict=True))
    for text, expected in pairs:
        assert tokenizer.encode(text, add_special_tokens=False) == expected, text
    assert any(len(ids) < len(text.encode()) / 2 for text, ids in pairs)  # merges are used, not bytes
    decoded = tokenizer.decode(official["completion_ids"], spaces_between_special_tokens=False)
    assert decoded == official["completion_text"] and "<|audio_63|>" in decoded


def test_whole_snapshot_answers_the_official_prompts_as_the_official_generate(reference: dict[str, Any]) -> None:
    """The published-layout folder (ChatGLM weights, tiktoken tokenizer files, the code named in
    auto_map but absent) loads through `InterleavedLM.load` without the remote-code opt-in; the
    official prompts' greedy answers equal the official model's `generate`, stop id included."""
    from voicerag_cli.models.glm4voice.lm import GenerationParams, InterleavedLM
    from voicerag_cli.models.glm4voice.protocol import TokenMap

    folder = FIXTURES / "published"
    assert not list(folder.glob("*.py"))
    lm = InterleavedLM.load(folder, trust_remote_code=False, device="cpu")
    tokens = TokenMap.from_tokenizer(lm.tokenizer, 64)
    assert lm.fast is not None and tokens.stop_ids
    for turn, expected in reference["published"]["prompt_answers"].items():
        answer: list[int] = []
        ids = reference["tokenizer"]["prompt_ids"][turn]
        lm.run(ids, tokens, GenerationParams(temperature=0.0, max_new_tokens=len(expected)), answer.append)
        assert answer == expected, turn


def test_older_tokenizer_configs_and_broken_files(tmp_path: Path, tokenizer: Any) -> None:
    """A config without the 14 special tokens (older GLM-4 code fixes them in code, numbered from
    the end of the ranks) gets them at the same ids; speech tokens numbered after a gap (as
    third-party code places GLM-4-Voice's) keep their ids; an added token inside the ranks and a
    damaged vocabulary file are one-line model errors."""
    from voicerag_cli.errors import ModelError
    from voicerag_cli.models.glm4voice.glm_tokenizer import BUILT_IN_SPECIALS, load_glm4_tokenizer
    from voicerag_cli.models.glm4voice.protocol import TokenMap

    source = FIXTURES / "published"
    config = json.loads((source / "tokenizer_config.json").read_text(encoding="utf-8"))
    folder = tmp_path / "older"
    folder.mkdir()
    (folder / "tokenizer.model").write_bytes((source / "tokenizer.model").read_bytes())
    added = config["added_tokens_decoder"]
    older = {i: e for i, e in added.items() if e["content"] not in BUILT_IN_SPECIALS}
    (folder / "tokenizer_config.json").write_text(json.dumps(config | {"added_tokens_decoder": older}))
    rebuilt = load_glm4_tokenizer(folder)
    assert len(rebuilt) == len(tokenizer)
    for token in (*BUILT_IN_SPECIALS, "<|begin_of_audio|>", "<|audio_63|>"):
        assert rebuilt.convert_tokens_to_ids(token) == tokenizer.convert_tokens_to_ids(token), token
    gap = {str(int(i) + 100) if e["content"].startswith("<|audio_") else i: e for i, e in added.items()}
    (folder / "tokenizer_config.json").write_text(json.dumps(config | {"added_tokens_decoder": gap}))
    spaced = load_glm4_tokenizer(folder)
    offset = tokenizer.convert_tokens_to_ids("<|audio_0|>") + 100
    assert spaced.convert_tokens_to_ids("<|audio_63|>") == offset + 63
    assert TokenMap.from_tokenizer(spaced).audio_offset == offset
    text = "It<|begin_of_audio|><|audio_3|><|audio_63|><|end_of_audio|>"
    ids = spaced.encode(text, add_special_tokens=False)
    assert ids[-3:-1] == [offset + 3, offset + 63] and spaced.decode(ids) == text
    inside = dict(added) | {"3": {"content": "<|extra|>", "special": True}}
    (folder / "tokenizer_config.json").write_text(json.dumps(config | {"added_tokens_decoder": inside}))
    with pytest.raises(ModelError, match="inside the"):
        load_glm4_tokenizer(folder)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    (folder / "tokenizer.model").write_text("not-base64! 0\n")
    with pytest.raises(ModelError, match="line 1 is not 'base64 rank'"):
        load_glm4_tokenizer(folder)
