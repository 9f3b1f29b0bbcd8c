"""Real human speech for training the speech embedder: ../shared's LibriSpeech utterances by the
training speakers, carried to the GPU machine as small Opus files and mixed into the rendered
clips there (each utterance several times, augmented differently each time).

Five of the fourteen speakers never leave this machine: the LibriSpeech rows of
benchmarks/e2e_vs_asr.py score only those (`HELD_OUT_SPEAKERS`, chosen by SHA-1 of the speaker id,
so the split is stable and not picked by hand).
"""

from __future__ import annotations

import csv
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
HELD_OUT_SPEAKERS = frozenset({"3242", "3664", "6848", "2416", "1737"})
ARCHIVE = "real_speech.tar"
# Opus at ~12 kbps (libsndfile's compression level 0.98), a quarter of the shared Vorbis files,
# for the carry's 64 MiB bound; e2e vectors of the re-encoded audio keep cosine ~0.99 with the
# originals' (0.975: 0.991, 0.985: 0.980 on 8 utterances)
OPUS_COMPRESSION = 0.98


@dataclass(frozen=True)
class Utterance:
    file: str
    speaker: str
    seconds: float
    text: str


def read_transcripts(folder: Path) -> list[Utterance]:
    """The rows of a LibriSpeech-style `transcripts.tsv` (file, speaker, duration_s, transcript)."""
    with open(folder / "transcripts.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [Utterance(r["file"], r["speaker"], float(r["duration_s"]), r["transcript"].strip()) for r in rows]


def training_utterances(folder: Path, max_seconds: float) -> list[Utterance]:
    """Utterances of the training speakers short enough to be kept whole (a cut clip would no
    longer say its transcript)."""
    return [u for u in read_transcripts(folder) if u.speaker not in HELD_OUT_SPEAKERS and u.seconds <= max_seconds]


def pack_real_speech(folder: Path, out: Path, max_seconds: float) -> list[Utterance]:
    """The training speakers' utterances as 16 kHz mono Opus in one tar, with their transcripts."""
    import soundfile as sf

    from voicerag_cli.audio.io import resample

    chosen = training_utterances(folder, max_seconds)
    with tarfile.open(out, "w") as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        for utterance in chosen:
            audio, rate = sf.read(str(folder / utterance.file), dtype="float32", always_2d=True)
            mono = resample(audio.mean(1), rate, SAMPLE_RATE)
            buffer = io.BytesIO()
            sf.write(buffer, mono, SAMPLE_RATE, format="OGG", subtype="OPUS", compression_level=OPUS_COMPRESSION)
            add(Path(utterance.file).stem + ".opus", buffer.getvalue())
        table = "file\tspeaker\tduration_s\ttranscript\n" + "".join(
            f"{Path(u.file).stem}.opus\t{u.speaker}\t{u.seconds}\t{u.text}\n" for u in chosen
        )
        add("transcripts.tsv", table.encode("utf-8"))
    return chosen


def load_real_speech(archive: Path) -> list[tuple[str, np.ndarray]]:
    """(transcript, int16 audio at 16 kHz) for each utterance in a `pack_real_speech` tar."""
    import soundfile as sf

    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}

        def read(name: str) -> bytes:
            handle = tar.extractfile(members[name])
            assert handle is not None
            return handle.read()

        rows = list(csv.DictReader(io.StringIO(read("transcripts.tsv").decode("utf-8")), delimiter="\t"))
        out = []
        for row in rows:
            audio, rate = sf.read(io.BytesIO(read(row["file"])), dtype="float32")
            if rate != SAMPLE_RATE:
                raise ValueError(f"{row['file']} in {archive} is {rate} Hz, not {SAMPLE_RATE}")
            out.append((row["transcript"], np.clip(audio * 32768.0, -32768, 32767).astype(np.int16)))
    return out
