"""Why the speech embedder encodes *unpadded* mel spectrograms.

Whisper's encoder was trained on 30 s windows. The speech embedder runs it on the question's
real length instead. For held-out sentences spoken by held-out voices this prints, in one process:
  - time: unpadded encode vs the same audio padded to 30 s vs a full faster-whisper transcription;
  - consistency: cosine between the unpadded encoder states and the first frames of the padded
    run, and between the shipped head's vectors computed from either, plus own-sentence R@1 for
    both (the head was trained on unpadded states only).

    nice -n 10 python benchmarks/speech_frontend_padding.py --clips 60
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # training/speech: held-out voices and texts, espeak-ng
HOTPOT = ROOT.parent / "shared" / "data" / "hotpotqa" / "hotpot_dev_distractor_100.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hotpot", type=Path, default=HOTPOT)
    parser.add_argument("--clips", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from faster_whisper import WhisperModel
    from training.speech.espeak import speak
    from training.speech.texts import hotpot_sentences, is_held_out
    from training.speech.voices import EVAL_RATES, EVAL_VOICES, Voice

    from voicerag_cli.config import Settings
    from voicerag_cli.models.distilled.backend import create as create_speech
    from voicerag_cli.models.distilled.frontend import MAX_MEL_FRAMES, WhisperEncoderFrontend
    from voicerag_cli.models.distilled.paths import bundled_whisper_dir
    from voicerag_cli.models.sentence_embedder import create as create_text

    whisper_dir = bundled_whisper_dir()
    assert whisper_dir is not None
    frontend = WhisperEncoderFrontend(whisper_dir, threads=args.threads)
    speech = create_speech(Settings(), None)
    asr = WhisperModel(str(whisper_dir), device="cpu", compute_type="int8", cpu_threads=args.threads)
    sentences = [t for t in dict.fromkeys(hotpot_sentences(args.hotpot)) if is_held_out(t)][: args.clips]
    voices = [Voice(v, r, 50) for v in EVAL_VOICES for r in EVAL_RATES]
    audio = [speak(s, voices[i % len(voices)]) for i, s in enumerate(sentences)]
    targets = create_text(Settings(), None).embed_texts(sentences)

    frontend(audio[0])  # warm-up
    t_unpadded, t_padded, t_asr, frame_cos, vec_cos = [], [], [], [], []
    v_unpadded, v_padded = [], []
    for clip in audio:
        mel = frontend.mel(clip)
        # What Whisper itself sees: the waveform padded with silence to 30 s, then log-mel.
        silence = np.zeros(max(0, 30 * 16_000 - len(clip)), dtype=np.float32)
        padded_mel = np.ascontiguousarray(frontend.features(np.concatenate([clip, silence]))[:, :MAX_MEL_FRAMES])
        started = time.perf_counter()
        states = frontend.encode_mel(mel)
        t_unpadded.append(time.perf_counter() - started)
        started = time.perf_counter()
        padded_states = frontend.encode_mel(padded_mel)[: states.shape[0]]
        t_padded.append(time.perf_counter() - started)
        started = time.perf_counter()
        list(asr.transcribe(clip, language="en", beam_size=1, condition_on_previous_text=False)[0])
        t_asr.append(time.perf_counter() - started)
        num = (states * padded_states).sum(1)
        frame_cos.append(float(np.mean(num / np.linalg.norm(states, axis=1) / np.linalg.norm(padded_states, axis=1))))
        a, b = speech.head(states), speech.head(padded_states)
        v_unpadded.append(a)
        v_padded.append(b)
        vec_cos.append(float(a @ b))

    def r1(vectors: list[np.ndarray]) -> float:
        sims = np.stack(vectors) @ targets.T
        return float((sims.argmax(1) == np.arange(len(vectors))).mean())

    ms = {k: 1000 * statistics.median(v) for k, v in (("unpadded", t_unpadded), ("padded", t_padded), ("asr", t_asr))}
    print(f"{len(audio)} held-out sentences, held-out voices, {args.threads} threads, median ms per clip:")
    print(
        f"  encoder unpadded {ms['unpadded']:.1f}  padded to 30 s {ms['padded']:.1f}  full transcription {ms['asr']:.1f}"
    )
    print(
        f"  padded / unpadded = {ms['padded'] / ms['unpadded']:.1f}x, transcription / unpadded = {ms['asr'] / ms['unpadded']:.1f}x"
    )
    print(f"  encoder states, unpadded vs padded: mean frame cosine {np.mean(frame_cos):.3f}")
    print(f"  head vectors from them: mean cosine {np.mean(vec_cos):.3f}")
    print(f"  own-sentence R@1 among {len(audio)}: unpadded {r1(v_unpadded):.3f}, padded {r1(v_padded):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
