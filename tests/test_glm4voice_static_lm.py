"""The native GLM runtime: the static-cache decoder against transformers' own forward pass and
`generate`, its sampler's distribution, and loading the published ChatGLM layout without running
any shipped code. (The CUDA graph around the same step is checked on a GPU by
benchmarks/glm4voice_gpu.py, which compares graphed and eager answers token for token.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import GlmForCausalLM

from tiny_glm4voice import write_chatglm_lm, write_interleaved_lm
from voicerag_cli.errors import ModelError
from voicerag_cli.models.glm4voice.lm import GenerationParams, InterleavedLM, resolve_sampling
from voicerag_cli.models.glm4voice.protocol import TokenMap
from voicerag_cli.models.glm4voice.static_lm import SamplingParams, StaticGlmDecoder, filtered, sample

AUDIO = 64
# Larger than transformers' default init, so attention is sharp and a wrong rotary angle, mask or
# cache slot changes the logits far beyond float rounding.
SHARP = {"initializer_range": 0.3}


@pytest.fixture(scope="module")
def native_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_interleaved_lm(tmp_path_factory.mktemp("glm"), AUDIO, seed=3, **SHARP)


@pytest.fixture(scope="module")
def model(native_dir: Path) -> GlmForCausalLM:
    return GlmForCausalLM.from_pretrained(str(native_dir)).eval()


def test_prefill_and_each_step_match_the_transformers_forward(model: GlmForCausalLM) -> None:
    ids = torch.randint(0, 400, (1, 40), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = model(ids).logits[0]
        decoder = StaticGlmDecoder(model, "cpu")
        decoder.reserve(48)
        assert decoder.capacity == 1024 and decoder.keys.shape == (2, 1, 2, 1024, 8)
        first = decoder.logits(ids[:, :25], decoder.slots[:25])[0]
        steps = [decoder.logits(ids[:, i : i + 1], decoder.slots[i : i + 1])[0] for i in range(25, 40)]
    assert reference.std() > 0.5  # sharp enough for the comparison to mean something
    assert torch.allclose(first, reference[24], atol=1e-5)
    for position, logits in zip(range(25, 40), steps, strict=True):
        assert torch.allclose(logits, reference[position], atol=1e-5), position
    # A cache slot off by one is not a rounding error: the comparison can fail.
    with torch.no_grad():
        shifted = decoder.logits(ids[:, 39:40], decoder.slots[40:41])[0]
    assert not torch.allclose(shifted, reference[39], atol=1e-3)
    # q, k and v became views of one fused weight: the model's own forward pass is unchanged.
    attention = model.model.layers[0].self_attn
    assert attention.k_proj.weight.data_ptr() == decoder.layers[0].qkv[attention.q_proj.weight.shape[0] :].data_ptr()
    with torch.no_grad():
        assert torch.equal(model(ids).logits[0], reference)


@pytest.mark.slow
def test_compiled_step_gives_the_same_answer(native_dir: Path) -> None:
    """torch.compile of the one-token forward (on CUDA it is then graphed) changes no token."""
    answers = []
    for compile in (False, True):
        model = GlmForCausalLM.from_pretrained(str(native_dir)).eval()
        decoder = StaticGlmDecoder(model, "cpu", compile=compile)
        assert decoder.compiled == compile
        ids: list[int] = []
        decoder.generate(list(range(5, 30)), SamplingParams(0.0, 1.0), 24, (), ids.append)
        answers.append(ids)
    assert answers[0] == answers[1] and len(answers[0]) == 24


def test_greedy_answers_equal_transformers_generate(native_dir: Path) -> None:
    lm = InterleavedLM.load(native_dir, trust_remote_code=False, device="cpu")
    assert lm.fast is not None  # native weights take the static-cache path
    tokens = TokenMap.from_tokenizer(lm.tokenizer, AUDIO)
    prompt = lm.tokenizer.encode("[gMASK]<sop><|user|>\nWho introduced the safety bicycle?<|assistant|>")
    params = GenerationParams(temperature=0.0, max_new_tokens=40)
    fast: list[int] = []
    lm.run(prompt, tokens, params, fast.append)
    decoder, lm.fast = lm.fast, None  # the same model through transformers' generate
    slow: list[int] = []
    lm.run(prompt, tokens, params, slow.append)
    lm.fast = decoder
    assert fast == slow and len(fast) >= 5
    again: list[int] = []
    lm.run(prompt, tokens, params, again.append)  # the reused cache holds nothing of the last answer
    assert again == fast


def test_sampler_follows_temperature_and_nucleus() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0, -3.0]])
    torch.manual_seed(0)
    draws = torch.stack([sample(logits, SamplingParams(0.7, 1.0)) for _ in range(20_000)]).flatten()
    expected = (logits[0] / 0.7).softmax(-1)
    observed = torch.bincount(draws, minlength=5).float() / len(draws)
    assert torch.allclose(observed, expected, atol=0.01)
    # top_p 0.8 keeps the smallest set of most likely tokens holding 80 %: here the first two.
    probs = logits[0].softmax(-1)
    assert probs[0] < 0.8 <= probs[:2].sum()
    kept = {int(sample(logits, SamplingParams(1.0, 0.8))) for _ in range(2_000)}
    assert kept == {0, 1}
    assert int(sample(logits, SamplingParams(0.0, 0.8))) == 0


@pytest.mark.parametrize(
    ("temperature", "top_k", "top_p"), [(0.2, 50, 0.8), (0.7, 3, 1.0), (1.0, 0, 0.5), (1.3, 10, 0.9), (0.5, 1, 0.8)]
)
def test_sampling_distribution_equals_transformers_generate_warpers(
    temperature: float, top_k: int, top_p: float
) -> None:
    """The distribution `sample` draws from is the one transformers' `generate` samples from
    (upstream's path: temperature, top-k, top-p warpers in that order, then softmax)."""
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    logits = torch.randn(1, 300, generator=torch.Generator().manual_seed(top_k)) * 3
    warpers = LogitsProcessorList([TemperatureLogitsWarper(temperature)])
    if top_k:
        warpers.append(TopKLogitsWarper(top_k))
    warpers.append(TopPLogitsWarper(top_p))
    reference = warpers(torch.zeros(1, 1, dtype=torch.long), logits.clone()).softmax(-1)[0]
    probs, order = filtered(logits, SamplingParams(temperature, top_p, top_k))
    mine = torch.zeros(300).scatter(0, order[0], probs[0])
    mine = mine / mine.sum()
    assert torch.equal(mine > 0, reference > 0)  # the same tokens kept
    assert torch.allclose(mine, reference, atol=1e-6)
    if top_k:
        assert int((mine > 0).sum()) <= top_k
    if top_k == 1:  # top-1 sampling is greedy
        assert {int(sample(logits, SamplingParams(temperature, top_p, 1))) for _ in range(50)} == {int(logits.argmax())}


def test_top_k_follows_the_snapshots_generation_config(native_dir: Path, tmp_path: Path) -> None:
    """`glm4voice.top_k = -1` (default) takes top_k from generation_config.json as upstream's
    `generate` does (transformers' 50 when the file names none); no file: no top-k; 0 or n > 0
    override it."""
    base = GenerationParams(temperature=0.2, top_p=0.8)
    folder = tmp_path / "snapshot"
    folder.mkdir()
    for item in native_dir.iterdir():
        if item.name != "generation_config.json":
            (folder / item.name).write_bytes(item.read_bytes())
    lm = InterleavedLM.load(folder, trust_remote_code=False, device="cpu")
    assert lm.snapshot_top_k is None
    assert resolve_sampling(base, -1, lm.snapshot_top_k).top_k == 0
    # transformers' save_pretrained wrote a generation_config.json without top_k: its default applies
    assert InterleavedLM.load(native_dir, trust_remote_code=False, device="cpu").snapshot_top_k == 50
    for data, top_k in (({"do_sample": True, "top_k": 7}, 7), ({"do_sample": True}, 50), ({"top_k": None}, 0)):
        (folder / "generation_config.json").write_text(json.dumps(data))
        snapshot = InterleavedLM.load(folder, trust_remote_code=False, device="cpu").snapshot_top_k
        assert resolve_sampling(base, -1, snapshot).top_k == top_k, data
        assert resolve_sampling(base, 0, snapshot).top_k == 0
        assert resolve_sampling(base, 5, snapshot).sampling == SamplingParams(0.2, 0.8, 5)
    (folder / "generation_config.json").write_text(json.dumps({"do_sample": True, "top_k": "many"}))
    with pytest.raises(ModelError, match="top_k"):
        InterleavedLM.load(folder, trust_remote_code=False, device="cpu")
    # An answer sampled at top_k 1 is the greedy answer, whatever the temperature.
    tokens = TokenMap.from_tokenizer(lm.tokenizer, AUDIO)
    prompt = lm.tokenizer.encode("[gMASK]<sop><|user|>\nWho introduced the safety bicycle?<|assistant|>")
    greedy: list[int] = []
    lm.run(prompt, tokens, GenerationParams(temperature=0.0, max_new_tokens=12), greedy.append)
    top1: list[int] = []
    lm.run(
        prompt, tokens, GenerationParams(temperature=1.5, top_p=1.0, top_k=1, max_new_tokens=12, seed=3), top1.append
    )
    assert top1 == greedy


def test_published_chatglm_layout_loads_natively_without_its_code(tmp_path: Path) -> None:
    folder, native = write_chatglm_lm(tmp_path / "glm-4-voice-9b", AUDIO, seed=5, **SHARP)
    assert not (folder / "modeling_chatglm.py").exists()  # named in auto_map, never needed
    lm = InterleavedLM.load(folder, trust_remote_code=False, device="cpu")
    ids = torch.randint(0, 400, (1, 24), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(lm.model(ids).logits, native(ids).logits)
    assert lm.fast is not None
    # The remote runtime would run upstream's code, which is not there and not opted into.
    with pytest.raises(ModelError, match="ships its own model and tokenizer code"):
        InterleavedLM.load(folder, trust_remote_code=False, device="cpu", runtime="remote")


def edit_config(folder: Path, **changes: object) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | changes))


def test_chatglm_variants_that_are_not_this_network_are_refused(tmp_path: Path) -> None:
    folder, _ = write_chatglm_lm(tmp_path / "lm", AUDIO)
    edit_config(folder, rmsnorm=False)  # LayerNorm blocks: a different network
    with pytest.raises(ModelError, match="rmsnorm = false"):
        InterleavedLM.load(folder, trust_remote_code=False, device="cpu")
    edit_config(folder, rmsnorm=True, num_attention_heads=2)  # fused qkv no longer splits
    with pytest.raises(ModelError, match=r"query_key_value\.\w+ has 64 rows, expected 48"):
        InterleavedLM.load(folder, trust_remote_code=False, device="cpu")
    edit_config(folder, num_attention_heads=4)
    shard = sorted(folder.glob("*.safetensors"))[-1]
    shard.unlink()  # half the tensors gone
    with pytest.raises(ModelError, match="lacks"):
        InterleavedLM.load(folder, trust_remote_code=False, device="cpu")


def test_tokenizer_code_still_needs_the_opt_in(native_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "lm"
    folder.mkdir()
    for item in native_dir.iterdir():
        (folder / item.name).write_bytes(item.read_bytes())
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    tokenizer_config["auto_map"] = {"AutoTokenizer": ["tokenization_chatglm.ChatGLM4Tokenizer", None]}
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    with pytest.raises(ModelError, match="ships its own tokenizer code"):
        InterleavedLM.load(folder, trust_remote_code=False, device="cpu")
    edit_config(folder, model_type="llama")
    with pytest.raises(ModelError, match="lm_runtime"):
        InterleavedLM.load(folder, trust_remote_code=True, device="cpu")
