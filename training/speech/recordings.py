"""Recorded speech for training: real human corpora of ../shared/data/speech and clips rendered
with neural voices, both carried to the GPU machine as one tar of small Opus files with a
`transcripts.tsv` (file, speaker, duration_s, transcript, corpus).

Whole speakers are held out for measurement and never packed (`is_held_out_speaker`):
- `librispeech` (Mini LibriSpeech train-clean-5): the five speakers of `LIBRISPEECH_HELD_OUT`,
  the held-out set of every earlier e2e measurement (chosen by SHA-1 of the speaker id);
- `librispeech_devclean` and `speechocean762`: a quarter of the speakers, by SHA-1 of
  "corpus:speaker" (`HELD_OUT_SHARE_PERCENT`), so the split is stable and not picked by hand.
`picovoice_s2i` (no speaker ids) and `fsdd` (spoken digits) are training data only; `aishell` is
Mandarin and not used.
"""

from __future__ import annotations

import csv
import hashlib
import io
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
TRANSCRIPTS = "transcripts.tsv"
LIBRISPEECH_HELD_OUT = frozenset({"3242", "3664", "6848", "2416", "1737"})
HELD_OUT_SHARE_PERCENT = 25
SPEAKER_SPLIT_CORPORA = frozenset({"librispeech_devclean", "speechocean762"})
# Vorbis (LibriSpeech) is re-encoded as low-bitrate Opus for the carry's size bound; its e2e
# vectors stay those of the original (model card, "Real human speech mixed in")
OPUS_COMPRESSION = 0.98


@dataclass(frozen=True)
class Utterance:
    file: str
    speaker: str
    seconds: float
    text: str
    corpus: str = ""


def is_held_out_speaker(corpus: str, speaker: str) -> bool:
    if corpus == "librispeech":
        return speaker in LIBRISPEECH_HELD_OUT
    if corpus in SPEAKER_SPLIT_CORPORA:
        digest = hashlib.sha1(f"{corpus}:{speaker}".encode()).digest()
        return int.from_bytes(digest[:4], "big") % 100 < HELD_OUT_SHARE_PERCENT
    return False


def read_transcripts(folder: Path) -> list[Utterance]:
    """The rows of a corpus folder's (or an archive's) `transcripts.tsv`."""
    return parse_transcripts((folder / TRANSCRIPTS).read_text(encoding="utf-8"), folder.name)


def parse_transcripts(table: str, corpus: str) -> list[Utterance]:
    rows = csv.DictReader(io.StringIO(table), delimiter="\t", quoting=csv.QUOTE_NONE)
    return [
        Utterance(r["file"], r["speaker"], float(r["duration_s"]), r["transcript"].strip(), r.get("corpus") or corpus)
        for r in rows
    ]


def held_out_utterances(folder: Path) -> list[Utterance]:
    return [u for u in read_transcripts(folder) if is_held_out_speaker(folder.name, u.speaker)]


def training_utterances(folder: Path, max_seconds: float) -> list[Utterance]:
    """Utterances of the training speakers short enough to be kept whole (a cut clip would no
    longer say its transcript)."""
    return [
        u
        for u in read_transcripts(folder)
        if not is_held_out_speaker(folder.name, u.speaker) and u.seconds <= max_seconds and u.text
    ]


def read_mono(path: Path) -> np.ndarray:
    """A sound file as float32 mono at 16 kHz."""
    import soundfile as sf

    from voicerag_cli.audio.io import resample

    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return resample(audio.mean(1), rate, SAMPLE_RATE)


def opus_bytes(audio: np.ndarray) -> bytes:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, audio, SAMPLE_RATE, format="OGG", subtype="OPUS", compression_level=OPUS_COMPRESSION)
    return buffer.getvalue()


class ArchiveWriter:
    """Opus clips and their transcript table, written into one tar (`with ArchiveWriter(path) as w`)."""

    def __init__(self, path: Path) -> None:
        self.tar = tarfile.open(path, "w")  # noqa: SIM115  (closed by close(), after the table)
        self.rows: list[Utterance] = []

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, name: str, audio_or_bytes: np.ndarray | bytes, utterance: Utterance) -> None:
        data = audio_or_bytes if isinstance(audio_or_bytes, bytes) else opus_bytes(audio_or_bytes)
        self._put(name, data)
        self.rows.append(Utterance(name, utterance.speaker, utterance.seconds, utterance.text, utterance.corpus))

    def _put(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        self.tar.addfile(info, io.BytesIO(data))

    def close(self) -> None:
        table = "file\tspeaker\tduration_s\ttranscript\tcorpus\n" + "".join(
            f"{u.file}\t{u.speaker}\t{u.seconds}\t{u.text}\t{u.corpus}\n" for u in self.rows
        )
        self._put(TRANSCRIPTS, table.encode("utf-8"))
        self.tar.close()


def opus_as_carried(path: Path) -> bytes:
    """A clip's bytes for the archive: 16 kHz mono Opus as it is (re-encoding costs CPU time and
    quality), anything else decoded and encoded as such."""
    import soundfile as sf

    info = sf.info(str(path))
    if (info.format, info.subtype, info.samplerate, info.channels) == ("OGG", "OPUS", SAMPLE_RATE, 1):
        return path.read_bytes()
    return opus_bytes(read_mono(path))


def pack_corpora(folders: Iterable[Path], out: Path, max_seconds: float) -> list[Utterance]:
    """The training speakers' utterances of each corpus folder as one Opus tar."""
    with ArchiveWriter(out) as writer:
        for folder in folders:
            for u in training_utterances(folder, max_seconds):
                name = f"{folder.name}/{Path(u.file).stem}.opus"
                # no speaker ids (picovoice_s2i): each utterance its own speaker for the learning curve
                speaker = Path(u.file).stem if u.speaker == "unknown" else u.speaker
                writer.add(
                    name, opus_as_carried(folder / u.file), Utterance(name, speaker, u.seconds, u.text, folder.name)
                )
    return writer.rows


@dataclass(frozen=True)
class Recording:
    text: str
    speaker: str
    corpus: str
    seconds: float
    audio: np.ndarray  # int16 at 16 kHz


def load_archive(archive: Path) -> list[Recording]:
    """Every clip of an archive, decoded."""
    import soundfile as sf

    out = []
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}

        def read(name: str) -> bytes:
            handle = tar.extractfile(members[name])
            if handle is None:
                raise ValueError(f"{name} in {archive} is not a file")
            return handle.read()

        for u in parse_transcripts(read(TRANSCRIPTS).decode("utf-8"), archive.stem):
            audio, rate = sf.read(io.BytesIO(read(u.file)), dtype="float32")
            if rate != SAMPLE_RATE:
                raise ValueError(f"{u.file} in {archive} is {rate} Hz, not {SAMPLE_RATE}")
            pcm = np.clip(audio.reshape(-1) * 32768.0, -32768, 32767).astype(np.int16)
            out.append(Recording(u.text, u.speaker, u.corpus, u.seconds, pcm))
    return out


def speakers_for_hours(recordings: Iterable[tuple[str, str, float]], hours: float) -> set[tuple[str, str]]:
    """Whole (corpus, speaker) pairs of (corpus, speaker, seconds) recordings, in SHA-1 order,
    until their speech reaches `hours`: the learning curve's subsets nest (a larger one holds
    every speaker of a smaller one)."""
    seconds: dict[tuple[str, str], float] = {}
    for corpus, speaker, length in recordings:
        seconds[(corpus, speaker)] = seconds.get((corpus, speaker), 0.0) + length
    order = sorted(seconds, key=lambda k: hashlib.sha1(f"{k[0]}:{k[1]}".encode()).hexdigest())
    chosen: set[tuple[str, str]] = set()
    total = 0.0
    for key in order:
        if total >= hours * 3600:
            break
        chosen.add(key)
        total += seconds[key]
    return chosen
