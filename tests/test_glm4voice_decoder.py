"""GLM-4-Voice speech decoder (flow matching + HiFT): a tiny random-weight checkpoint in the
public layout (config.yaml with HyperPyYAML tags, flow.pt, weight-normalised hift.pt), loaded
through the real loader; streaming checked against whole-utterance decoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tiny_glm4voice import REAL_DECODER_SIZES, write_speech_decoder
from voicerag_cli.errors import ModelError
from voicerag_cli.models.glm4voice.decoder_config import FlowConfig, HiftConfig, read_decoder_config
from voicerag_cli.models.glm4voice.speech_decoder import SpeechDecoder

RNG = np.random.default_rng(0)
TOKENS = [int(t) for t in RNG.integers(0, 64, 50)]

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def decoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_speech_decoder(tmp_path_factory.mktemp("decoder"))


@pytest.fixture(scope="module")
def decoder(decoder_dir: Path) -> SpeechDecoder:
    return SpeechDecoder.load(decoder_dir)


def test_published_config_is_read_as_data(tmp_path: Path) -> None:
    from tiny_glm4voice import DECODER_YAML

    path = tmp_path / "config.yaml"
    path.write_text(DECODER_YAML.format(**REAL_DECODER_SIZES))
    config = read_decoder_config(path)
    assert config.flow == FlowConfig()  # the defaults are the published GLM-4-Voice decoder
    assert config.hift == HiftConfig()
    assert config.hift.samples_per_frame == 256 and config.flow.frames(25) == 172  # int(25 / 12.5 * 22050 / 256)


def test_offline_decode_length_and_range(decoder: SpeechDecoder) -> None:
    audio = decoder.decode(TOKENS)
    assert decoder.sample_rate == 22050
    assert audio.dtype == np.float32 and len(audio) == decoder.config.flow.frames(len(TOKENS)) * 256
    assert np.isfinite(audio).all() and np.abs(audio).max() <= 0.99 and audio.std() > 0
    assert np.array_equal(audio, decoder.decode(TOKENS))  # fixed noise: deterministic


def test_one_final_block_streams_exactly_the_offline_decode(decoder: SpeechDecoder) -> None:
    stream = decoder.stream()
    assert np.allclose(stream.push(TOKENS, final=True), decoder.decode(TOKENS), atol=1e-5)


def test_streamed_vocoder_equals_whole_utterance_vocoding(decoder: SpeechDecoder) -> None:
    """Chunk boundaries are inaudible at the vocoder stage: the streamed audio of a mel sequence
    equals vocoding it in one pass, whatever the chunking (the real kernel sizes and upsampling
    rates are used, so the receptive field is the real one)."""
    mel = decoder.decode_mel(TOKENS)
    whole = decoder.hift.inference(mel)[0].numpy()
    for cuts in ([40, 41, 120, 200], [17, 90, 91, 250, 300]):
        stream = decoder.stream()
        chunks, start = [], 0
        for end in [*cuts, mel.shape[-1]]:
            stream.mel = mel[:, :, :end]
            chunks.append(stream._vocode(final=end == mel.shape[-1]))
            start = end
        assert start == mel.shape[-1]
        streamed = np.concatenate(chunks)
        assert streamed.shape == whole.shape
        assert np.abs(streamed - whole).max() < 1e-4


def test_streaming_blocks_cover_the_answer_once(decoder: SpeechDecoder) -> None:
    """Blocks of 10, 25 and the rest: every frame is emitted once, in order, the first audio
    comes with the first block, and the result is continuous at the block joins."""
    stream = decoder.stream()
    first = stream.push(TOKENS[:10])
    second = stream.push(TOKENS[10:35])
    last = stream.push(TOKENS[35:], final=True)
    frames = decoder.config.flow.frames
    assert len(first) == (frames(10 - 3) - 16) * 256  # minus 3 held tokens and 16 held vocoder frames
    assert len(first) + len(second) == (frames(35 - 3) - 16) * 256
    streamed = np.concatenate([first, second, last])
    offline = decoder.decode(TOKENS)
    assert len(streamed) == len(offline)
    assert np.isfinite(streamed).all()
    # The mel of the first decided frames comes from the first block alone; the decided mel is
    # never rewritten and every join is cross-faded from the held version.
    assert stream.mel is not None and stream.mel.shape[-1] == frames(len(TOKENS))
    with pytest.raises(RuntimeError):
        stream.push([1])


def test_weight_norm_pairs_fold_like_torch(decoder_dir: Path, decoder: SpeechDecoder) -> None:
    state = torch.load(decoder_dir / "hift.pt", weights_only=True)
    reference = torch.nn.utils.parametrizations.weight_norm(torch.nn.Conv1d(80, 16, 7, padding=3))
    reference.parametrizations.weight.original0.data = state["conv_pre.weight_g"]
    reference.parametrizations.weight.original1.data = state["conv_pre.weight_v"]
    assert torch.allclose(decoder.hift.conv_pre.weight, reference.weight, atol=1e-6)


def test_strict_loading_and_missing_files(decoder_dir: Path, tmp_path: Path) -> None:
    def copy(target: Path, skip: str = "") -> Path:
        target.mkdir()
        for name in ("config.yaml", "flow.pt", "hift.pt"):
            if name != skip:
                (target / name).write_bytes((decoder_dir / name).read_bytes())
        return target

    for name in ("config.yaml", "flow.pt", "hift.pt"):
        with pytest.raises(ModelError, match=f"missing {name}"):
            SpeechDecoder.load(copy(tmp_path / name.replace(".", "_"), skip=name))
    with pytest.raises(ModelError, match="folder not found"):
        SpeechDecoder.load(tmp_path / "absent")

    renamed = copy(tmp_path / "renamed")
    flow = torch.load(renamed / "flow.pt", weights_only=True)
    flow["encoder.encoders.0.self_attn.linear_qq.weight"] = flow.pop("encoder.encoders.0.self_attn.linear_q.weight")
    torch.save(flow, renamed / "flow.pt")
    with pytest.raises(ModelError, match=r"1 missing .*linear_q.weight.*1 unexpected"):
        SpeechDecoder.load(renamed)

    pickled = copy(tmp_path / "pickled")
    torch.save({"model": torch.nn.Linear(2, 2)}, pickled / "hift.pt")  # a pickled module, not tensors
    with pytest.raises(ModelError, match="hift"):
        SpeechDecoder.load(pickled)


def test_a_pickle_holding_more_than_tensors_needs_the_explicit_opt_in(decoder_dir: Path, tmp_path: Path) -> None:
    """A flow.pt that also pickles a training-args object (as training scripts often save): refused
    by default with a message naming the opt-in, never silently unpickled; loaded with it, to the
    same weights as the plain file."""
    import argparse

    folder = tmp_path / "extra"
    folder.mkdir()
    for name in ("config.yaml", "hift.pt"):
        (folder / name).write_bytes((decoder_dir / name).read_bytes())
    flow = torch.load(decoder_dir / "flow.pt", weights_only=True)
    torch.save({**flow, "args": argparse.Namespace(lr=1e-4)}, folder / "flow.pt")
    with pytest.raises(ModelError, match=r"holds more than tensors.*glm4voice\.allow_pickle' = true"):
        SpeechDecoder.load(folder)
    # with the opt-in the file is unpickled, and still must be names -> tensors only
    with pytest.raises(ModelError, match="not a plain state dict of tensors"):
        SpeechDecoder.load(folder, allow_pickle=True)
    torch.save(_TensorDict(flow), folder / "flow.pt")
    with pytest.raises(ModelError, match="allow_pickle"):
        SpeechDecoder.load(folder)
    loaded = SpeechDecoder.load(folder, allow_pickle=True)
    plain = SpeechDecoder.load(decoder_dir)
    for (name, mine), (_, theirs) in zip(
        loaded.flow.state_dict().items(), plain.flow.state_dict().items(), strict=True
    ):
        assert torch.equal(mine, theirs), name


class _TensorDict(dict):
    """A dict subclass: weights_only refuses to build it, a full unpickle does."""


@pytest.mark.slow
def test_fast_and_official_block_schedules_against_whole_utterance_decoding(decoder: SpeechDecoder) -> None:
    """Streaming a 160-token answer with the default schedule (10, 25, 50, ...) and upstream's
    (25, 50, ...): both give the whole answer's length; the first audio comes after 10 rather
    than 25 tokens; and the fast one is no further from whole-utterance decoding than upstream's
    schedule (relative mel and waveform error within 25 % of it)."""
    from tiny_glm4voice import stream_in_blocks

    tokens = [int(t) for t in np.random.default_rng(5).integers(0, 64, 160)]
    whole_mel, whole = decoder.decode_mel(tokens), decoder.decode(tokens)
    errors = {}
    for first in (10, 25):
        chunks, stream = stream_in_blocks(decoder, tokens, first)
        audio = np.concatenate(chunks)
        assert len(audio) == len(whole) and len(chunks[0]) > 0
        assert stream.mel is not None
        mel_error = float((stream.mel - whole_mel).norm() / whole_mel.norm())
        errors[first] = (mel_error, float(np.linalg.norm(audio - whole) / np.linalg.norm(whole)))
    assert errors[10][0] < 1.25 * errors[25][0] and errors[10][1] < 1.25 * errors[25][1], errors
