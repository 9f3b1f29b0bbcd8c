"""Metric functions against values computed by hand."""

from __future__ import annotations

import random

import pytest

from voicerag_cli.eval import metrics
from voicerag_cli.eval.datasets import rgb_answer_parts


def lcs_table(a: list[str], b: list[str]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


def test_normalization_follows_squad() -> None:
    assert metrics.normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert metrics.normalize_answer("an apple, a pear") == "apple pear"


def test_exact_match_and_f1_hand_computed() -> None:
    assert metrics.exact_match("the Tampa, Florida.", "Tampa Florida") == 1.0
    assert metrics.exact_match("Tampa", "Tampa Florida") == 0.0
    # pred {tampa, bay, florida} vs gold {tampa, florida}: P=2/3, R=1, F1=0.8
    assert metrics.token_f1("Tampa Bay, Florida", "Tampa, Florida") == pytest.approx(0.8)
    assert metrics.token_f1("Glendale", "Tampa") == 0.0


def test_chinese_is_scored_by_character() -> None:
    # pred 北京大学 (4 chars) vs gold 北京 (2): P=2/4, R=1 -> F1=2/3
    assert metrics.tokens("北京大学") == ["北", "京", "大", "学"]
    assert metrics.token_f1("北京大学", "北京") == pytest.approx(2 / 3)
    assert metrics.contains_answer("答案是北京。", "北京") == 1.0


def test_bit_parallel_lcs_equals_dynamic_programming() -> None:
    rng = random.Random(7)
    for _ in range(500):
        a = [rng.choice("abcd") for _ in range(rng.randint(0, 40))]
        b = [rng.choice("abcde") for _ in range(rng.randint(0, 40))]
        assert metrics.lcs_length(a, b) == lcs_table(a, b)


def test_rouge_l_hand_computed() -> None:
    # pred "cat sat on mat" (articles dropped), gold "cat on mat": LCS 3 -> P=3/4, R=1, F1=6/7
    score = metrics.rouge_l("the cat sat on the mat", "a cat on a mat")
    assert score["precision"] == pytest.approx(0.75)
    assert score["recall"] == pytest.approx(1.0)
    assert score["f1"] == pytest.approx(6 / 7)
    assert metrics.rouge_l("", "x")["f1"] == 0.0


def test_rgb_answer_semantics() -> None:
    assert rgb_answer_parts("Tampa") == [["Tampa"]]
    assert rgb_answer_parts([["Facebook", "Meta"]]) == [["Facebook", "Meta"]]
    assert rgb_answer_parts(["1月3日", "1月12日"]) == [["1月3日"], ["1月12日"]]
    # every part needed: one of two dates is not a match
    assert metrics.answer_scores("1月3日宣誓", [["1月3日"], ["1月12日"]])["match"] == 0.0
    assert metrics.answer_scores("1月3日宣誓，1月12日开会", [["1月3日"], ["1月12日"]])["match"] == 1.0
    # alternatives: any one suffices; EM/F1 take the best alternative
    scores = metrics.answer_scores("Meta", [["Facebook", "Meta"]])
    assert scores["em"] == 1.0 and scores["match"] == 1.0


def test_retrieval_scores_hand_computed() -> None:
    ranked = ["x", "g1", "y", "g2", "z"]
    scores = metrics.retrieval_scores(ranked, {"g1", "g2", "g3"}, ks=[1, 2, 5])
    assert scores["hit@1"] == 0.0 and scores["recall@1"] == 0.0
    assert scores["hit@2"] == 1.0 and scores["recall@2"] == pytest.approx(1 / 3)
    assert scores["recall@5"] == pytest.approx(2 / 3)
    assert scores["mrr"] == pytest.approx(0.5)
    assert metrics.retrieval_scores(["x"], {"g"}, ks=[1])["mrr"] == 0.0


def test_transcript_error_rates() -> None:
    # one substitution in four words
    assert metrics.transcript_error("who won the 2012 nobel", "Who won the 2022 Nobel?") == {"wer": 0.25}
    # one wrong character in four
    assert metrics.transcript_error("北京大雪", "北京大学") == {"cer": 0.25}


def test_cer_reads_numerals_as_characters() -> None:
    pytest.importorskip("cn2an")
    # AISHELL spells numbers in characters, Whisper writes digits: the same words, no error
    assert metrics.normalize_cer("设定32度。") == "设定三十二度"
    assert metrics.normalize_cer("涨了50%") == "涨了百分之五十"  # numerals before punctuation goes
    assert metrics.transcript_error("设定32度", "设定三十二度") == {"cer": 0.0}
    assert metrics.transcript_error("设定32多", "设定三十二度") == {"cer": pytest.approx(1 / 6)}


@pytest.mark.parametrize(
    ("prediction", "gold", "expected"),
    [
        ("The answer is not known.", "no", 0.0),  # "no" inside "not"
        ("No, it was never built.", "no", 1.0),
        ("It opened in 18850 BC.", "1885", 0.0),
        ("It opened in 1885.", "1885", 1.0),
        ("Paris, France", "paris france", 1.0),  # punctuation does not separate a phrase
        ("The Parisian cafe", "paris", 0.0),
        ("答案是北京。", "北京", 1.0),  # Chinese: substring, as RGB does
    ],
)
def test_contains_answer_matches_whole_words(prediction: str, gold: str, expected: float) -> None:
    assert metrics.contains_answer(prediction, gold) == expected
