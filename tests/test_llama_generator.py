"""The `llama` generator (llama.cpp through xllamacpp) on a tiny random-weight GGUF made here,
its bounded prompt, the shaping of its reply, and the packaged model's part joining. Tests that
need the real 1.1 GB packaged model are `slow` and skip when voicerag[llama] is not installed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from voicerag_cli.config import Settings
from voicerag_cli.errors import ConfigError, ModelError
from voicerag_cli.models.base import Passage, Query, StreamingGenerator
from voicerag_cli.models.extractive import NO_ANSWER
from voicerag_cli.models.llama import packaged
from voicerag_cli.models.llama.backend import LlamaGenerator, _Stream
from voicerag_cli.models.llama.prompt import CHARS_PER_TOKEN, build_prompt
from voicerag_cli.models.llama.reply import allowed_length, drop_foreign_citations, is_no_answer
from voicerag_cli.models.pinned import PinnedFile, is_stamped
from voicerag_cli.registry import Registry

xllamacpp = pytest.importorskip("xllamacpp")


class Recorder:
    """An AnswerListener that keeps what it is given."""

    def __init__(self, wants_audio: bool = False) -> None:
        self.wants_audio = wants_audio
        self.text: list[str] = []
        self.audio: list[tuple[np.ndarray, int]] = []

    def on_text(self, delta: str) -> None:
        self.text.append(delta)

    def on_audio(self, samples: np.ndarray, sample_rate: int) -> None:
        self.audio.append((samples, sample_rate))


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("gguf")
    from tiny_gguf import write_tiny_gguf

    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


def llama_settings(model_path: Path) -> Settings:
    return Settings().updated(
        {"models.generator": "llama", "llama.model_path": str(model_path), "llama.max_tokens": 24}
    )


@pytest.fixture(scope="module")
def tiny_generator(tiny_gguf: Path) -> LlamaGenerator:
    generator = Registry(llama_settings(tiny_gguf)).generator()
    assert isinstance(generator, LlamaGenerator)
    return generator


PASSAGES = [
    Passage(1, "docs/api.md#timeouts", "Timeouts\n\nPass timeout=5 to stop waiting after five seconds."),
    Passage(2, "docs/install.md", "Install it with pip install example."),
]


def test_the_tiny_gguf_is_small(tiny_gguf: Path) -> None:
    assert tiny_gguf.stat().st_size < 1_000_000


def test_the_registry_loads_the_backend_from_any_gguf(tiny_generator: LlamaGenerator) -> None:
    assert isinstance(tiny_generator, StreamingGenerator)


def test_generate_returns_text_and_streams_it(tiny_generator: LlamaGenerator) -> None:
    listener = Recorder()
    tiny_generator.listener = listener
    try:
        answer = tiny_generator.generate(Query("How do I set a timeout?"), PASSAGES)
    finally:
        tiny_generator.listener = None
    assert answer.text.strip() and answer.found
    assert listener.text and "".join(listener.text).strip()
    assert tiny_generator.stats.first_token_ms is not None
    assert 0 < tiny_generator.stats.first_token_ms <= tiny_generator.stats.total_ms


def test_sentences_go_to_the_synthesizer_when_the_listener_plays_audio(tiny_generator: LlamaGenerator) -> None:
    listener = Recorder(wants_audio=True)
    tiny_generator.listener = listener
    try:
        tiny_generator.generate(Query("How do I set a timeout?"), PASSAGES)
    finally:
        tiny_generator.listener = None
    assert listener.audio, "no sentence was spoken"
    samples, rate = listener.audio[0]
    assert rate > 0 and samples.ndim == 1 and len(samples) > 0


def test_no_passages_is_no_answer(tiny_generator: LlamaGenerator) -> None:
    answer = tiny_generator.generate(Query("anything?"), [])
    assert not answer.found and answer.text == NO_ANSWER


def test_the_prompt_stays_within_its_budget_and_keeps_the_relevant_sentence() -> None:
    filler = "Unrelated words fill this sentence about other matters entirely. " * 40
    passages = [
        Passage(i, f"docs/p{i}.md", filler + ("The retry limit defaults to seven attempts." if i == 3 else ""))
        for i in range(1, 6)
    ]
    prompt = build_prompt("What is the default retry limit?", passages, budget_tokens=450)
    assert prompt.passages == 5
    assert prompt.chars <= 450 * CHARS_PER_TOKEN
    user = prompt.messages[-1]["content"]
    assert all(f"[{n}] (p{n}.md)" in user for n in range(1, 6))
    assert "The retry limit defaults to seven attempts." in user
    assert user.endswith("Question: What is the default retry limit?")


def test_the_prompt_llama_cpp_reads_is_bounded(tiny_generator: LlamaGenerator) -> None:
    long = [Passage(i, f"docs/p{i}.md", "Words about something else. " * 200) for i in range(1, 6)]
    tiny_generator.generate(Query("What is it?"), long)
    # the tiny vocabulary spends about a token a character: the count bounds the characters
    assert 0 < tiny_generator.stats.prompt_tokens <= tiny_generator.config.prompt_tokens * CHARS_PER_TOKEN + 40


def test_citations_outside_the_given_passages_are_dropped() -> None:
    assert drop_foreign_citations("Use it [1][7]. See [2, 9] and [0].", 2) == "Use it [1]. See [2] and."
    listener = Recorder()
    stream = _Stream(listener, None, passages=2)
    for delta in ["Set", " timeout", " [", "7", "]", " or [", "2", "]", "."]:
        stream.add(delta)
    stream.close()
    assert "".join(listener.text) == "Set timeout or [2]."


def test_the_answer_stops_at_three_sentences_plus_an_example() -> None:
    text = "One [1]. Two. Three.\n\n```python\nget(url, timeout=5)\n```\nFour. Five."
    kept, complete = allowed_length(text)
    assert complete
    assert text[:kept].endswith("```") and "Four" not in text[:kept]
    assert allowed_length("One. Two.") == (len("One. Two."), False)


def test_a_not_found_reply_is_held_back_and_recognised() -> None:
    listener = Recorder()
    stream = _Stream(listener, None, passages=3)
    stopped = [stream.add(delta) for delta in ["NOT", " FOUND"]]
    stream.close()
    assert stopped[-1] and listener.text == []
    assert is_no_answer("NOT FOUND") and not is_no_answer("Not every option is found in [1].")


def test_a_missing_model_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as caught:
        Registry(llama_settings(tmp_path / "missing.gguf")).generator()
    assert "llama model not found" in str(caught.value) and "\n" not in str(caught.value)


def test_a_file_that_is_no_gguf_is_one_clear_line(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.gguf"
    bogus.write_bytes(b"not a model" * 100)
    with pytest.raises(ModelError) as caught:
        Registry(llama_settings(bogus)).generator()
    assert "cannot load" in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_part_names_its_package() -> None:
    spec = packaged.JoinedFile("m.gguf", (("voicerag-no-such-part7", "voicerag_no_such_part7", "data/p.bin"),), 1, "0")
    with pytest.raises(ModelError) as caught:
        packaged.part_paths(spec)
    assert "voicerag-no-such-part7==0.2.0 is missing" in str(caught.value) and "\n" not in str(caught.value)


def test_config_checks_its_values() -> None:
    with pytest.raises(ConfigError, match=r"llama\.threads"):
        Settings().updated({"llama.threads": 0})
    with pytest.raises(ConfigError, match=r"llama\.max_tokens"):  # past llama.context minus llama.prompt_tokens
        Settings().updated({"llama.context": 512, "llama.prompt_tokens": 400, "llama.max_tokens": 200})


def fake_parts(folder: Path) -> tuple[list[Path], bytes]:
    contents = [b"first part " * 100, b"second " * 50, b"third"]
    paths = []
    for number, content in enumerate(contents, start=1):
        path = folder / f"part{number:02d}.bin"
        path.write_bytes(content)
        paths.append(path)
    return paths, b"".join(contents)


def pin_for(whole: bytes, sha256: str = "") -> PinnedFile:
    return PinnedFile("joined.gguf", len(whole), sha256 or hashlib.sha256(whole).hexdigest())


def test_parts_are_joined_once_and_verified(tmp_path: Path) -> None:
    parts, whole = fake_parts(tmp_path)
    target, stamps = tmp_path / "cache" / "models" / "joined.gguf", tmp_path / "cache" / "verified"
    assert packaged.join_parts(parts, target, pin_for(whole), stamps) == target
    assert target.read_bytes() == whole and is_stamped(target, pin_for(whole), stamps)
    assert not target.with_name("joined.gguf.part").exists()
    parts[0].write_bytes(b"changed")  # a verified copy is not joined (nor hashed) again
    packaged.join_parts(parts, target, pin_for(whole), stamps)
    assert target.read_bytes() == whole


def test_a_changed_copy_is_joined_again(tmp_path: Path) -> None:
    parts, whole = fake_parts(tmp_path)
    target, stamps = tmp_path / "joined.gguf", tmp_path / "verified"
    packaged.join_parts(parts, target, pin_for(whole), stamps)
    target.write_bytes(whole[:-1] + b"X")
    os.utime(target, ns=(1, 1))
    assert not is_stamped(target, pin_for(whole), stamps)
    packaged.join_parts(parts, target, pin_for(whole), stamps)
    assert target.read_bytes() == whole


def test_a_wrong_hash_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    parts, whole = fake_parts(tmp_path)
    target = tmp_path / "joined.gguf"
    with pytest.raises(ModelError, match="fails its check"):
        packaged.join_parts(parts, target, pin_for(whole, "0" * 64), tmp_path / "verified")
    assert not target.exists() and not target.with_name("joined.gguf.part").exists()


# --- the real packaged model (voicerag[llama], 1.1 GB) ---

needs_packaged = pytest.mark.skipif(
    not packaged.parts_present(packaged.QWEN_CODER_1_5B), reason="voicerag[llama] model parts not installed"
)


@pytest.fixture(scope="module")
def packaged_generator(tmp_path_factory: pytest.TempPathFactory) -> LlamaGenerator:
    settings = Settings().updated(
        {"models.generator": "llama", "paths.cache_dir": str(tmp_path_factory.mktemp("llama-cache"))}
    )
    generator = Registry(settings).generator()
    assert isinstance(generator, LlamaGenerator)
    return generator


@pytest.mark.slow
@needs_packaged
def test_the_packaged_model_answers_from_the_passages_and_cites_them(packaged_generator: LlamaGenerator) -> None:
    answer = packaged_generator.generate(Query("How do I stop waiting for a response after some seconds?"), PASSAGES)
    assert answer.found and "timeout" in answer.text and answer.cited == [1]
    assert packaged_generator.stats.prompt_tokens <= packaged_generator.config.prompt_tokens


@pytest.mark.slow
@needs_packaged
def test_the_packaged_model_says_when_the_passages_do_not_answer(packaged_generator: LlamaGenerator) -> None:
    answer = packaged_generator.generate(Query("What is the capital of Peru?"), PASSAGES)
    assert not answer.found and answer.text == NO_ANSWER


def test_uncited_sentences_are_attributed_to_the_passage_they_share_words_with() -> None:
    """A small model often forgets [n]: each uncited sentence gets the passage it draws on, and a
    sentence sharing too little with any passage stays uncited (no made-up source)."""
    from voicerag_cli.models.llama.reply import attribute

    passages = ["Waitress listens on port 8080 by default.", "Use trusted_proxy behind nginx or another proxy."]
    answer = "The default port is 8080 for Waitress. Behind nginx, set trusted_proxy [2]. Have a nice day."
    assert attribute(answer, passages) == (
        "The default port is 8080 for Waitress. [1] Behind nginx, set trusted_proxy [2]. Have a nice day."
    )
