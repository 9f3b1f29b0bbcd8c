"""Training clips in neural voices: Kokoro-82M (int8 ONNX, CPU) speaking training texts with
blends of its English styles, written as a recordings archive (recordings.py) beside the real
speech. Slow (seconds a clip on one core), so it renders into a folder one clip at a time and
resumes where it stopped; `archive` packs the folder into the tar the GPU machine reads.

Held out: the styles of `HELD_OUT_STYLES` (never blended into a training voice) and the texts
that texts.is_held_out marks. Needs voicerag[tts] and the English styles of
`voicerag voices --install`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from training.speech.recordings import SAMPLE_RATE, ArchiveWriter, Utterance, opus_bytes, parse_transcripts

HELD_OUT_STYLES = frozenset({"af_heart", "am_michael", "bf_emma", "bm_george"})
ENGLISH_PREFIXES = ("af_", "am_", "bf_", "bm_")


@dataclass(frozen=True)
class NeuralVoiceConfig:
    folder: Path  # clips/*.opus and transcripts.tsv, appended as they are rendered
    clips: int  # stop when the folder holds this many
    seed: int = 0
    threads: int = 1
    speed: tuple[float, float] = (0.85, 1.15)


def training_styles(names: list[str]) -> list[str]:
    return sorted(n for n in names if n.startswith(ENGLISH_PREFIXES) and n not in HELD_OUT_STYLES)


def blend(rng: random.Random, styles: list[str]) -> str:
    """Two training styles mixed (a voice no single style has), or one alone."""
    if rng.random() < 0.25:
        return rng.choice(styles)
    a, b = rng.sample(styles, 2)
    w = round(rng.uniform(0.2, 0.8), 2)
    return f"{a}:{w}+{b}:{round(1 - w, 2)}"


def synthesizer(threads: int):  # type: ignore[no-untyped-def]
    """The packaged Kokoro with every installed style, on `threads` cores."""
    import onnxruntime as ort

    from voicerag_cli.config import Settings
    from voicerag_cli.models.kokoro import KokoroSynthesizer, load_voices
    from voicerag_cli.models.split_weights import KOKORO, assemble
    from voicerag_cli.paths import cache_dir

    cache = cache_dir(Settings().paths.cache_dir)
    folder = assemble(KOKORO, cache)
    vocab, voices = load_voices(cache)
    synth = KokoroSynthesizer(folder / KOKORO.target, vocab, voices, None, 1.0)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    synth.session = ort.InferenceSession(str(folder / KOKORO.target), options, providers=["CPUExecutionProvider"])
    return synth


def render_folder(cfg: NeuralVoiceConfig, rows: list[dict[str, str]]) -> int:
    """Render clips of `rows` (text, spoken) until the folder holds `cfg.clips`; returns the count.
    The row order and voices follow `cfg.seed`, so a resumed run continues the same sequence."""
    from voicerag_cli.audio.io import resample
    from voicerag_cli.models.kokoro import SAMPLE_RATE as KOKORO_RATE

    clips = cfg.folder / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    table = cfg.folder / "transcripts.tsv"
    if not table.exists():
        table.write_text("file\tspeaker\tduration_s\ttranscript\tcorpus\n", encoding="utf-8")
    rendered = parse_transcripts(table.read_text(encoding="utf-8"), "kokoro")
    done = int(Path(rendered[-1].file).stem) + 1 if rendered else 0
    rng = random.Random(cfg.seed)
    order = list(range(len(rows)))
    rng.shuffle(order)
    synth = synthesizer(cfg.threads)
    styles = training_styles(list(synth.voices))
    plan = [(order[k % len(order)], blend(rng, styles), rng.uniform(*cfg.speed)) for k in range(cfg.clips)]
    for k in range(done, cfg.clips):
        index, voice, speed = plan[k]
        text, spoken = (" ".join(rows[index][key].split()) for key in ("text", "spoken"))
        pieces = list(synth.stream(spoken, voice, speed))
        if not pieces:
            continue
        audio = resample(np.concatenate(pieces), KOKORO_RATE, SAMPLE_RATE)
        name = f"kokoro/{k:06d}.opus"
        (clips / f"{k:06d}.opus").write_bytes(opus_bytes(audio))
        with table.open("a", encoding="utf-8") as f:  # after the clip: a listed clip always exists
            f.write(f"{name}\t{voice}\t{len(audio) / SAMPLE_RATE:.3f}\t{text}\tkokoro\n")
    return cfg.clips


def archive(folder: Path, out: Path) -> list[Utterance]:
    """A rendered folder as a recordings tar."""
    with ArchiveWriter(out) as writer:
        for u in parse_transcripts((folder / "transcripts.tsv").read_text(encoding="utf-8"), "kokoro"):
            writer.add(u.file, (folder / "clips" / Path(u.file).name).read_bytes(), u)
    return writer.rows
