"""The shipped reader (int8 ONNX MiniLM cross-encoder): loads, ranks, scores spans, fails clearly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

from voicerag_cli.errors import ModelError
from voicerag_cli.models.pinned import sha256_of
from voicerag_cli.models.reader import load_reader
from voicerag_cli.models.reader.reader import MODEL_PATH, MODEL_SHA256

# Hand-written docs-style cases: (question, answering passage, passages that don't answer).
CASES = [
    (
        "What is the default port of the dashboard server?",
        "Dashboard server\n\nThe dashboard listens on port 8550 by default. Pass --port to choose another port.",
        [
            "Logging\n\nLog lines go to standard error. Set LOG_LEVEL to debug for more detail.",
            "Installing\n\nInstall the package with pip install dashkit and run dashkit --help.",
        ],
    ),
    (
        "How do I install the command line tool?",
        "Installation\n\nInstall the command line tool with pip: run pip install quillctl in a virtual environment.",
        [
            "Configuration files\n\nSettings are read from quill.toml in the project root, then from environment variables.",
            "Release notes\n\nVersion 2.1 fixed a crash when the cache folder was missing.",
        ],
    ),
    (
        "How many retries does the client make before giving up?",
        "Retries\n\nThe client retries a failed request up to 5 times, waiting twice as long after each attempt.",
        [
            "Timeouts\n\nEvery request has a timeout of 30 seconds; pass timeout=None to wait forever.",
            "Authentication\n\nCreate an API key in the web console and pass it as the api_key argument.",
        ],
    ),
]


@pytest.fixture(scope="module")
def reader():
    return load_reader()


def test_shipped_model_is_small_and_pinned() -> None:
    assert MODEL_PATH.stat().st_size <= 40 * 1024 * 1024
    assert sha256_of(MODEL_PATH) == MODEL_SHA256


@pytest.mark.parametrize(("question", "answer", "others"), CASES)
def test_ranks_the_answering_passage_first(reader, question: str, answer: str, others: list[str]) -> None:
    readings = reader.read(question, [*others, answer])
    scores = [r.relevance for r in readings]
    assert scores[-1] == max(scores), scores


def test_span_score_prefers_the_answer_over_a_restating_sentence(reader) -> None:
    restating = "The following options control the worker timeout:"
    answer = "Workers silent for more than 45 seconds are killed and restarted."
    text = f"Worker timeout\n\n{restating}\n\n{answer}\n\nSee also the graceful timeout."
    (reading,) = reader.read("What is the default worker timeout?", [text])
    a0 = text.index(answer)
    r0 = text.index(restating)
    assert reading.span_score(a0, a0 + len(answer)) > reading.span_score(r0, r0 + len(restating))


def test_empty_and_very_long_inputs(reader) -> None:
    assert reader.read("anything", []) == []
    long_text = "The cache folder holds downloaded files. " * 2000
    readings = reader.read("", ["", long_text, "short"])
    assert len(readings) == 3
    assert readings[0].span_score(0, 0) == 0.0
    assert readings[1].read_chars < len(long_text)  # cut at 224 tokens
    assert readings[1].span_score(len(long_text) - 10, len(long_text)) == 0.0  # past what was read
    assert 0.0 <= readings[1].span_score(0, 40) <= 1.0
    assert all(isinstance(r.relevance, float) for r in readings)
    (long_q,) = reader.read("why " * 500, ["The answer is here."])
    assert 0.0 < long_q.probability < 1.0


def test_corrupted_file_is_refused_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "reader.onnx"
    shutil.copy(MODEL_PATH, bad)
    with bad.open("r+b") as fh:
        fh.seek(1000)
        byte = fh.read(1)
        fh.seek(1000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelError) as err:
        load_reader(bad)
    message = str(err.value)
    assert "SHA-256" in message and "\n" not in message
