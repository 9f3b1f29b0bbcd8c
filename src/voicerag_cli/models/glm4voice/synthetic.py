"""Random-weight checkpoints written in the public GLM-4-Voice on-disk layouts.

The tests build tiny ones and the GPU benchmark real-sized ones; both then go through the same
loading code as the downloaded checkpoints, so key names, config parsing and file checks are
exercised for real. Nothing here is used when answering questions."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import save_file

from voicerag_cli.models.glm4voice.speech_tokenizer import CHECKPOINT_PREFIX, SpeechTokenizerConfig, WhisperVQEncoder

T = TypeVar("T")


def _seeded(build: Callable[[], T], seed: int) -> T:
    """Build a module with PyTorch's default (fan-in scaled) init from a fixed seed: random but
    well-conditioned weights, so activations and codebook choices are not degenerate."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def write_speech_tokenizer(folder: Path, config: SpeechTokenizerConfig, seed: int = 0) -> Path:
    """config.json, preprocessor_config.json and model.safetensors as in `glm-4-voice-tokenizer`,
    including the weights the tokenizer skips (final layer norm, a layer past the quantizer, a
    Whisper decoder tensor) so that the skipping is tested too."""
    from transformers import WhisperFeatureExtractor

    folder.mkdir(parents=True, exist_ok=True)
    encoder = _seeded(lambda: WhisperVQEncoder(config), seed)
    state = {CHECKPOINT_PREFIX + name: tensor.contiguous() for name, tensor in encoder.state_dict().items()}
    dim = config.d_model
    state[CHECKPOINT_PREFIX + "layer_norm.weight"] = torch.ones(dim)
    state[CHECKPOINT_PREFIX + "layer_norm.bias"] = torch.zeros(dim)
    state[CHECKPOINT_PREFIX + f"layers.{config.quantize_position}.fc1.bias"] = torch.zeros(config.encoder_ffn_dim)
    state["model.decoder.layer_norm.weight"] = torch.ones(dim)
    save_file(state, str(folder / "model.safetensors"))
    payload = {"model_type": "whisper", "architectures": ["WhisperVQForConditionalGeneration"]}
    payload |= dataclasses.asdict(config)
    (folder / "config.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    WhisperFeatureExtractor(feature_size=config.num_mel_bins).save_pretrained(str(folder))
    return folder


TEXT_CORPUS = (
    "The safety bicycle was introduced in 1885 by John Kemp Starley. "
    "Olympus Mons is the tallest volcano in the solar system. "
    "A grounded answer cites its passages, like this [1] or [2]. "
    "Numbers 0 1 2 3 4 5 6 7 8 9 and punctuation , . ? ! : ; ( ) - café ☕"
)


def write_tokenizer(folder: Path, audio_count: int, text_vocab: int = 400) -> Any:
    """A byte-level BPE tokenizer with GLM-4-Voice's special tokens and `<|audio_0|>`... appended
    after the text vocabulary, contiguous, as in the real one; saved as tokenizer.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from voicerag_cli.models.glm4voice.protocol import END_OF_TEXT, SPECIAL_TOKENS

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=text_vocab, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator([TEXT_CORPUS] * 4, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=END_OF_TEXT, pad_token=END_OF_TEXT)
    tokenizer.add_special_tokens(
        {"additional_special_tokens": [*SPECIAL_TOKENS, *(f"<|audio_{n}|>" for n in range(audio_count))]}
    )
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(folder))
    return tokenizer


def glm_config(vocab_size: int, stop_ids: list[int], **sizes: int) -> Any:
    """A transformers GLM-4 config (the architecture family of GLM-4-Voice-9B); defaults to its
    published 9B shape, `sizes` override for tiny test models."""
    from transformers import GlmConfig

    return GlmConfig(vocab_size=vocab_size, eos_token_id=stop_ids, pad_token_id=stop_ids[1], **sizes)


def write_interleaved_lm(folder: Path, audio_count: int, seed: int = 0, **sizes: int) -> Path:
    """A random-weight causal LM snapshot (config.json, model.safetensors, tokenizer files) that
    speaks the GLM-4-Voice token protocol; tiny by default."""
    from transformers import GlmForCausalLM

    from voicerag_cli.models.glm4voice.protocol import TokenMap

    tokenizer = write_tokenizer(folder, audio_count)
    tokens = TokenMap.from_tokenizer(tokenizer, audio_count)
    shape = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "max_position_embeddings": 4096,
    } | sizes
    config = glm_config(len(tokenizer), list(tokens.stop_ids), **shape)
    model = _seeded(lambda: GlmForCausalLM(config), seed)
    model.save_pretrained(str(folder))
    return folder


class InterleavePattern:
    """A logits processor that makes a random-weight LM emit GLM-4-Voice's answer shape: runs of
    `text` text tokens and `audio` speech tokens, then `<|user|>` after `total` tokens. It lets
    tests and the benchmark drive the real streaming path with realistic token timing."""

    def __init__(
        self,
        prompt_length: int,
        text_ids: range,
        audio_ids: range,
        stop_id: int,
        total: int,
        text: int = 13,
        audio: int = 26,
    ) -> None:
        self.prompt_length = prompt_length
        self.text_ids, self.audio_ids, self.stop_id = text_ids, audio_ids, stop_id
        self.total, self.text, self.audio = total, text, audio

    def allowed(self, position: int) -> range:
        if position >= self.total:
            return range(self.stop_id, self.stop_id + 1)
        return self.text_ids if position % (self.text + self.audio) < self.text else self.audio_ids

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        keep = self.allowed(input_ids.shape[1] - self.prompt_length)
        masked = torch.full_like(scores, float("-inf"))
        masked[:, keep.start : keep.stop] = scores[:, keep.start : keep.stop]
        return masked
