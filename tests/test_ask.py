"""`voicerag ask` end to end on the demo index: WAV file, FLAC on stdin, typed text, --out,
two rounds, and the `--json` schema (docs/scripting.md, "JSON output")."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from voicerag_cli.errors import ExitCode
from voicerag_cli.structure import parse
from vrtest import DemoIndex, assert_error, run_cli, tree_hash

TOP_KEYS = {
    "schema_version",
    "input",
    "rag",
    "index",
    "audio_seconds",
    "transcript",
    "first_transcript",
    "question",
    "answer",
    "found",
    "citations",
    "sources",
    "rounds",
    "first_round",
    "timings_ms",
    "models",
    "answer_audio",
}
SOURCE_KEYS = {"rank", "score", "lexical", "spoken", "source", "start", "end", "chunk_id", "text", "quote", "round"}
BEE_QUESTION = "Who received a Nobel prize for decoding the honey bee dance?"


def check_sources(sources: list[dict[str, Any]], demo: DemoIndex) -> None:
    assert sources, "no sources"
    assert [s["rank"] for s in sources] == list(range(1, len(sources) + 1))
    for source in sources:
        assert set(source) == SOURCE_KEYS
        assert isinstance(source["score"], float) and -1.0 <= source["score"] <= 1.0
        assert all(isinstance(source[key], int) for key in ("start", "end", "chunk_id"))
        assert 0 <= source["start"] < source["end"]
        path = Path(source["source"])
        assert path.parent == demo.docs.resolve()
        if path.suffix in {".md", ".txt"}:  # offsets point into the text as read
            raw = path.read_text(encoding="utf-8")  # plain text is chunked as it is; Markdown as read
            read = raw if path.suffix == ".txt" else "\n\n".join(b.text for b in parse(raw, path.suffix))
            assert read[source["start"] : source["end"]] == source["text"]
    assert all(s["lexical"] is None or s["lexical"] >= 0 for s in sources)  # BM25 (tiny for common terms)
    if all(s["lexical"] is None for s in sources):  # vectors alone (e2e): in score order
        scores = [s["score"] for s in sources]
        assert scores == sorted(scores, reverse=True)
    assert len({s["chunk_id"] for s in sources}) == len(sources)


def check_schema(payload: dict[str, Any], demo: DemoIndex, rag: str) -> None:
    assert set(payload) == TOP_KEYS
    assert payload["schema_version"] == 1
    assert payload["rag"] == rag
    assert payload["index"] == demo.name
    assert isinstance(payload["answer"], str) and payload["answer"]
    assert isinstance(payload["citations"], list)
    assert all(isinstance(c, int) and 1 <= c <= len(payload["sources"]) for c in payload["citations"])
    for cited in payload["citations"]:
        assert f"[{cited}]" in payload["answer"]
    assert payload["found"] is bool(payload["citations"])
    for source in payload["sources"]:  # a cited source names the sentence the answer quotes from it
        if source["rank"] in payload["citations"] and payload["models"]["generator"] == "extractive":
            assert source["quote"] and source["quote"] in payload["answer"]
            assert " ".join(source["quote"].split()[:3]) in " ".join(source["text"].split())
    check_sources(payload["sources"], demo)
    assert isinstance(payload["timings_ms"], dict)
    assert all(isinstance(v, float) and v >= 0 for v in payload["timings_ms"].values())
    stages = {k: v for k, v in payload["timings_ms"].items() if k != "total"}
    assert payload["timings_ms"]["total"] == pytest.approx(sum(stages.values()), abs=0.1 * len(stages))
    assert isinstance(payload["models"], dict) and all(isinstance(v, str) for v in payload["models"].values())
    if rag == "text":
        assert payload["audio_seconds"] is None and payload["transcript"] is None
        assert payload["input"] == "text"
    elif rag == "e2e":  # no transcript anywhere: the audio itself is the query
        assert isinstance(payload["audio_seconds"], float) and payload["audio_seconds"] > 0
        assert payload["transcript"] is None and payload["question"] is None
        assert {"read_audio", "embed_speech", "search", "generate"} <= set(payload["timings_ms"])
        assert not {"asr", "embed_text"} & set(payload["timings_ms"])
    else:
        assert isinstance(payload["audio_seconds"], float) and payload["audio_seconds"] > 0
        assert isinstance(payload["transcript"], str) and payload["transcript"]
        assert payload["question"] == payload["transcript"]
        assert {"read_audio", "asr", "embed_text", "search", "generate"} <= set(payload["timings_ms"])


def test_ask_wav_json_and_out_dir(on_demo_index: DemoIndex, speech: Callable[..., Path], tmp_path: Path) -> None:
    question = speech(BEE_QUESTION)
    out = tmp_path / "answer"
    before = tree_hash(on_demo_index.path)
    result = run_cli("ask", question, "--rag", "asr", "--json", "--out", out)
    assert result.code == 0, result
    payload = result.json()
    check_schema(payload, on_demo_index, "asr")
    assert payload["input"] == str(question)
    assert payload["audio_seconds"] == pytest.approx(sf.info(str(question)).duration, abs=0.01)
    assert "nobel" in payload["transcript"].lower()
    assert Path(payload["sources"][0]["source"]).name == "honeybees.md"
    assert "Frisch" in payload["answer"]
    assert payload["models"] == {
        "text_embedder": "minilm",
        "generator": "extractive",
        "asr": "whisper-tiny-en",
        "tts": "espeak",
    }
    assert payload["rounds"] == 1 and payload["first_round"] is None
    assert "tts" in payload["timings_ms"]

    # --out: answer.txt, answer.wav (valid, audible speech), result.json (= stdout)
    assert payload["answer_audio"] == str(out / "answer.wav")
    assert (out / "answer.txt").read_text(encoding="utf-8") == payload["answer"] + "\n"
    assert json.loads((out / "result.json").read_text(encoding="utf-8")) == payload
    info = sf.info(str(out / "answer.wav"))
    assert info.format == "WAV" and info.channels == 1 and info.duration > 1.0
    samples, _ = sf.read(str(out / "answer.wav"), dtype="float32")
    assert float(np.max(np.abs(samples))) > 0.05
    assert sorted(p.name for p in out.iterdir()) == ["answer.txt", "answer.wav", "result.json"]
    assert tree_hash(on_demo_index.path) == before  # asking never writes to the index


def test_ask_flac_on_stdin(on_demo_index: DemoIndex, speech: Callable[..., Path], tmp_path: Path) -> None:
    samples, rate = sf.read(str(speech("What is the biggest planet in the solar system?")))
    flac = tmp_path / "question.flac"
    sf.write(str(flac), samples, rate, format="FLAC")
    result = run_cli("ask", "-", "--json", stdin=flac.read_bytes())
    assert result.code == 0, result
    payload = result.json()
    check_schema(payload, on_demo_index, "asr")
    assert payload["input"] == "<stdin>"
    assert "biggest planet" in payload["transcript"].lower()
    assert Path(payload["sources"][0]["source"]).name == "solar_system.txt"
    assert "Jupiter" in payload["answer"]
    assert payload["answer_audio"] is None


def test_ask_text_renders_panel_and_sources(on_demo_index: DemoIndex) -> None:
    result = run_cli("ask", "--text", "When was the pneumatic tyre patented?", "-k", "3")
    assert result.code == 0, result
    assert "question: When was the pneumatic tyre patented?" in result.stdout
    assert "Dunlop" in result.stdout and "1888" in result.stdout
    assert "bicycles.md" in result.stdout
    assert "search" in result.stderr and " ms" in result.stderr
    assert "Traceback" not in result.stderr


def test_ask_text_two_rounds_json(on_demo_index: DemoIndex) -> None:
    result = run_cli("ask", "--text", "Where does the Rhine rise?", "-k", "2", "--rounds", "2", "--json")
    assert result.code == 0, result
    payload = result.json()
    check_schema(payload, on_demo_index, "text")
    assert payload["question"] == "Where does the Rhine rise?"
    assert payload["rounds"] == 2
    first = payload["first_round"]
    assert set(first) == {"answer", "sources"} and isinstance(first["answer"], str)
    assert len(first["sources"]) == 2
    check_sources(first["sources"], on_demo_index)
    # the final context is round one's passages, then round two's new ones
    assert 2 <= len(payload["sources"]) <= 4
    assert [s["chunk_id"] for s in payload["sources"][:2]] == [s["chunk_id"] for s in first["sources"]]
    assert [s["round"] for s in payload["sources"]] == [1, 1] + [2] * (len(payload["sources"]) - 2)
    assert {"search_round2", "generate_round2", "embed_round2"} <= set(payload["timings_ms"])
    assert Path(payload["sources"][0]["source"]).name == "rhine.html"
    assert "Alps" in payload["answer"]


def test_sources_table_fits_80_columns_with_the_cited_sentence_and_its_round(on_demo_index: DemoIndex) -> None:
    args = ("ask", "--text", "Where does the Rhine rise?", "-k", "2", "--rounds", "2")
    table = run_cli(*args, env={"COLUMNS": "80"})
    payload = run_cli(*args, "--json").json()
    assert table.code == 0, table
    lines = table.stdout.splitlines()
    assert lines and max(len(line) for line in lines) <= 80
    header = next(line for line in lines if "score" in line)
    assert "round" in header and "cited sentence" in header
    cited = next(s for s in payload["sources"] if s["quote"])
    # the quote, not the chunk's first words; folded over lines at 80 columns
    flat = " ".join(line.strip(" │┃|") for line in lines)
    assert " ".join(cited["quote"].split()[:4]) in " ".join(flat.split())


def test_e2e_with_the_default_speech_embedder(on_demo_index: DemoIndex, speech: Callable[..., Path]) -> None:
    """No transcription: the spoken question is embedded straight into the index's space. Only the
    path is checked here; the distilled embedder is imprecise (its model card: on these
    four demo documents it ranks the bee question's page below others), and its retrieval quality
    is measured against chance in tests/test_speech_encoder.py and benchmarks/e2e_vs_asr.py."""
    result = run_cli("ask", speech(BEE_QUESTION), "--rag", "e2e", "--json")
    assert result.code == 0, result
    payload = result.json()
    check_schema(payload, on_demo_index, "e2e")
    assert payload["models"] == {
        "text_embedder": "minilm",
        "generator": "extractive",
        "speech_embedder": "whisper-tiny-distilled",
    }
    assert len(payload["sources"]) == 5


def test_e2e_without_speech_embedder(on_demo_index: DemoIndex, speech: Callable[..., Path]) -> None:
    before = tree_hash(on_demo_index.path)
    result = run_cli(
        "ask", speech(BEE_QUESTION), "--rag", "e2e", "--json", env={"VOICERAG_MODELS__SPEECH_EMBEDDER": "none"}
    )
    assert_error(result, ExitCode.MODEL, "--rag e2e", "speech embedder", "--rag asr")
    assert tree_hash(on_demo_index.path) == before
