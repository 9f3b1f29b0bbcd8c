"""Write the SONAR parity fixtures in tests/fixtures/parity/sonar/ by running the OFFICIAL code.

Not part of the package and never imported by it or by the tests: the tests only read what this
script wrote. It needs Meta's sonar-space on fairseq2, whose native part (fairseq2n 0.8.1) pins
torch==2.9.1, so it runs in a scratch environment of its own, never in the project's:

    python3 -m venv /tmp/venv-sonar
    /tmp/venv-sonar/bin/pip install torch==2.9.1        # PyPI's wheel: the venv ends up 7.3 GB
    echo torch==2.9.1 > /tmp/c.txt
    /tmp/venv-sonar/bin/pip install -c /tmp/c.txt fairseq2==0.8.1 fairseq2n==0.8.1 sonar-space==0.5.0 \\
        torchaudio==2.9.1 soundfile soxr pyyaml sentencepiece
    PYTHONPATH=src:tests /tmp/venv-sonar/bin/python scripts/make_sonar_fixtures.py --out tests/fixtures/parity/sonar

What runs where it matters (tiny random-weight models, official checkpoint layouts):
- asset cards: the fixture's own cards/*.yaml are fairseq2's user asset directory
  (FAIRSEQ2_USER_ASSET_DIR), so fairseq2 parses the very cards voicerag's loader reads (arch,
  `model_config` overrides, base card, relative file paths);
- models: SONAR's hubs build them from those cards (`get_model_config`, `create_new_model`); the
  weights are saved in the published layouts (text: fairseq2 keys under "model"; English speech:
  fairseq keys, as spenc.eng.pt; Mandarin speech: fairseq2 keys) and read back by SONAR's own
  `load_model` (its fairseq -> fairseq2 converter for the speech layout), checked equal;
- outputs: the tokenizer from `load_tokenizer(card)` (ids of `create_encoder(lang=...)`),
  `TextToEmbeddingModelPipeline(card, card).predict`, the pipeline's WaveformToFbankConverter and
  `SpeechToEmbeddingModelPipeline(card).predict`, one clip at a time and as one padded batch.
The SentencePiece model is trained here on a few sentences (tests/tiny_sonar.py), and the random
weights come from tiny_sonar.randomize_ (seeded), so the script is reproducible.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

TEXT_CARD = "tiny_sonar_text_encoder"
SPEECH_BASE = "tiny_sonar_speech_encoder_base"
SPEECH_CARDS = {"eng": "tiny_sonar_speech_encoder_eng", "cmn": "tiny_sonar_speech_encoder_cmn"}
# The clips: espeak-ng speech in each encoder's language (frame counts odd and even).
CLIPS = {
    "eng_q1": ("en-us", "Where is the Eiffel Tower?"),
    "eng_q2": ("en-us", "How high is Mount Everest?"),
    "cmn_q1": ("cmn", "珠穆朗玛峰有多高？"),
}
TEXT_LANGS = ["eng_Latn", "zho_Hans", "fra_Latn"]


def espeak_16k_int16(voice: str, text: str) -> np.ndarray:
    """16 kHz int16 samples: what the fixture stores (exactly representable as x / 32768)."""
    import soundfile as sf
    import soxr

    wav = subprocess.run(["espeak-ng", "-v", voice, "--stdout", text], capture_output=True, check=True).stdout
    samples, rate = sf.read(io.BytesIO(wav), dtype="float32")
    samples = soxr.resample(samples, rate, 16_000, quality="HQ")
    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int16)


def write_cards(out: Path, vocab_size: int) -> None:
    from tiny_sonar import SPEECH_DIMS, SPEECH_ENCODER_DIMS, TEXT_DIMS, write_cards

    text = {
        "name": TEXT_CARD,
        "model_family": "transformer_encoder",
        "model_arch": "basic",
        "model_config": {"_set_": TEXT_DIMS, "vocab_info": {"_set_": {"size": vocab_size}}},
        "checkpoint": "../text_encoder.pt",
        "tokenizer": "../tiny_spm.model",
        "tokenizer_family": "nllb",
        "tokenizer_config": {"_set_": {"default_lang": TEXT_LANGS[0], "langs": TEXT_LANGS}},
    }
    speech: list[dict[str, Any]] = [
        {
            "name": SPEECH_BASE,
            "model_family": "sonar_speech",
            "model_arch": "non_english",
            "model_config": {"_set_": SPEECH_DIMS, "w2v2_encoder_config": {"_set_": SPEECH_ENCODER_DIMS}},
        },
        {"name": SPEECH_CARDS["eng"], "base": SPEECH_BASE, "model_arch": "english", "checkpoint": "../spenc.eng.pt"},
        {"name": SPEECH_CARDS["cmn"], "base": SPEECH_BASE, "checkpoint": "../spenc.cmn.pt"},
    ]
    write_cards(out / "cards" / "text.yaml", [text])
    write_cards(out / "cards" / "speech.yaml", speech)


def official_config(hub: Any, card: str) -> dict[str, Any]:
    """The config fairseq2 parsed from the card, as plain data (enums by name)."""
    from fairseq2.runtime.dependency import get_dependency_resolver
    from fairseq2.utils.structured import ValueConverter

    converter = get_dependency_resolver().resolve(ValueConverter)
    return json.loads(json.dumps(converter.unstructure(hub.get_model_config(card)), default=str))


def same_state(a: dict[str, Any], b: dict[str, Any]) -> None:
    import torch

    assert set(a) == set(b), sorted(set(a) ^ set(b))[:5]
    for key in a:
        assert torch.equal(a[key], b[key]), key


def text_part(out: Path, seed: int) -> dict[str, Any]:
    import torch
    from fairseq2.data.tokenizers import load_tokenizer
    from sonar.inference_pipelines.text import TextToEmbeddingModelPipeline
    from sonar.models.sonar_text import get_sonar_text_encoder_hub

    from tiny_sonar import SENTENCES, randomize_

    hub = get_sonar_text_encoder_hub()
    model = hub.create_new_model(hub.get_model_config(TEXT_CARD))
    randomize_(model, seed=seed)
    torch.save({"model": model.state_dict()}, out / "text_encoder.pt")
    same_state(hub.load_model(TEXT_CARD).state_dict(), model.state_dict())

    tokenizer = load_tokenizer(TEXT_CARD)
    texts = [*SENTENCES, "unseen words: Zürich 東京 42", " ".join(SENTENCES * 12)]  # the last > 514 tokens
    pipeline = TextToEmbeddingModelPipeline(encoder=TEXT_CARD, tokenizer=TEXT_CARD)
    ids: dict[str, list[list[int]]] = {}
    embeddings: dict[str, np.ndarray] = {}
    for lang in TEXT_LANGS:
        encoder = tokenizer.create_encoder(lang=lang)
        ids[lang] = [encoder(text).tolist() for text in texts]
        embeddings[f"text_{lang}"] = pipeline.predict(texts, source_lang=lang, batch_size=3).numpy()
    return {
        "config": official_config(hub, TEXT_CARD),
        "texts": texts,
        "ids": ids,
        "vocab_size": tokenizer.vocab_info.size,
        "pad_idx": tokenizer.vocab_info.pad_idx,
        "eos_idx": tokenizer.vocab_info.eos_idx,
        "max_seq_len": int(pipeline.model.encoder_frontend.pos_encoder.max_seq_len),
        "arrays": embeddings,
    }


def speech_part(out: Path, seed: int, clips: dict[str, np.ndarray]) -> dict[str, Any]:
    import torch
    from sonar.inference_pipelines.speech import SpeechToEmbeddingModelPipeline
    from sonar.models.sonar_speech import get_sonar_speech_encoder_hub

    from tiny_sonar import randomize_, to_fairseq_speech_layout

    hub = get_sonar_speech_encoder_hub()
    arrays: dict[str, np.ndarray] = {}
    frames: dict[str, int] = {}
    configs = {lang: official_config(hub, card) for lang, card in SPEECH_CARDS.items()}
    layouts = {"eng": "fairseq", "cmn": "fairseq2"}
    for offset, (lang, card) in enumerate(SPEECH_CARDS.items()):
        model = hub.create_new_model(hub.get_model_config(card))
        randomize_(model, seed=seed + offset)
        state = model.state_dict()
        saved = to_fairseq_speech_layout(state) if layouts[lang] == "fairseq" else state
        torch.save({"model": saved}, out / f"spenc.{lang}.pt")
        same_state(hub.load_model(card).state_dict(), state)  # SONAR reads the file back as built

        pipeline = SpeechToEmbeddingModelPipeline(encoder=card)
        waves = {name: torch.from_numpy(c.astype(np.float32) / 32768.0)[None] for name, c in clips.items()}
        for name, wave in waves.items():
            if lang == "eng":  # features do not depend on the model: record them once
                fbank = pipeline.convert_to_fbank({"waveform": wave.T, "sample_rate": 16_000.0})["fbank"]
                arrays[f"fbank_{name}"] = fbank.numpy()
                frames[name] = int(fbank.shape[0])
            arrays[f"speech_{lang}_{name}"] = pipeline.predict([wave], batch_size=1)[0].numpy()
        # One padded batch (SONAR pads fbank with zeros to the longest, and to an even count).
        arrays[f"speech_{lang}_batch"] = pipeline.predict(list(waves.values()), batch_size=len(waves)).numpy()
    return {"configs": configs, "frames": frames, "layouts": layouts, "arrays": arrays}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=20261203)
    args = parser.parse_args()
    out: Path = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    from tiny_sonar import text_vocab_size, train_spm

    spm = train_spm(out)
    (out / "tiny_spm.vocab").unlink(missing_ok=True)
    write_cards(out, text_vocab_size(spm, TEXT_LANGS))
    # fairseq2 reads its user asset directory when it first builds its registry: set it first.
    os.environ["FAIRSEQ2_USER_ASSET_DIR"] = str(out / "cards")
    os.environ["FAIRSEQ2_CACHE_DIR"] = str(out.parent / ".fairseq2-cache")

    import fairseq2
    import sonar
    import torch

    torch.set_num_threads(1)
    clips = {name: espeak_16k_int16(voice, text) for name, (voice, text) in CLIPS.items()}
    text = text_part(out, args.seed)
    speech = speech_part(out, args.seed + 1, clips)
    np.savez_compressed(out / "inputs.npz", **clips)
    np.savez(out / "reference.npz", **text.pop("arrays"), **speech.pop("arrays"))
    reference = {
        "produced_by": {
            "sonar-space": getattr(sonar, "__version__", "0.5.0"),
            "fairseq2": fairseq2.__version__,
            "torch": torch.__version__,
        },
        "cards": {"text": TEXT_CARD, "speech": SPEECH_CARDS},
        "clips": {name: text for name, (_, text) in CLIPS.items()},
        "text": text,
        "speech": speech,
    }
    (out / "reference.json").write_text(json.dumps(reference, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    shutil.rmtree(out.parent / ".fairseq2-cache", ignore_errors=True)
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out} ({total / 1e6:.2f} MB)", file=sys.stderr)


if __name__ == "__main__":
    main()
