"""Tiny SONAR assets for tests: a SentencePiece model trained here, random-weight encoders at
small dims saved in the official checkpoint layouts, and fairseq2-style asset cards naming them."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# The tiny text card's languages: a subset, in its own order (ids follow this order).
TINY_LANGS = ["eng_Latn", "zho_Hans", "fra_Latn"]
TEXT_DIMS = {"model_dim": 32, "num_encoder_layers": 2, "num_encoder_attn_heads": 4, "ffn_inner_dim": 64}
SPEECH_ENCODER_DIMS = {"model_dim": 32, "num_encoder_layers": 2, "num_encoder_attn_heads": 4, "ffn_inner_dim": 64}
SPEECH_DIMS = {"model_dim": 32, "num_decoder_layers": 2, "num_decoder_attn_heads": 4, "ffn_inner_dim": 64}
INTERNAL_SYMBOLS = 3  # fairseq2's NLLB tokenizer adds <MINED_DATA>, <MMT_BT_DATA>, <SMT_BT_DATA>

SENTENCES = [
    "The Eiffel Tower is in Paris, the capital of France.",
    "Mount Everest is the highest mountain on Earth.",
    "The Nile is one of the longest rivers in the world.",
    "Photosynthesis turns sunlight, water and carbon dioxide into sugar.",
    "The first modern Olympic Games were held in Athens in 1896.",
    "巴黎是法国的首都，埃菲尔铁塔在那里。",
    "珠穆朗玛峰是世界上最高的山。",
    "La tour Eiffel se trouve à Paris.",
]


def train_spm(folder: Path, vocab_size: int = 120) -> Path:
    """A SentencePiece model laid out like NLLB's (<unk>=0, <s>=1, </s>=2, no <pad>)."""
    import sentencepiece

    folder.mkdir(parents=True, exist_ok=True)
    prefix = folder / "tiny_spm"
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(SENTENCES * 4),
        model_prefix=str(prefix),
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        hard_vocab_limit=False,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    return prefix.with_suffix(".model")


def text_vocab_size(spm_path: Path, langs: list[str] = TINY_LANGS) -> int:
    import sentencepiece

    return sentencepiece.SentencePieceProcessor(model_file=str(spm_path)).get_piece_size() + 1 + len(langs) + 3


def randomize_(model: Any, seed: int) -> None:
    """Deterministic random weights, with norm scales near 1 and positive running variances."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            noise = torch.randn(tensor.shape, generator=generator)
            if name.endswith("running_var"):
                tensor.copy_(0.5 + noise.abs())
            elif ("norm" in name) and name.endswith("weight"):
                tensor.copy_(1.0 + 0.1 * noise)
            else:
                tensor.copy_(0.3 * noise)


# fairseq2 -> fairseq (the layout of the published speech encoder checkpoints), written
# independently of the loader's rules so that the test checks them.
_TO_FAIRSEQ = [
    (r"^encoder_frontend\.post_extract_layer_norm\.", "encoder.w2v_model.layer_norm."),
    (r"^encoder_frontend\.model_dim_proj\.", "encoder.w2v_model.post_extract_proj."),
    (r"^encoder\.layers\.(\d+)\.conv_layer_norm\.", r"encoder.w2v_model.encoder.layers.\1.conv_module.layer_norm."),
    (r"^encoder\.layers\.(\d+)\.conv\.", r"encoder.w2v_model.encoder.layers.\1.conv_module."),
    (r"^encoder\.layers\.(\d+)\.ffn(\d)_layer_norm\.", r"encoder.w2v_model.encoder.layers.\1.ffn\2.layer_norm."),
    (r"^encoder\.layers\.(\d+)\.ffn(\d)\.inner_proj\.", r"encoder.w2v_model.encoder.layers.\1.ffn\2.w_1."),
    (r"^encoder\.layers\.(\d+)\.ffn(\d)\.output_proj\.", r"encoder.w2v_model.encoder.layers.\1.ffn\2.w_2."),
    (
        r"^encoder\.layers\.(\d+)\.self_attn\.sdpa\.r_proj\.",
        r"encoder.w2v_model.encoder.layers.\1.self_attn.linear_pos.",
    ),
    (r"^encoder\.layers\.(\d+)\.self_attn\.sdpa\.u_bias$", r"encoder.w2v_model.encoder.layers.\1.self_attn.pos_bias_u"),
    (r"^encoder\.layers\.(\d+)\.self_attn\.sdpa\.v_bias$", r"encoder.w2v_model.encoder.layers.\1.self_attn.pos_bias_v"),
    (
        r"^encoder\.layers\.(\d+)\.self_attn\.(q|k|v)_proj\.",
        r"encoder.w2v_model.encoder.layers.\1.self_attn.linear_\2.",
    ),
    (
        r"^encoder\.layers\.(\d+)\.self_attn\.output_proj\.",
        r"encoder.w2v_model.encoder.layers.\1.self_attn.linear_out.",
    ),
    (r"^encoder\.layers\.(\d+)\.self_attn_layer_norm\.", r"encoder.w2v_model.encoder.layers.\1.self_attn_layer_norm."),
    (r"^encoder\.layers\.(\d+)\.layer_norm\.", r"encoder.w2v_model.encoder.layers.\1.final_layer_norm."),
    (r"^layer_norm\.", "encoder.w2v_model.encoder.layer_norm."),
    (r"^encoder_pooler\.decoder_frontend\.embed\.", "decoder.embed_tokens."),
    (r"^encoder_pooler\.projection_out\.weight$", "decoder.embed_out"),
    (
        r"^encoder_pooler\.decoder\.layers\.(\d+)\.encoder_decoder_attn_layer_norm\.",
        r"decoder.layers.\1.encoder_attn_layer_norm.",
    ),
    (
        r"^encoder_pooler\.decoder\.layers\.(\d+)\.encoder_decoder_attn\.output_proj\.",
        r"decoder.layers.\1.encoder_attn.out_proj.",
    ),
    (r"^encoder_pooler\.decoder\.layers\.(\d+)\.encoder_decoder_attn\.", r"decoder.layers.\1.encoder_attn."),
    (r"^encoder_pooler\.decoder\.layers\.(\d+)\.self_attn\.output_proj\.", r"decoder.layers.\1.self_attn.out_proj."),
    (r"^encoder_pooler\.decoder\.layers\.(\d+)\.ffn\.inner_proj\.", r"decoder.layers.\1.fc1."),
    (r"^encoder_pooler\.decoder\.layers\.(\d+)\.ffn\.output_proj\.", r"decoder.layers.\1.fc2."),
    (r"^encoder_pooler\.decoder\.layers\.(\d+)\.ffn_layer_norm\.", r"decoder.layers.\1.final_layer_norm."),
    (r"^encoder_pooler\.decoder\.layers\.(\d+)\.", r"decoder.layers.\1."),
]


def to_fairseq_speech_layout(state: dict[str, Any]) -> dict[str, Any]:
    """A fairseq2-named speech encoder state dict in fairseq's names, with extras that the
    published checkpoints carry (w2v-BERT's masking embedding, a version marker)."""
    import torch

    out: dict[str, Any] = {}
    for key, value in state.items():
        for pattern, replacement in _TO_FAIRSEQ:
            new_key, count = re.subn(pattern, replacement, key)
            if count:
                key = new_key
                break
        else:
            raise AssertionError(f"no fairseq name for {key}")
        out[key] = value
    dim = state["encoder_frontend.model_dim_proj.weight"].shape[0]
    out["encoder.w2v_model.mask_emb"] = torch.zeros(dim)
    out["decoder.version"] = torch.tensor([3.0])
    return out


def write_cards(path: Path, cards: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(cards, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def text_card(checkpoint: str, tokenizer: str, vocab_size: int, langs: list[str] = TINY_LANGS) -> dict[str, Any]:
    return {
        "name": "text_sonar_basic_encoder",
        "model_family": "transformer_encoder",
        "model_arch": "basic",
        "model_config": {"_set_": TEXT_DIMS, "vocab_info": {"_set_": {"size": vocab_size}}},
        "checkpoint": checkpoint,
        "tokenizer": tokenizer,
        "tokenizer_family": "nllb",
        "tokenizer_config": {"_set_": {"default_lang": langs[0], "langs": langs}},
    }


def speech_cards(checkpoints: dict[str, str]) -> list[dict[str, Any]]:
    """A tiny base card plus one card per language (english arch for eng, as published)."""
    cards: list[dict[str, Any]] = [
        {
            "name": "sonar_speech_encoder_base",
            "model_family": "sonar_speech",
            "model_arch": "non_english",
            "model_config": {"_set_": SPEECH_DIMS, "w2v2_encoder_config": {"_set_": SPEECH_ENCODER_DIMS}},
        }
    ]
    for lang, checkpoint in checkpoints.items():
        card: dict[str, Any] = {
            "name": f"sonar_speech_encoder_{lang}",
            "base": "sonar_speech_encoder_base",
            "checkpoint": checkpoint,
        }
        if lang == "eng":
            card["model_arch"] = "english"
        cards.append(card)
    return cards


def espeak_wav(text: str, path: Path, voice: str = "en-us") -> Path:
    if shutil.which("espeak-ng") is None:
        raise AssertionError("espeak-ng is required (apt-get install espeak-ng)")
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    return path


@dataclass(frozen=True)
class TinyAssets:
    asset_dir: Path  # the cards (what [sonar] asset_dir points to)
    spm: Path
    text_checkpoint: Path
    speech_checkpoints: dict[str, Path]  # by speech language


def build_tiny_assets(folder: Path) -> TinyAssets:
    """Tiny random-weight SONAR encoders built with voicerag's modules from the cards' own
    configs, saved as the published files are laid out: the text encoder as fairseq2 keys under
    "model", the English speech encoder with fairseq keys, the Mandarin one with fairseq2 keys."""
    import torch

    from voicerag_cli.models.sonar.configs import speech_config, text_config
    from voicerag_cli.models.sonar.speech_model import SonarSpeechEncoder
    from voicerag_cli.models.sonar.text_model import SonarTextEncoder

    folder = folder.resolve()
    files = folder / "files"
    spm = train_spm(files)
    vocab = text_vocab_size(spm)
    card = text_card("files/sonar_text_encoder.pt", "files/tiny_spm.model", vocab)
    text_model = SonarTextEncoder(text_config("basic", card["model_config"], "test"))
    randomize_(text_model, seed=1)
    text_checkpoint = files / "sonar_text_encoder.pt"
    torch.save({"model": text_model.state_dict()}, text_checkpoint)

    speech = speech_cards({"eng": "files/spenc.eng.pt", "cmn": str(files / "spenc.v5ap.cmn.pt")})
    config = speech_config("english", speech[0]["model_config"], "test")
    checkpoints = {}
    for seed, (lang, layout) in enumerate([("eng", "fairseq"), ("cmn", "fairseq2")], start=2):
        model = SonarSpeechEncoder(config)
        randomize_(model, seed=seed)
        state = model.state_dict()
        checkpoints[lang] = files / ("spenc.eng.pt" if lang == "eng" else "spenc.v5ap.cmn.pt")
        torch.save({"model": to_fairseq_speech_layout(state) if layout == "fairseq" else state}, checkpoints[lang])

    # Relative paths resolve against the card file; one absolute path covers that form too.
    write_cards(folder / "text.yaml", [card])
    write_cards(folder / "speech.yaml", speech)
    return TinyAssets(folder, spm, text_checkpoint, checkpoints)
