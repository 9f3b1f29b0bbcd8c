"""The `glm4voice` generator end to end with tiny random-weight checkpoints of all three parts
(written in the public layouts, loaded through the real loaders): real espeak-ng questions, a
real index, the real pipeline and CLI."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import LogitsProcessorList

from tiny_glm4voice import (
    InterleavePattern,
    write_chatglm_lm,
    write_speech_decoder,
    write_speech_tokenizer,
)
from voicerag_cli.config import Settings
from voicerag_cli.errors import ModelError
from voicerag_cli.index.builder import build_index
from voicerag_cli.index.hnsw_store import IndexRoot
from voicerag_cli.models.base import Passage, Query, StreamingGenerator
from voicerag_cli.models.glm4voice.backend import Glm4VoiceGenerator, create
from voicerag_cli.models.glm4voice.protocol import BEGIN_AUDIO
from voicerag_cli.models.glm4voice.speech_tokenizer import SpeechTokenizerConfig
from voicerag_cli.pipeline.ask import AskPipeline
from voicerag_cli.registry import Registry
from vrtest import run_cli

REPO = Path(__file__).resolve().parents[1]
CODES = 64  # speech-token vocabulary shared by the tiny tokenizer, LM and decoder
QUESTION = "Who built the first running machine?"


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # shared CPU cores: oversubscribed threads slow tiny models down
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("glm4voice")
    tokenizer = SpeechTokenizerConfig(
        d_model=32,
        encoder_layers=2,
        encoder_attention_heads=2,
        encoder_ffn_dim=64,
        pooling_position=2,
        quantize_position=2,
        quantize_vocab_size=CODES,
    )
    return {
        "tokenizer_path": write_speech_tokenizer(root / "glm-4-voice-tokenizer", tokenizer),
        # the published layout: ChatGLM weights and upstream's tiktoken tokenizer files, no code
        "lm_path": write_chatglm_lm(root / "glm-4-voice-9b", CODES)[0],
        "decoder_path": write_speech_decoder(root / "glm-4-voice-decoder"),
    }


def settings_for(folders: dict[str, Path], **extra: object) -> Settings:
    values = {f"glm4voice.{key}": str(path) for key, path in folders.items()}
    values |= {f"glm4voice.{key}": value for key, value in {"device": "cpu", "seed": 3, **extra}.items()}
    return Settings().updated({"models.generator": "glm4voice", **values})


@pytest.fixture(scope="module")
def question(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = subprocess.run(["espeak-ng", "--stdout", QUESTION], capture_output=True, check=True)
    samples, rate = sf.read(io.BytesIO(result.stdout), dtype="float32")
    path = tmp_path_factory.mktemp("question") / "q.wav"
    sf.write(str(path), samples, rate)
    return path


class Recorder:
    """An AnswerListener that keeps what was streamed."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.audio: list[np.ndarray] = []

    def on_text(self, delta: str) -> None:
        self.text.append(delta)

    def on_audio(self, samples: np.ndarray, sample_rate: int) -> None:
        assert sample_rate == 22_050
        self.audio.append(samples)


def shape_answers(generator: Glm4VoiceGenerator, total: int) -> None:
    """Make the random LM answer in GLM-4-Voice's shape (13 text, 26 speech tokens, ...)."""
    tokens = generator.tokens
    text = range(min(tokens.prefix_ids + tokens.stop_ids))  # the special tokens follow the text vocabulary
    audio = range(tokens.audio_offset, tokens.audio_offset + CODES)
    generator.logits_processors = lambda prompt: LogitsProcessorList(
        [InterleavePattern(prompt, text, audio, tokens.stop_ids[0], total)]
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir whose index "default" covers examples/docs (where the CLI looks for it)."""
    data = tmp_path_factory.mktemp("data")
    registry = Registry(Settings())
    build_index(
        IndexRoot(data / "indexes"), "default", [REPO / "examples" / "docs"], Settings().index, registry.text_embedder
    )
    return data


@pytest.fixture(scope="module")
def pipeline(folders: dict[str, Path], data_dir: Path) -> AskPipeline:
    registry = Registry(settings_for(folders))
    return AskPipeline(registry, IndexRoot(data_dir / "indexes").open("default"), k=3, ef_search=64)


def test_spoken_question_to_streamed_spoken_answer(pipeline: AskPipeline, question: Path, tmp_path: Path) -> None:
    from voicerag_cli.audio.io import read_audio

    generator = pipeline.registry.generator()
    assert isinstance(generator, Glm4VoiceGenerator) and isinstance(generator, StreamingGenerator)
    shape_answers(generator, total=120)  # 120 = 3 x (13 + 26) + 3: 78 speech tokens
    recorder = Recorder()
    generator.listener = recorder
    clip = read_audio(question)
    result = pipeline.ask_audio(clip, "asr")
    generator.listener = None

    assert "running machine" in (result.transcript or "").lower()
    assert result.sources[0].source.endswith("bicycles.md")
    speech = result.answer.speech
    assert speech is not None and speech.sample_rate == 22_050
    stats = generator.stats
    assert stats.generated_tokens == 121 and stats.speech_tokens == 78  # + the closing <|user|>
    assert len(speech.samples) == pipeline.registry.generator().decoder.config.flow.frames(78) * 256
    # streamed pieces add up to the answer; blocks of 10, 25 and the rest gave three chunks
    assert "".join(recorder.text).strip() == result.answer.text
    assert np.array_equal(np.concatenate(recorder.audio), speech.samples)
    assert len(stats.chunks) == 3
    assert stats.first_audio_ms is not None and stats.first_audio_ms < stats.chunks[-1][0] <= stats.total_ms
    assert stats.tokens_per_s > 0

    path = pipeline.speak(result, tmp_path / "answer.wav")
    written, rate = sf.read(str(path), dtype="float32")
    assert rate == 22_050 and np.allclose(written, speech.samples, atol=1e-4)
    assert result.models["tts"] == "glm4voice"


def test_e2e_query_needs_no_transcript(pipeline: AskPipeline, question: Path) -> None:
    """In e2e mode the generator gets no text at all: the prompt carries the question as 12.5
    speech tokens per second."""
    from voicerag_cli.audio.io import read_audio

    generator = pipeline.registry.generator()
    clip = read_audio(question)
    query = Query(text=None, audio=clip.samples, audio_rate=clip.sample_rate)
    ids = generator.prompt_ids(query, [])
    begin = ids.index(generator.lm.tokenizer.convert_tokens_to_ids(BEGIN_AUDIO))
    speech = [t for t in ids[begin:] if generator.tokens.is_audio(t)]
    assert len(speech) == math.ceil(clip.duration_s * 12.5)
    shape_answers(generator, total=50)
    answer = generator.generate(query, [])
    assert answer.speech is not None and generator.stats.speech_tokens == 26  # 50 = 13 + 26 + 11 text


def test_text_question_and_text_only_answer(pipeline: AskPipeline) -> None:
    generator = pipeline.registry.generator()
    shape_answers(generator, total=12)  # stops before any speech token
    result = pipeline.ask_text("Which river flows through Basel?")
    assert result.answer.speech is None and result.answer.text  # the pipeline's TTS will speak it


def test_follow_up_keeps_the_earlier_exchange_whole_with_its_speech_tokens(pipeline: AskPipeline) -> None:
    """Reference layout (default): a follow-up's prompt holds the first turn's user input
    (passages and question) and the model's whole completion, speech tokens included, as
    upstream's demo keeps them; a history the generator did not produce comes in as text."""
    generator = pipeline.registry.generator()
    assert generator.layout == "reference"
    shape_answers(generator, total=45)  # 13 text, 26 speech, 6 text
    passages = [Passage(chunk_id=0, source="bicycles.md", text="Karl Drais built the running machine.", score=1.0)]
    first = generator.generate(Query(text="Who built the first running machine?"), passages)
    kept_input, kept = generator.transcript[-1][1].user_input, generator.transcript[-1][1].completion
    assert "Karl Drais" in kept_input and "Who built the first running machine?" in kept_input
    assert kept.count("<|audio_") == 26 and "<|user|>" not in kept
    follow_up = Query(text="When?", history=[("Who built the first running machine?", first.text)])
    ids = generator.prompt_ids(follow_up, passages)
    prompt = generator.lm.tokenizer.decode(ids[2:])
    assert prompt.count("<|system|>") == 1
    assert f"{kept_input}<|assistant|>streaming_transcription\n{kept.strip()}<|user|>\n" in prompt
    assert prompt.count("<|begin_of_audio|>") == 0 and prompt.count("<|audio_") == 26
    stranger = Query(text="When?", history=[("Something else?", "An answer from elsewhere.")])
    as_text = generator.lm.tokenizer.decode(generator.prompt_ids(stranger, passages)[2:])
    assert "<|user|>\nSomething else?<|assistant|>streaming_transcription\nAn answer from elsewhere.<|user|>" in as_text
    assert "<|audio_" not in as_text


def test_missing_folders_are_one_line_model_errors(folders: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"glm4voice\.tokenizer_path"):
        create(settings_for({}), None)
    missing = dict(folders, decoder_path=tmp_path / "nowhere")
    with pytest.raises(
        ModelError, match=r"decoder folder not found: .*nowhere \(config key 'glm4voice.decoder_path'\)"
    ):
        create(settings_for(missing), None)


@pytest.mark.slow
def test_cli_ask_with_glm4voice(folders: dict[str, Path], data_dir: Path, question: Path, tmp_path: Path) -> None:
    env = {"VOICERAG_DATA_DIR": str(data_dir), "VOICERAG_CONFIG": os.devnull}
    env |= {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}

    failed = run_cli("ask", question, "--generator", "glm4voice", env=env, inherit=False, timeout=300)
    assert failed.code == 5
    assert failed.stderr.strip().count("\n") == 0 and "glm4voice.tokenizer_path" in failed.stderr

    lines = ["[glm4voice]", *(f'{key} = "{path}"' for key, path in folders.items()), 'device = "cpu"', "seed = 1"]
    lines.append("max_new_tokens = 40")
    (tmp_path / "config.toml").write_text("\n".join(lines) + "\n")
    env["VOICERAG_CONFIG"] = str(tmp_path / "config.toml")
    out = tmp_path / "out"
    done = run_cli(
        "ask", question, "--rag", "asr", "-g", "glm4voice", "--out", out, "--json", env=env, inherit=False, timeout=300
    )
    assert done.code == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["models"]["generator"] == "glm4voice"
    assert (out / "answer.txt").read_text().strip() == result["answer"].strip()
    _, rate = sf.read(str(out / "answer.wav"))
    # the random LM may or may not emit speech tokens: then the generator's own 22.05 kHz audio
    # is written, else espeak-ng speaks the text
    assert (rate == 22_050) == (result["models"]["tts"] == "glm4voice")


ASOUNDRC = "pcm.!default { type null }\nctl.!default { type hw card 0 }\n"


def test_streaming_player_through_portaudio_on_alsa_null(tmp_path: Path) -> None:
    """`--play` while generating: chunks queue into one PortAudio output stream that starts with
    the first chunk and is drained before closing (on ALSA's null device, which discards audio)."""
    if not Path("/usr/share/alsa/alsa.conf").exists():
        pytest.skip("ALSA configuration not installed (libasound2-data): no null device to open")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".asoundrc").write_text(ASOUNDRC, encoding="utf-8")
    script = """
import numpy as np, sounddevice as sd
from voicerag_cli.cli.answer_stream import StreamingPlayer
if not any(d["max_output_channels"] for d in sd.query_devices()):
    raise SystemExit(42)
player = StreamingPlayer()
player.write(np.full(2205, 0.1, dtype=np.float32), 22050)
started = player.played
player.write(np.zeros(4410, dtype=np.float32), 22050)
player.finish()
print(started, player.error, len(player.chunks), round(player.queued_s, 3))
"""
    env = {**os.environ, "HOME": str(home)}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    if result.returncode == 42:
        pytest.skip("PortAudio lists no ALSA output device even with a null PCM configured")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "None", "0", "0.3"]
