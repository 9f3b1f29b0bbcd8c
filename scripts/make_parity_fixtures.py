"""Write the reference-parity fixtures in tests/fixtures/parity/ by running the OFFICIAL code.

Not part of the package and never imported by it or by the tests: the tests only read what this
script wrote. It imports the official implementations from source trees given on the command line
(fetched separately; none of their code is in this repository) and needs an environment where
they import, e.g.:

    python3 -m venv /tmp/venv-ref --system-site-packages     # reuses the installed CPU torch
    /tmp/venv-ref/bin/pip install transformers==4.44.1 huggingface_hub==0.25.2 diffusers==0.27.2 \\
        einops omegaconf HyperPyYAML soxr
    /tmp/venv-ref/bin/pip install --no-deps conformer==0.3.2
    git clone https://github.com/THUDM/GLM-4-Voice /tmp/ref/glm4voice
    git clone https://github.com/shivammehta25/Matcha-TTS /tmp/ref/matcha   # GLM-4-Voice's submodule
    PYTHONPATH=src:tests /tmp/venv-ref/bin/python scripts/make_parity_fixtures.py \\
        --glm4voice /tmp/ref/glm4voice --matcha /tmp/ref/matcha --out tests/fixtures/parity

What runs where it matters (tiny random-weight models in the official checkpoint layouts):
- speech tokenizer: `speech_tokenizer.modeling_whisper.WhisperVQEncoder` saved with
  `save_pretrained` and read back with `from_pretrained` (as web_demo.py does), tokens from
  `speech_tokenizer.utils.extract_speech_token` (its CUDA calls redirected to the CPU);
- speech decoder: `flow`/`hift` built by HyperPyYAML from the decoder config.yaml layout, i.e.
  CosyVoice's MaskedDiffWithXvec (with Matcha-TTS's estimator blocks) and HiFTGenerator; the flow's
  `torch.randn_like` noise and HiFT's excitation are injected so the outputs are deterministic;
- prompt: the statements of web_demo.py's `inference_fn` that build the prompt, taken from its
  source with `ast` and executed on our inputs (the system prompts are its own literals);
- streaming (`--only stream`, reads the speech_decoder fixture): flow_inference.py's
  `AudioDecoder.token2wav` on web_demo.py's blocks and its `offline_inference`, with upstream's
  random draws (flow noise, HiFT phases and source noise) replaced by voicerag's fixed ones,
  position by position, so that streamed and whole decoding differ by the streaming scheme only.
Matcha-TTS's `matcha.utils` package imports hydra/lightning for training only; a two-line logger
stand-in is registered instead (it carries no arithmetic).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import json
import logging
import math
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch

SEED = 20261203


# --- helpers -----------------------------------------------------------------------------------


@contextlib.contextmanager
def cpu_only():
    """Official code calls `.cuda()` / `.to("cuda")`; on this CPU machine those become no-ops."""

    def redirect(device: Any) -> Any:
        return "cpu" if isinstance(device, str) and device.startswith("cuda") else device

    saved = (torch.Tensor.cuda, torch.Tensor.to, torch.nn.Module.cuda, torch.nn.Module.to)
    original_tensor_to, original_module_to = torch.Tensor.to, torch.nn.Module.to

    def tensor_to(self, *args, **kwargs):
        args = tuple(redirect(a) for a in args)
        if "device" in kwargs:
            kwargs["device"] = redirect(kwargs["device"])
        return original_tensor_to(self, *args, **kwargs)

    def module_to(self, *args, **kwargs):
        args = tuple(redirect(a) for a in args)
        if "device" in kwargs:
            kwargs["device"] = redirect(kwargs["device"])
        return original_module_to(self, *args, **kwargs)

    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.Tensor.to = tensor_to
    torch.nn.Module.cuda = lambda self, *a, **k: self
    torch.nn.Module.to = module_to
    try:
        yield
    finally:
        torch.Tensor.cuda, torch.Tensor.to, torch.nn.Module.cuda, torch.nn.Module.to = saved


def reset_parameters(module: torch.nn.Module, seed: int) -> None:
    """PyTorch's default (fan-in scaled) init from a seed: random weights that keep activations
    in range, so token choices and waveforms are not degenerate."""
    torch.manual_seed(seed)
    for child in module.modules():
        if hasattr(child, "reset_parameters") and child is not module:
            child.reset_parameters()


def espeak_16k(text: str) -> np.ndarray:
    import soundfile as sf
    import soxr

    wav = subprocess.run(["espeak-ng", "--stdout", text], capture_output=True, check=True).stdout
    samples, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return soxr.resample(samples, rate, 16_000).astype(np.float32)


def register_matcha_logger() -> None:
    package = types.ModuleType("matcha.utils")
    package.__path__ = []  # a package, so `matcha.utils.pylogger` resolves here
    pylogger = types.ModuleType("matcha.utils.pylogger")
    pylogger.get_pylogger = lambda name=__name__: logging.getLogger(name)
    sys.modules["matcha.utils"] = package
    sys.modules["matcha.utils.pylogger"] = pylogger


# --- speech tokenizer ----------------------------------------------------------------------------

TOKENIZER_CONFIG = {
    "d_model": 32,
    "encoder_layers": 4,
    "encoder_attention_heads": 2,
    "encoder_ffn_dim": 64,
    "decoder_layers": 1,
    "decoder_attention_heads": 2,
    "decoder_ffn_dim": 64,
    "vocab_size": 64,
    "num_mel_bins": 128,
    "max_source_positions": 1500,
    "pooling_kernel_size": 4,
    "pooling_type": "avg",
    "pooling_position": 2,
    "quantize_vocab_size": 64,
    "quantize_position": 2,
    "quantize_causal_block_size": 200,
    "quantize_encoder_only": False,
    "encoder_causal_convolution": True,
    "encoder_causal_attention": False,
    "quantize_causal_encoder": False,
}


def speech_tokenizer(out: Path) -> dict[str, Any]:
    from speech_tokenizer.configuration_whisper import WhisperVQConfig
    from speech_tokenizer.modeling_whisper import WhisperVQEncoder
    from speech_tokenizer.utils import extract_speech_token
    from transformers import WhisperFeatureExtractor

    folder = out / "speech_tokenizer"
    config = WhisperVQConfig(**TOKENIZER_CONFIG)
    encoder = WhisperVQEncoder(config)
    reset_parameters(encoder, SEED)
    encoder.save_pretrained(str(folder), safe_serialization=True)
    WhisperFeatureExtractor(feature_size=config.num_mel_bins).save_pretrained(str(folder))

    speech = espeak_16k("When was the safety bicycle introduced?")
    short = espeak_16k("Olympus Mons.")[:17_777]  # not a whole number of 80 ms tokens
    long = np.tile(speech, math.ceil(31.3 * 16_000 / len(speech)))[: int(31.3 * 16_000)]  # two 30 s windows
    clips = {"speech": speech, "short": short}
    with cpu_only():
        model = WhisperVQEncoder.from_pretrained(str(folder)).eval()  # as web_demo.py loads it
        extractor = WhisperFeatureExtractor.from_pretrained(str(folder))
        tokens = {
            name: extract_speech_token(model, extractor, [(torch.from_numpy(audio)[None], 16_000)])[0]
            for name, audio in {**clips, "long": long}.items()
        }
    np.savez_compressed(out / "speech_tokenizer_inputs.npz", **clips)
    for name, ids in tokens.items():
        print(f"tokenizer {name}: {len(ids)} tokens, {len(set(ids))} distinct")
    return {"tokens": tokens, "long_seconds": 31.3, "long_from": "speech"}


# --- speech decoder --------------------------------------------------------------------------------


def speech_decoder(out: Path, decoder_yaml: str) -> dict[str, Any]:
    from hyperpyyaml import load_hyperpyyaml

    folder = out / "speech_decoder"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(decoder_yaml, encoding="utf-8")
    built = load_hyperpyyaml(decoder_yaml)
    flow, hift = built["flow"].eval(), built["hift"].eval()
    reset_parameters(flow, SEED + 1)
    reset_parameters(hift, SEED + 2)
    torch.save(flow.state_dict(), folder / "flow.pt")  # as released: plain state dicts
    torch.save(hift.state_dict(), folder / "hift.pt")  # weight_g / weight_v pairs included

    generator = torch.Generator().manual_seed(SEED + 3)
    vocab = flow.vocab_size
    arrays: dict[str, np.ndarray] = {}

    def run_flow(tokens: torch.Tensor, prompt_tokens: torch.Tensor, prompt_feat: torch.Tensor, noise: torch.Tensor):
        original = torch.randn_like

        def injected(mu, *args, **kwargs):
            assert mu.shape == noise.shape, (mu.shape, noise.shape)
            return noise.clone()

        torch.randn_like = injected
        try:
            with torch.inference_mode():
                return flow.inference(
                    token=tokens,
                    token_len=torch.tensor([tokens.shape[1]], dtype=torch.int32),
                    prompt_token=prompt_tokens,
                    prompt_token_len=torch.tensor([prompt_tokens.shape[1]], dtype=torch.int32),
                    prompt_feat=prompt_feat,
                    prompt_feat_len=torch.tensor([prompt_feat.shape[1]], dtype=torch.int32),
                    embedding=torch.zeros(1, 192),
                )
        finally:
            torch.randn_like = original

    def frames(count: int) -> int:
        return int(count / flow.input_frame_rate * 22050 / 256)

    # whole utterance
    tokens = torch.randint(0, vocab, (1, 40), generator=generator)
    noise = torch.randn(1, 80, frames(40), generator=generator)
    arrays |= {"flow_tokens": tokens.numpy(), "flow_noise": noise.numpy()}
    arrays["flow_mel"] = run_flow(tokens, torch.zeros(1, 0, dtype=torch.long), torch.zeros(1, 0, 80), noise).numpy()
    # a streaming step: the first 15 tokens and their mel as the prompt, as web_demo.py calls it
    prompt_mel = torch.randn(1, 80, frames(15), generator=generator) * 0.5
    noise2 = torch.randn(1, 80, frames(40), generator=generator)
    arrays |= {"flow_prompt_mel": prompt_mel.numpy(), "flow_prompt_noise": noise2.numpy()}
    arrays["flow_prompt_out"] = run_flow(
        tokens[:, 15:], tokens[:, :15], prompt_mel.transpose(1, 2).contiguous(), noise2
    ).numpy()

    # HiFT: F0 predictor, and the waveform for an injected excitation (the official `cache_source`
    # argument overwrites the source over its length, so a full-length one replaces it entirely)
    mel = torch.randn(1, 80, 48, generator=generator)
    per_frame = int(
        np.prod(
            hift.f0_upsamp.scale_factor
            if isinstance(hift.f0_upsamp.scale_factor, tuple)
            else [hift.f0_upsamp.scale_factor]
        )
    )
    excitation = torch.randn(1, 1, 48 * per_frame, generator=generator) * 0.1
    with torch.inference_mode():
        arrays["hift_f0"] = hift.f0_predictor(mel).numpy()
        speech, _ = hift.inference(mel=mel, cache_source=excitation)
    arrays |= {"hift_mel": mel.numpy(), "hift_excitation": excitation.numpy(), "hift_speech": speech.numpy()}

    # HiFT's harmonic-plus-noise source for a designed F0 track (unvoiced, rising, steady), with the
    # official random draws (initial phases, noise) recorded so the test can reuse them
    f0 = torch.cat([torch.zeros(6), torch.linspace(80, 260, 20), torch.full((14,), 180.0)])[None]
    recorded: dict[str, torch.Tensor] = {}
    from torch.distributions.uniform import Uniform

    original_sample, original_randn_like = Uniform.sample, torch.randn_like

    def sample(self, sample_shape=torch.Size()):
        value = original_sample(self, sample_shape)
        recorded.setdefault("phase", value)
        return value

    def randn_like(x, *args, **kwargs):
        value = original_randn_like(x, *args, **kwargs)
        recorded.setdefault("noise", value)
        return value

    torch.manual_seed(SEED + 4)
    Uniform.sample, torch.randn_like = sample, randn_like
    try:
        with torch.inference_mode():
            source = hift._f02source(f0)
    finally:
        Uniform.sample, torch.randn_like = original_sample, original_randn_like
    phase = recorded["phase"].clone()
    phase[:, 0, :] = 0  # SineGen zeroes the fundamental's phase after drawing
    arrays |= {
        "source_f0": f0.numpy(),
        "source_phase": phase.numpy(),  # radians, [1, harmonics + 1, 1]
        "source_noise": recorded["noise"].numpy(),  # standard normal, [1, harmonics + 1, samples]
        "source_out": source.numpy(),
    }
    np.savez_compressed(out / "speech_decoder_cases.npz", **arrays)
    return {"samples_per_frame": per_frame}


# --- streaming -----------------------------------------------------------------------------------

STREAM_TOKENS = 90  # blocks of 25, 50 and the last 15: three calls, two with a prompt


@contextlib.contextmanager
def voicerag_draws(decoder: Any, offset: dict[str, int]):
    """Upstream's random draws replaced by voicerag's fixed ones, position by position: the flow's
    initial noise by absolute mel frame (`FlowDecoder.noise`), HiFT's harmonic phases by its fixed
    initial phases and its source noise by absolute sample (`offset["sample"]`, set per HiFT
    call). Then upstream's whole-utterance decoding is comparable with voicerag's sample for
    sample, and its streamed decoding differs from its whole one by its streaming scheme alone."""
    from torch.distributions.uniform import Uniform

    flow, hift = decoder.flow, decoder.hift
    rows = hift.config.nb_harmonics + 1
    original_randn_like, original_sample = torch.randn_like, Uniform.sample

    def randn_like(x, *args, **kwargs):
        if x.dim() == 3 and x.shape[1] == flow.config.output_size:  # the flow's z = randn_like(mu)
            return flow.noise(0, x.shape[2], x.device, x.dtype)
        if x.dim() == 3 and x.shape[1] == rows:  # SineGen's noise over its harmonics
            start = offset["sample"]
            return hift._noise_at(start, start + x.shape[2])[None].to(x.dtype)
        return original_randn_like(x, *args, **kwargs)  # drawn but unused by HiFT's output

    def sample(self, sample_shape=torch.Size()):
        return (2 * math.pi * hift.start().phase).to(torch.float32).reshape(1, rows, 1).expand(*sample_shape)

    torch.randn_like, Uniform.sample = randn_like, sample
    try:
        yield
    finally:
        torch.randn_like, Uniform.sample = original_randn_like, original_sample


def streaming(out: Path, glm4voice: Path) -> dict[str, Any]:
    """Upstream's streamed decoding of one answer: `flow_inference.AudioDecoder.token2wav` (flow
    with the earlier mel as prompt, 5-token mel overlap with a Hamming fade, a 1-frame vocoder
    cache) on the blocks web_demo.py forms (25, 50, 100, 150, 200 speech tokens; the rest when
    the answer ends), driven as web_demo.py's loop drives it; and its whole-utterance decoding
    (`offline_inference`), both on the committed speech_decoder fixture with voicerag's draws."""
    from flow_inference import AudioDecoder

    from voicerag_cli.models.glm4voice.speech_decoder import SpeechDecoder

    folder = out / "speech_decoder"
    ours = SpeechDecoder.load(folder)
    official = AudioDecoder(str(folder / "config.yaml"), str(folder / "flow.pt"), str(folder / "hift.pt"), device="cpu")
    official.flow.eval()
    official.hift.eval()
    per_frame = ours.config.hift.samples_per_frame
    offset = {"sample": 0, "frame": 0}
    inference = official.hift.inference

    def located(mel, cache_source=torch.zeros(1, 1, 0)):
        # the call's first mel frame is the previous call's last (the 1-frame cache) after the first
        offset["sample"] = offset["frame"] * per_frame
        offset["frame"] += mel.shape[2] - official.mel_cache_len
        return inference(mel=mel, cache_source=cache_source)

    official.hift.inference = located
    generator = torch.Generator().manual_seed(SEED + 7)
    tokens = torch.randint(0, official.flow.vocab_size, (1, STREAM_TOKENS), generator=generator)
    blocks = stream_blocks(glm4voice / "web_demo.py")
    with voicerag_draws(ours, offset), torch.inference_mode():
        whole = official.offline_inference(tokens)[0]
        whole_mel = official.flow.inference(
            token=tokens,
            token_len=torch.tensor([STREAM_TOKENS], dtype=torch.int32),
            prompt_token=torch.zeros(1, 0, dtype=torch.int32),
            prompt_token_len=torch.tensor([0], dtype=torch.int32),
            prompt_feat=torch.zeros(1, 0, 80),
            prompt_feat_len=torch.tensor([0], dtype=torch.int32),
            embedding=torch.zeros(1, 192),
        )
        # web_demo.py's loop over the generated ids, the speech tokens arriving one by one
        offset["frame"] = 0
        prompt_feat, prompt_tokens = torch.zeros(1, 0, 80), torch.zeros(1, 0, dtype=torch.int64)
        chunks, mels, sizes, pending, index = [], [], [], [], 0
        for position in range(STREAM_TOKENS + 1):
            final = position == STREAM_TOKENS  # the next id is <|user|>
            if len(pending) >= blocks[index] or (final and pending):
                index = min(index + 1, len(blocks) - 1)
                block = torch.tensor([pending])
                if mels:
                    prompt_feat = torch.cat(mels, dim=-1).transpose(1, 2)
                speech, mel = official.token2wav(
                    block, uuid="answer", prompt_token=prompt_tokens, prompt_feat=prompt_feat, finalize=final
                )
                chunks.append(speech[0])
                mels.append(mel)
                sizes.append(len(pending))
                prompt_tokens = torch.cat((prompt_tokens, block), dim=-1)
                pending = []
            if not final:
                pending.append(int(tokens[0, position]))
    streamed = torch.cat(chunks)
    # voicerag's whole-utterance decoding of the same tokens equals upstream's (same draws)
    mine = torch.from_numpy(ours.decode(tokens[0].tolist()))
    assert mine.shape == whole.shape and (mine - whole).abs().max() < 1e-5, (mine - whole).abs().max()
    np.savez_compressed(
        out / "speech_decoder_stream.npz",
        tokens=tokens.numpy(),
        whole_mel=whole_mel.numpy(),
        whole=whole.numpy(),
        streamed=streamed.numpy().astype(np.float16),  # compared to a few per cent: half is plenty
    )
    return {"blocks": sizes, "chunk_samples": [len(c) for c in chunks]}


# --- prompt --------------------------------------------------------------------------------------


def prompt_statements(web_demo: Path) -> tuple[dict[str, str], list[ast.stmt], str]:
    """From web_demo.py's `inference_fn`: the two system prompts (by input mode) and the
    statements that assemble `inputs` from the previous turn and the new one."""
    source = web_demo.read_text(encoding="utf-8")
    tree = ast.parse(source)
    function = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "inference_fn")
    mode_branch = function.body[0]
    assert isinstance(mode_branch, ast.If)
    prompts = {}
    for mode, body in (("audio", mode_branch.body), ("text", mode_branch.orelse)):
        for statement in body:
            if isinstance(statement, ast.Assign) and getattr(statement.targets[0], "id", "") == "system_prompt":
                prompts[mode] = ast.literal_eval(statement.value)
    start = next(
        i
        for i, s in enumerate(function.body)
        if isinstance(s, ast.Assign) and getattr(s.targets[0], "id", "") == "inputs"
    )
    end = next(i for i, s in enumerate(function.body) if isinstance(s, ast.With))
    statements = function.body[start:end]
    return prompts, statements, "\n".join(ast.get_source_segment(source, s) or "" for s in statements)


def stream_blocks(web_demo: Path) -> list[int]:
    """web_demo.py's streaming block sizes (the `block_size_list` literal of `inference_fn`)."""
    tree = ast.parse(web_demo.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "block_size_list":
            return ast.literal_eval(node.value)
    raise SystemExit("web_demo.py has no block_size_list")


def official_prompt(statements: list[ast.stmt], **names: str) -> str:
    module = ast.Module(body=statements, type_ignores=[])
    scope = dict(names)
    exec(compile(module, "web_demo.py:inference_fn", "exec"), {}, scope)
    return scope["inputs"]


def prompts(out: Path, glm4voice: Path) -> dict[str, Any]:
    system, statements, _ = prompt_statements(glm4voice / "web_demo.py")
    audio = [3, 0, 63, 17]
    user_audio = "<|begin_of_audio|>" + "".join(f"<|audio_{t}|>" for t in audio) + "<|end_of_audio|>"
    first = official_prompt(
        statements,
        previous_input_tokens="",
        previous_completion_tokens="",
        system_prompt=system["audio"],
        user_input=user_audio,
    )
    # what web_demo.py keeps of an answer: decode(complete_tokens) of the interleaved ids, audio
    # tokens included (a made-up answer; its shape is what matters)
    completion = "It was 1885.<|audio_5|><|audio_9|> Anything else?<|audio_1|>"
    second = official_prompt(
        statements,
        previous_input_tokens=first,
        previous_completion_tokens=completion,
        system_prompt=system["audio"],
        user_input=user_audio,
    )
    text_prompt = official_prompt(
        statements,
        previous_input_tokens="",
        previous_completion_tokens="",
        system_prompt=system["text"],
        user_input="Who introduced the safety bicycle?",
    )
    return {
        "question_audio": audio,
        "completion": completion,
        "first_turn": first,
        "second_turn": second,
        "text_question": "Who introduced the safety bicycle?",
        "text_turn": text_prompt,
        "stream_blocks": stream_blocks(glm4voice / "web_demo.py"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--glm4voice", type=Path, required=True, help="THUDM/GLM-4-Voice source tree")
    parser.add_argument("--matcha", type=Path, required=True, help="Matcha-TTS source tree (its submodule)")
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/parity"))
    parser.add_argument(
        "--only",
        choices=("speech_tokenizer", "speech_decoder", "prompt", "stream"),
        action="append",
        help="write only these parts (repeatable; `stream` reads the speech_decoder fixture)",
    )
    args = parser.parse_args()
    parts = args.only or ["speech_tokenizer", "speech_decoder", "prompt", "stream"]
    sys.path[:0] = [str(args.glm4voice), str(args.matcha)]
    register_matcha_logger()
    import transformers  # before the torchaudio stand-in: it probes installed packages on import

    # speech_tokenizer/utils.py and cosyvoice's flow.py import torchaudio, used only to read files
    # and resample, which these inputs (16 kHz arrays) never need
    stand_in = types.ModuleType("torchaudio")
    stand_in.transforms = types.SimpleNamespace(Resample=None)  # named in a type annotation only
    sys.modules.setdefault("torchaudio", stand_in)
    from tiny_glm4voice import DECODER_YAML, TINY_DECODER_SIZES

    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    reference = args.out / "glm4voice_reference.json"
    meta: dict[str, Any] = json.loads(reference.read_text(encoding="utf-8")) if reference.is_file() else {}
    meta |= {"seed": SEED, "torch": torch.__version__}
    meta["transformers"] = transformers.__version__
    meta["glm4voice_commit"] = (
        subprocess.run(
            ["git", "-C", str(args.glm4voice), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        or "unknown"
    )
    if "speech_tokenizer" in parts:
        meta["speech_tokenizer"] = speech_tokenizer(args.out)
    if "speech_decoder" in parts:
        meta["speech_decoder"] = speech_decoder(args.out, DECODER_YAML.format(**TINY_DECODER_SIZES))
    if "prompt" in parts:
        meta["prompt"] = prompts(args.out, args.glm4voice)
    if "stream" in parts:
        meta["stream"] = streaming(args.out, args.glm4voice)
    (args.out / "glm4voice_reference.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print("wrote", sorted(p.name for p in args.out.rglob("*") if p.is_file()))


if __name__ == "__main__":
    main()
