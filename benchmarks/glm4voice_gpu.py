"""GPU benchmark of the `glm4voice` generator at the published sizes, with random weights.

Builds the three parts at their real shapes: the speech tokenizer (Whisper-large-v3 encoder,
16 layers to the quantizer, 16384 codes), the LM (GLM-4-9B shape: 40 layers, 4096 wide, 32
heads / 2 KV groups, vocabulary 168960, bf16) and the decoder (flow matching 111M + HiFT 21M
parameters, fp32), then answers a 3 s question over five retrieved passages through the real
`Glm4VoiceGenerator` streaming path. A logits processor makes the random LM answer in
GLM-4-Voice's shape (13 text tokens, 26 speech tokens, repeated), so the token timing is that
of a real answer; what the tokens say is meaningless.

Reported (medians over repetitions after a warm-up):
- first audio: from the start of generation (retrieval done) to the first decoded audio chunk,
  including tokenizing the question, the prompt prefill and 13 text + `first_block` speech tokens;
- LM tokens/s while decoding audio in parallel, and the LM alone;
- decoder real-time factor (decode time / audio duration), whole-answer and streamed;
- streamed vocoding vs whole-utterance vocoding (max abs difference), at the real size.

Usage (on a CUDA machine, from the repository root):
    PYTHONPATH=src python benchmarks/glm4voice_gpu.py --out results.json [--compile]
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
sys.path.insert(0, str(REPO / "src"))

from voicerag_cli.models.base import Passage, Query  # noqa: E402
from voicerag_cli.models.glm4voice.backend import Glm4VoiceGenerator  # noqa: E402
from voicerag_cli.models.glm4voice.lm import GenerationParams, InterleavedLM  # noqa: E402
from voicerag_cli.models.glm4voice.protocol import TokenMap, build_prompt, encode_prompt  # noqa: E402
from voicerag_cli.models.glm4voice.speech_decoder import SpeechDecoder  # noqa: E402
from voicerag_cli.models.glm4voice.speech_tokenizer import SpeechTokenizer, SpeechTokenizerConfig  # noqa: E402
from voicerag_cli.models.glm4voice.synthetic import (  # noqa: E402
    REAL_DECODER_SIZES,
    TINY_DECODER_SIZES,
    InterleavePattern,
    glm_config,
    write_speech_decoder,
    write_speech_tokenizer,
    write_tokenizer,
)

LM_VOCAB = 168960  # GLM-4-Voice-9B's padded vocabulary (<|audio_16383|> is id 168736)
CODES = 16384


def log(message: str) -> None:
    print(message, flush=True)


def params_m(module: torch.nn.Module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


def passages() -> list[Passage]:
    """Five 120-word chunks of the demo documents: a realistic retrieved context."""
    words: list[tuple[str, list[str]]] = []
    for path in sorted((REPO / "examples" / "docs").iterdir()):
        words.append((path.name, path.read_text(encoding="utf-8").split()))
    chunks = []
    for name, text in words:
        for start in range(0, len(text), 120):
            chunks.append(Passage(len(chunks), name, " ".join(text[start : start + 120])))
    return chunks[:5]


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
    return InterleavedLM(model.eval(), tokenizer, device)


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


def lm_alone(generator: Glm4VoiceGenerator, prompt: list[int], total: int, reps: int) -> dict[str, float]:
    """Prefill time (to the first token) and decoding tokens/s of the LM without the decoder."""
    processors = pattern(generator, total)
    results = []
    for rep in range(reps + 1):
        sync()
        started = time.perf_counter()
        times: list[float] = []
        generator.lm.run(
            prompt,
            generator.tokens,
            generator.params,
            lambda _, seen=times: seen.append(time.perf_counter()),
            processors(len(prompt)),
        )
        sync()
        end = time.perf_counter()
        first, count = times[0], len(times)
        if rep:  # the first pass is a warm-up
            results.append(((first - started) * 1000, (count - 1) / (end - first)))
    return {
        "prefill_ms": statistics.median(r[0] for r in results),
        "decode_tokens_per_s": statistics.median(r[1] for r in results),
        "ms_per_token": 1000 / statistics.median(r[1] for r in results),
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
        "vocoder_stream_max_abs_diff": float(np.abs(chunked - reference).max())
        if len(chunked) == len(reference)
        else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("glm4voice_gpu.json"))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--answer-tokens", type=int, default=234, help="LM tokens per answer (6 x (13 + 26))")
    parser.add_argument("--first-blocks", default="10,25", help="first audio block sizes to compare")
    parser.add_argument("--compile", action="store_true", help="also run the LM with a static cache, compiled")
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

    for first_block in [int(b) for b in args.first_blocks.split(",")]:
        generator.blocks = (first_block, *(s for s in (25, 50, 100, 150, 200) if s > first_block))
        key = f"answer_first_block_{first_block}"
        results[key] = run_answers(generator, query, context, args.reps)
        m = results[key]["median"]
        log(
            f"first block {first_block}: first audio {m['first_audio_ms']:.0f} ms (first token {m['first_token_ms']:.0f},"
            f" tokenize {m['tokenize_ms']:.0f}), {m['tokens_per_s']:.1f} tok/s with decoding, {m['audio_s']:.1f} s audio"
        )
        json.dump(results, args.out.open("w"), indent=2)
    results["lm_alone"] = lm_alone(generator, prompt, args.answer_tokens, args.reps)
    log(f"LM alone: {json.dumps({k: round(v, 1) for k, v in results['lm_alone'].items()})}")
    results["decoder"] = decoder_rtf(decoder, 156, 10, args.reps)
    log(
        f"decoder: {json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in results['decoder'].items()})}"
    )
    json.dump(results, args.out.open("w"), indent=2)

    if args.compile:
        lm.model.generation_config.cache_implementation = "static"  # transformers compiles the decoding step
        # The flow's U-Net is launch-bound (hundreds of small kernels per Euler step): fuse them.
        decoder.flow.decoder.estimator = torch.compile(decoder.flow.decoder.estimator, dynamic=True)
        generator.blocks = (10, 25, 50, 100, 150, 200)
        compiled_started = time.perf_counter()
        generator.generate(query, context)  # compiles
        results["compile_s"] = time.perf_counter() - compiled_started
        results["compiled_lm_alone"] = lm_alone(generator, prompt, args.answer_tokens, args.reps)
        results["compiled_answer_first_block_10"] = run_answers(generator, query, context, args.reps)
        results["compiled_decoder"] = decoder_rtf(decoder, 156, 10, args.reps)
        m = results["compiled_answer_first_block_10"]["median"]
        log(
            f"compiled decoder: {json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in results['compiled_decoder'].items()})}"
        )
        log(
            f"compiled ({results['compile_s']:.0f} s): {json.dumps({k: round(v, 1) for k, v in results['compiled_lm_alone'].items()})}"
        )
        log(f"compiled first block 10: first audio {m['first_audio_ms']:.0f} ms, {m['tokens_per_s']:.1f} tok/s")
        json.dump(results, args.out.open("w"), indent=2)
    if torch.cuda.is_available():
        results["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
        log(f"peak GPU memory {results['peak_gpu_gib']:.1f} GiB")
        json.dump(results, args.out.open("w"), indent=2)


if __name__ == "__main__":
    main()
