"""Dataset loaders: a HotpotQA fixture in the official format, RGB files, custom JSONL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voicerag_cli.errors import InputError
from voicerag_cli.eval.datasets import load_dataset

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"

HOTPOT_FIXTURE = [
    {
        "_id": "q1",
        "question": "Which river flows through the city where the Gutenberg Museum is?",
        "answer": "Rhine",
        "type": "bridge",
        "level": "easy",
        "supporting_facts": [["Gutenberg Museum", 0], ["Mainz", 1]],
        "context": [
            ["Gutenberg Museum", ["The Gutenberg Museum is in Mainz.", " It opened in 1900."]],
            ["Mainz", ["Mainz is a city in Germany.", " It lies on the Rhine."]],
            ["Cologne", ["Cologne is the largest city in its state."]],
        ],
    }
]


def write_hotpot(tmp_path: Path) -> Path:
    path = tmp_path / "hotpot_fixture.json"
    path.write_text(json.dumps(HOTPOT_FIXTURE), encoding="utf-8")
    return path


def test_hotpot_official_format(tmp_path: Path) -> None:
    [item] = load_dataset("hotpot", write_hotpot(tmp_path))
    assert item.qid == "q1"
    assert item.answers == [["Rhine"]]
    assert [p.title for p in item.passages] == ["Gutenberg Museum", "Mainz", "Cologne"]
    assert item.gold_ids == {"q1:Gutenberg Museum", "q1:Mainz"}
    assert item.gold_evidence == ["The Gutenberg Museum is in Mainz.", "It lies on the Rhine."]
    assert item.passages[1].text == "Mainz. Mainz is a city in Germany. It lies on the Rhine."


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data is not present beside the repo")
def test_rgb_english_and_chinese_files() -> None:
    items = load_dataset("rgb-en", SHARED / "rgb" / "en_fact.json", limit=5)
    assert len(items) == 5
    first = items[0]
    assert first.question == "Super Bowl 2021 location"
    assert first.answers == [["Tampa, Florida"]]
    assert first.gold_ids and first.gold_ids <= {p.pid for p in first.passages}
    assert first.language == "en"
    zh = load_dataset("rgb-zh", SHARED / "rgb" / "zh_refine.json", limit=3)
    assert all(item.language == "zh" and item.gold_ids for item in zh)


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data is not present beside the repo")
def test_cmrc2018_questions_point_at_their_own_paragraph() -> None:
    path = SHARED / "cmrc2018" / "cmrc2018_dev.json"
    every = load_dataset("cmrc2018", path)
    assert len(every) == 3219  # the dev set's question count (its README)
    assert len({p.pid for item in every for p in item.passages}) == 848
    first = load_dataset("cmrc2018", path, limit=60)
    # first questions of distinct paragraphs come first, so a small limit spans 60 paragraphs
    assert len({item.passages[0].pid for item in first}) == 60
    item = first[0]
    assert item.question == "《战国无双3》是由哪两个公司合作开发的？" and item.answers == [["光荣和ω-force"]]
    assert item.gold_ids == {item.passages[0].pid} and item.language == "zh"
    # gold answers are spans of the paragraph (one of the 60 has a trailing 。 that its text lacks)
    assert all(any(alt in it.passages[0].text for alt in part) for it in first for part in it.answers)


def test_cmrc2018_wrong_shape_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "cmrc.json"
    bad.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(InputError, match="CMRC 2018"):
        load_dataset("cmrc2018", bad)


def test_custom_jsonl_marks_gold_and_audio(tmp_path: Path) -> None:
    path = tmp_path / "custom.jsonl"
    rows = [
        {"question": "Where is Mainz?", "answer": "Germany", "passages": ["Mainz is in Germany.", "Paris is in France."]},
        {"id": "b", "question": "q?", "answer": ["x"], "passages": [{"text": "one"}, {"text": "two", "gold": True}],
         "audio": "b.wav"},
    ]  # fmt: skip
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    first, second = load_dataset("jsonl", path)
    assert first.gold_ids == {"1:0"}  # found by answer string
    assert second.gold_ids == {"b:1"}
    assert second.audio == tmp_path / "b.wav"


def test_bad_dataset_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_dataset("rgb-en", tmp_path / "missing.json")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"query": "q", "answer": "a", "positive": []}\n{not json\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"broken\.jsonl:2"):
        load_dataset("rgb-en", broken)
    with pytest.raises(InputError, match="missing field 'passages'"):
        (tmp_path / "c.jsonl").write_text('{"question": "q", "answer": "a"}\n', encoding="utf-8")
        load_dataset("jsonl", tmp_path / "c.jsonl")
    with pytest.raises(InputError, match="unknown dataset"):
        load_dataset("squad", broken)
