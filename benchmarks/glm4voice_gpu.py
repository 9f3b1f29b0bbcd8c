"""GPU benchmark of the `glm4voice` generator at the published sizes, with random weights.

Builds the three parts at their real shapes: the speech tokenizer (Whisper-large-v3 encoder,
16 layers to the quantizer, 16384 codes), the LM (GLM-4-9B shape: 40 layers, 4096 wide, 32
heads / 2 KV groups, vocabulary 168960, bf16) and the decoder (flow matching 111M + HiFT 21M
parameters, fp32), then answers a 3 s question over five retrieved passages through the real
`Glm4VoiceGenerator` streaming path. A logits processor makes the random LM answer in
GLM-4-Voice's shape (13 text tokens, 26 speech tokens, repeated), so the token timing is that
of a real answer; what the tokens say is meaningless.

The LM runs as the generator runs it: the native runtime's static KV cache with each decoding
step compiled (torch.compile) and replayed from a CUDA graph (`static_lm.py`), and the first
block's flow solve compiled and graphed too. Baselines in the same process: the same static
decoder graphed but not compiled, and eager; the decoder's first block graphed but not
compiled, and eager.

Reported (medians over repetitions after a warm-up):
- first audio: from the start of generation (retrieval done) to the first decoded audio chunk,
  including tokenizing the question, the prompt prefill and 13 text + `first_block` speech tokens;
  the logits processor that shapes the random answer runs outside the graph there (an extra
  ~15 small kernels per token that a real answer does not pay). Measured twice: with the
  five 120-word passages through the test tokenizer (~1.6 characters a token, so the prompt is
  ~2.5x longer than GLM-4's tokenizer makes it: an upper bound), and with a context cut to the
  token count the real tokenizer would give (~4 characters a token);
- LM prefill and ms/token alone: compiled + graphed, graphed, eager (sampling inside the graph),
  and whether greedy answers graphed and eager are the same tokens;
- decoder real-time factor (decode time / audio duration), whole-answer and streamed, and the
  first block's decode time compiled + graphed, graphed, eager;
- streamed vocoding vs whole-utterance vocoding (max abs difference), at the real size.

Usage (on a CUDA machine, from the repository root):
    PYTHONPATH=src python benchmarks/glm4voice_gpu.py --out results.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests")]  # tests/tiny_glm4voice.py writes the checkpoints

from tiny_glm4voice import (  # noqa: E402
    REAL_DECODER_SIZES,
    TINY_DECODER_SIZES,
    InterleavePattern,
    glm_config,
    write_speech_decoder,
    write_speech_tokenizer,
    write_tokenizer,
)
from voicerag_cli.models.base import Passage, Query  # noqa: E402
from voicerag_cli.models.glm4voice.backend import Glm4VoiceGenerator  # noqa: E402
from voicerag_cli.models.glm4voice.lm import GenerationParams, InterleavedLM  # noqa: E402
from voicerag_cli.models.glm4voice.protocol import TokenMap, build_prompt, encode_prompt  # noqa: E402
from voicerag_cli.models.glm4voice.speech_decoder import SpeechDecoder  # noqa: E402
from voicerag_cli.models.glm4voice.speech_tokenizer import SpeechTokenizer, SpeechTokenizerConfig  # noqa: E402
from voicerag_cli.models.glm4voice.static_lm import SamplingParams  # noqa: E402

LM_VOCAB = 168960  # GLM-4-Voice-9B's padded vocabulary (<|audio_16383|> is id 168736)
CODES = 16384
REAL_CHARS_PER_TOKEN = 4  # English prose through GLM-4's tokenizer (151k tiktoken-style BPE); rounded down


def log(message: str) -> None:
    print(message, flush=True)


def params_m(module: torch.nn.Module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


def passages(words: int = 120) -> list[Passage]:
    """Five `words`-word chunks of the demo documents: a realistic retrieved context."""
    documents: list[tuple[str, list[str]]] = []
    for path in sorted((REPO / "examples" / "docs").iterdir()):
        documents.append((path.name, path.read_text(encoding="utf-8").split()))
    chunks = []
    for name, text in documents:
        for start in range(0, len(text), words):
            chunks.append(Passage(len(chunks), name, " ".join(text[start : start + words])))
    return chunks[:5]


def real_length_context(generator: Glm4VoiceGenerator, query: Query, text_chars: int, speech: int) -> list[Passage]:
    """A shorter context whose prompt has as many tokens as the real prompt would have: the test
    tokenizer (400 BPE merges) spends ~1.6 characters a token, GLM-4's 151k vocabulary ~4 on
    English prose. The random LM's speed depends on the token count alone, not on the words."""
    target = text_chars // REAL_CHARS_PER_TOKEN + speech
    for words in range(120, 10, -2):
        context = passages(words)
        if len(generator.prompt_ids(query, context)) <= target:
            return context
    raise AssertionError("no context is short enough")


def build_lm(work: Path, device: str, smoke: bool) -> InterleavedLM:
    from transformers import GlmForCausalLM

    tokenizer = write_tokenizer(work / "lm", CODES)
    tokens = TokenMap.from_tokenizer(tokenizer, CODES)
    sizes = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128, "head_dim": 16} if smoke else {}
    config = glm_config(LM_VOCAB, list(tokens.stop_ids), **sizes)  # default: the GLM-4-9B shape
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = GlmForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    return InterleavedLM(model.eval(), tokenizer, device, compile=not smoke)


def pattern(generator: Glm4VoiceGenerator, total: int) -> Any:
    from transformers import LogitsProcessorList

    tokens = generator.tokens
    text = range(min(tokens.prefix_ids + tokens.stop_ids))  # the test tokenizer's text vocabulary
    audio = range(tokens.audio_offset, tokens.audio_offset + CODES)
    return lambda prompt: LogitsProcessorList([InterleavePattern(prompt, text, audio, tokens.stop_ids[0], total)])


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def run_answers(generator: Glm4VoiceGenerator, query: Query, context: list[Passage], reps: int) -> dict[str, Any]:
    generator.generate(query, context)  # warm-up: kernels, allocator, cuDNN choices
    rows = []
    for _ in range(reps):
        sync()
        answer = generator.generate(query, context)
        sync()
        stats = generator.stats
        assert answer.speech is not None
        rows.append(
            {
                "tokenize_ms": stats.tokenize_ms,
                "first_token_ms": stats.first_token_ms,
                "first_text_ms": stats.first_text_ms,
                "first_block_ms": stats.first_block_ms,
                "first_audio_ms": stats.first_audio_ms,
                "total_ms": stats.total_ms,
                "generated_tokens": stats.generated_tokens,
                "speech_tokens": stats.speech_tokens,
                "audio_s": stats.audio_s,
                "tokens_per_s": stats.tokens_per_s,
                "chunks_ms": [round(ms, 1) for ms, _ in stats.chunks],
            }
        )
    summary = {key: statistics.median(r[key] for r in rows) for key in rows[0] if key != "chunks_ms"}
    return {"median": summary, "runs": rows}


def lm_alone(lm: InterleavedLM, prompt: list[int], total: int, reps: int, graphs: bool) -> dict[str, Any]:
    """Prefill time (to the first token) and decoding speed of the LM without the decoder: the
    static decoder with or without CUDA graphs (compiled or not as `fast.compiled` says),
    sampling as configured, `total` tokens (no stop)."""
    fast = lm.fast
    assert fast is not None
    fast.graphs = graphs and torch.cuda.is_available()
    fast._graphs.clear()  # re-record with the forward pass now in use
    params = SamplingParams(0.2, 0.8)
    results = []
    for rep in range(reps + 1):
        sync()
        started = time.perf_counter()
        times: list[float] = []
        fast.generate(prompt, params, total, (), lambda _, seen=times: seen.append(time.perf_counter()))
        sync()
        end = time.perf_counter()
        first, count = times[0], len(times)
        if rep:  # the first pass is a warm-up
            results.append(((first - started) * 1000, (count - 1) / (end - first)))
    fast.graphs = torch.cuda.is_available()
    speed = statistics.median(r[1] for r in results)
    return {
        "prefill_ms": statistics.median(r[0] for r in results),
        "decode_tokens_per_s": speed,
        "ms_per_token": 1000 / speed,
    }


def matrix_products_alone(lm: InterleavedLM, reps: int) -> dict[str, float]:
    """The floor of a decoding step as built: only its weight matrix-vector products (4 a layer
    and the LM head), graphed, on one hidden vector: what the rest of the step adds is overhead.
    Also the bytes they read over that time (weights dominate)."""
    fast = lm.fast
    assert fast is not None
    hidden = lm.model.config.hidden_size
    x = torch.randn(1, 1, hidden, device=lm.device, dtype=fast.dtype)
    inner = torch.randn(1, 1, lm.model.config.intermediate_size, device=lm.device, dtype=fast.dtype)

    def products() -> None:  # results unused: the graph still runs every product
        linear = torch.nn.functional.linear
        for layer in fast.layers:
            linear(x, layer.qkv, layer.qkv_bias)
            linear(x, layer.out)
            linear(x, layer.gate_up)
            linear(inner, layer.down)
        lm.model.lm_head(x)

    weights = sum(
        t.numel() * t.element_size() for layer in fast.layers for t in (layer.qkv, layer.out, layer.gate_up, layer.down)
    )
    weights += lm.model.lm_head.weight.numel() * lm.model.lm_head.weight.element_size()
    if not torch.cuda.is_available():
        return {"weight_gb": weights / 1e9}
    with torch.inference_mode():
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            products()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            products()
    times = []
    for _ in range(10 * reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    ms = statistics.median(times)
    return {"ms": ms, "weight_gb": weights / 1e9, "weight_tb_per_s": weights / ms / 1e9}


def greedy_agreement(lm: InterleavedLM, prompt: list[int], count: int) -> dict[str, Any]:
    """Greedy answers with and without the graph: the graph must replay the very same step."""
    fast = lm.fast
    assert fast is not None
    answers = []
    for graphs in (True, False):
        fast.graphs = graphs and torch.cuda.is_available()
        ids: list[int] = []
        fast.generate(prompt, SamplingParams(0.0, 1.0), count, (), ids.append)
        answers.append(ids)
    fast.graphs = torch.cuda.is_available()
    same = sum(a == b for a, b in zip(*answers, strict=True))
    return {
        "tokens": count,
        "identical_prefix": next((i for i, (a, b) in enumerate(zip(*answers, strict=True)) if a != b), count),
        "identical": same,
    }


def decoder_rtf(decoder: SpeechDecoder, speech_tokens: int, first_block: int, reps: int) -> dict[str, Any]:
    tokens = [int(t) for t in np.random.default_rng(0).integers(0, CODES, speech_tokens)]
    audio_s = decoder.config.flow.frames(speech_tokens) * 256 / decoder.sample_rate
    decoder.decode(tokens)
    offline = []
    for _ in range(reps):
        sync()
        started = time.perf_counter()
        whole = decoder.decode(tokens)
        sync()
        offline.append(time.perf_counter() - started)
    schedule = [first_block, 25, 50, 100, 150, 200]
    streamed, first_chunk = [], []
    for _ in range(reps):
        stream, position, chunks, pushes = decoder.stream(), 0, [], []
        for index, size in enumerate(schedule + [schedule[-1]] * 100):
            block = tokens[position : position + size]
            position += len(block)
            final = position >= len(tokens)
            sync()
            started = time.perf_counter()
            chunks.append(stream.push(block, final=final))
            sync()
            pushes.append(time.perf_counter() - started)
            if index == 0:
                first_chunk.append(pushes[0])
            if final:
                break
        streamed.append(sum(pushes))
        assert sum(len(c) for c in chunks) == len(whole)
    # Where the first block's time goes: the flow (token encoder + solve) and the vocoder.
    first_mel, first_voc = [], []
    for _ in range(reps):
        sync()
        started = time.perf_counter()
        mel = decoder.decode_mel(tokens[:first_block])
        sync()
        first_mel.append(time.perf_counter() - started)
        with torch.inference_mode():
            decoder.hift.inference(mel)
        sync()
        first_voc.append(time.perf_counter() - started - first_mel[-1])
    # The first block's mel as graphed (and compiled) against the plain eager solve.
    fast_mel = decoder.decode_mel(tokens[:first_block])
    graphs, decoder.flow.decoder.graphs = decoder.flow.decoder.graphs, {}
    eager_mel = decoder.decode_mel(tokens[:first_block])
    decoder.flow.decoder.graphs = graphs
    mel_error = float((fast_mel - eager_mel).norm() / eager_mel.norm())
    # Exactness of the streamed vocoder at the real size: same mel, chunked vs whole.
    mel = decoder.decode_mel(tokens)
    reference = decoder.hift.inference(mel)[0].float().cpu().numpy()
    stream = decoder.stream()
    pieces = []
    for end in range(40, mel.shape[-1] + 137, 137):
        stream.mel = mel[:, :, : min(end, mel.shape[-1])]
        pieces.append(stream._vocode(final=end >= mel.shape[-1]))
    chunked = np.concatenate(pieces)
    return {
        "speech_tokens": speech_tokens,
        "audio_s": audio_s,
        "offline_s": statistics.median(offline),
        "offline_rtf": statistics.median(offline) / audio_s,
        "streamed_s": statistics.median(streamed),
        "streamed_rtf": statistics.median(streamed) / audio_s,
        "first_block_tokens": first_block,
        "first_block_decode_ms": statistics.median(first_chunk) * 1000,
        "first_block_flow_ms": statistics.median(first_mel) * 1000,
        "first_block_vocoder_ms": statistics.median(first_voc) * 1000,
        "first_block_mel_relative_error_vs_eager": mel_error,
        "vocoder_stream_max_abs_diff": float(np.abs(chunked - reference).max())
        if len(chunked) == len(reference)
        else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("glm4voice_gpu.json"))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--answer-tokens", type=int, default=234, help="LM tokens per answer (6 x (13 + 26))")
    parser.add_argument("--first-blocks", default="10", help="first audio block sizes to compare")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU: checks the script, times nothing")
    args = parser.parse_args()
    device = "cpu" if args.smoke else "cuda"
    assert args.smoke or torch.cuda.is_available(), "needs a CUDA device"
    torch.backends.cuda.matmul.allow_tf32 = True  # the fp32 decoder and tokenizer use TF32 matrix units
    torch.backends.cudnn.allow_tf32 = True
    work = Path(tempfile.mkdtemp(prefix="glm4voice-bench-"))
    name = "cpu (smoke)" if args.smoke else torch.cuda.get_device_name(0)
    results: dict[str, Any] = {"device": name, "torch": torch.__version__}

    started = time.perf_counter()
    tokenizer_config = SpeechTokenizerConfig()
    decoder_sizes = REAL_DECODER_SIZES
    if args.smoke:
        tokenizer_config = SpeechTokenizerConfig(d_model=32, encoder_attention_heads=2, encoder_ffn_dim=64)
        decoder_sizes = {**TINY_DECODER_SIZES, "vocab_size": CODES}
    tokenizer = SpeechTokenizer.load(write_speech_tokenizer(work / "tokenizer", tokenizer_config), device)
    decoder = SpeechDecoder.load(write_speech_decoder(work / "decoder", decoder_sizes), device)
    lm = build_lm(work, device, args.smoke)
    results["params_m"] = {
        "speech_tokenizer": params_m(tokenizer.encoder),
        "lm": params_m(lm.model),
        "flow": params_m(decoder.flow),
        "hift": params_m(decoder.hift),
    }
    results["build_s"] = time.perf_counter() - started
    log(f"built in {results['build_s']:.0f} s: {json.dumps({k: round(v) for k, v in results['params_m'].items()})} M")

    question = (0.1 * np.random.default_rng(1).standard_normal(3 * 16_000)).astype(np.float32)
    query = Query(text=None, audio=question, audio_rate=16_000)
    context = passages()
    params = GenerationParams(temperature=0.2, top_p=0.8, max_new_tokens=args.answer_tokens + 8, seed=0)
    generator = Glm4VoiceGenerator(tokenizer, lm, decoder, params, 10)
    generator.logits_processors = pattern(generator, args.answer_tokens)
    prompt = generator.prompt_ids(query, context)
    speech = tokenizer.tokenize(question, 16_000)
    results["prompt_tokens"] = len(prompt)
    results["question_speech_tokens"] = len(speech)
    results["prompt_text_chars"] = len(build_prompt(context, question_audio=speech))
    assert encode_prompt(lm.tokenizer, generator.tokens, build_prompt(context, question_audio=speech)) == prompt

    started = time.perf_counter()
    lm.prepare(params, len(prompt))  # cache + step graph (compiled first), as the generator's loader does
    decoder.prepare(10, compile=not args.smoke)
    results["prepare_s"] = time.perf_counter() - started
    log(f"compiled and graphs recorded in {results['prepare_s']:.1f} s")
    short = real_length_context(generator, query, results["prompt_text_chars"], len(speech))
    results["real_length_prompt_tokens"] = len(generator.prompt_ids(query, short))
    runs = [(f"answer_first_block_{b}", int(b), context) for b in args.first_blocks.split(",")]
    runs.append(("answer_first_block_10_real_length_prompt", 10, short))
    for key, first_block, passages_in in runs:
        decoder.prepare(first_block, compile=not args.smoke)
        generator.blocks = (first_block, *(s for s in (25, 50, 100, 150, 200) if s > first_block))
        results[key] = run_answers(generator, query, passages_in, args.reps)
        m = results[key]["median"]
        log(
            f"{key}: first audio {m['first_audio_ms']:.0f} ms (tokenize {m['tokenize_ms']:.0f}, first token"
            f" {m['first_token_ms']:.0f}, first block complete {m['first_block_ms']:.0f}),"
            f" {m['tokens_per_s']:.1f} tok/s with decoding, {m['audio_s']:.1f} s audio"
        )
        json.dump(results, args.out.open("w"), indent=2)
    results["greedy_graph_vs_eager"] = greedy_agreement(lm, prompt, 64)
    log(f"greedy, graphed vs eager: {results['greedy_graph_vs_eager']}")
    assert lm.fast is not None
    compiled = lm.fast.compiled
    for key, graphs, use_compiled in (
        ("lm_alone_compiled_graphed", True, True),
        ("lm_alone_graphed", True, False),
        ("lm_alone_eager", False, False),
    ):
        if use_compiled and not compiled:
            continue
        lm.fast.compiled = use_compiled
        results[key] = lm_alone(lm, prompt, args.answer_tokens, args.reps, graphs)
        log(f"LM alone ({key}): {json.dumps({k: round(v, 1) for k, v in results[key].items()})}")
    lm.fast.compiled = compiled
    results["lm_matrix_products_alone"] = matrix_products_alone(lm, args.reps)
    log(
        f"LM matrix products alone: {json.dumps({k: round(v, 2) for k, v in results['lm_matrix_products_alone'].items()})}"
    )
    baseline = results["lm_alone_eager"]["ms_per_token"]
    results["lm_speedup_vs_eager"] = {
        key: baseline / results[key]["ms_per_token"]
        for key in ("lm_alone_compiled_graphed", "lm_alone_graphed")
        if key in results
    }
    log(f"LM speed-up against eager: {json.dumps({k: round(v, 2) for k, v in results['lm_speedup_vs_eager'].items()})}")
    results["decoder"] = decoder_rtf(decoder, 156, 10, args.reps)  # as prepared: compiled graph
    decoder.prepare(10, compile=False)
    results["decoder_first_block_graph_uncompiled"] = decoder_rtf(decoder, 156, 10, args.reps)
    graphs, decoder.flow.decoder.graphs = decoder.flow.decoder.graphs, {}
    results["decoder_first_block_eager"] = decoder_rtf(decoder, 156, 10, args.reps)
    decoder.flow.decoder.graphs = graphs
    eager_ms = results["decoder_first_block_eager"]["first_block_decode_ms"]
    results["decoder_first_block_speedup_vs_eager"] = {
        key: eager_ms / results[key]["first_block_decode_ms"]
        for key in ("decoder", "decoder_first_block_graph_uncompiled")
    }
    for key in ("decoder", "decoder_first_block_graph_uncompiled", "decoder_first_block_eager"):
        log(f"{key}: {json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in results[key].items()})}")
    json.dump(results, args.out.open("w"), indent=2)

    if torch.cuda.is_available():
        results["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
        log(f"peak GPU memory {results['peak_gpu_gib']:.1f} GiB")
        json.dump(results, args.out.open("w"), indent=2)


if __name__ == "__main__":
    main()
