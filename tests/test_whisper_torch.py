"""The torch Whisper front-end that featurizes training speech on the GPU must compute what the
shipped CTranslate2 front-end computes at query time: log-mel and encoder states, batched with
padding, against each clip run alone through the real bundled model."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from training.speech.espeak import speak
from training.speech.voices import EVAL_VOICES, Voice

from voicerag_cli.models.distilled.frontend import WhisperEncoderFrontend
from voicerag_cli.models.distilled.paths import bundled_whisper_dir

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def test_batched_torch_frontend_equals_ctranslate2_per_clip() -> None:
    from training.speech.whisper_torch import LogMel, WhisperEncoder, mel_filters, read_ct2_variables

    model_dir = bundled_whisper_dir()
    assert model_dir is not None
    reference = WhisperEncoderFrontend(model_dir, compute_type="float32")
    clips = [
        speak("How many legs does a spider have?", Voice(EVAL_VOICES[0], 160, 50)),
        speak("Who wrote Pride and Prejudice, and when was it first published?", Voice(EVAL_VOICES[1], 150, 40)),
    ]
    lengths = torch.tensor([len(c) for c in clips])
    batch = torch.zeros(2, int(lengths.max()))
    for row, clip in enumerate(clips):
        batch[row, : len(clip)] = torch.from_numpy(clip)
    mel, frames = LogMel(mel_filters())(batch, lengths)
    encoder = WhisperEncoder(read_ct2_variables(model_dir / "model.bin")).eval()
    with torch.no_grad():
        states, counts = encoder(mel, frames)
    for row, clip in enumerate(clips):
        expected_mel = reference.mel(clip)
        n = int(frames[row])
        assert n == expected_mel.shape[1]
        np.testing.assert_allclose(mel[row, :, :n].numpy(), expected_mel, atol=1e-4)
        expected = reference(clip)
        got = states[row, : int(counts[row])].numpy()
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() / np.abs(expected).max() < 1e-4
