"""Sentence splitting and chunking: whole sentences, word budgets, overlap, CJK text."""

from __future__ import annotations

import itertools
import tracemalloc

import pytest

from voicerag_cli.index.chunking import CHARS_PER_WORD, LONG_FACTOR, Chunk, chunk_text
from voicerag_cli.sentences import split_sentences, word_count

NUMBERS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]


def english(count: int) -> str:
    """`count` sentences of 7 words each, with mixed terminators and a paragraph break."""
    ends = [".", "!", "?"]
    parts = []
    for i in range(count):
        parts.append(f"Sentence {NUMBERS[i % 12]} of group {i // 12} says this{ends[i % 3]}")
        if i == 5:
            parts.append("\n\n")
    return " ".join(parts)


def check_chunks(text: str, chunks: list[Chunk], chunk_words: int, overlap_words: int) -> None:
    """The invariants every chunking must satisfy."""
    sentences = split_sentences(text)
    starts = {s.start: i for i, s in enumerate(sentences)}
    ends = {s.end: i for i, s in enumerate(sentences)}
    assert chunks, "text with sentences gave no chunks"
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    covered: set[int] = set()
    previous: tuple[int, int] | None = None
    for chunk in chunks:
        assert chunk.text == text[chunk.start : chunk.end]
        # whole sentences only: a chunk starts where a sentence starts and ends where one ends
        assert chunk.start in starts and chunk.end in ends, chunk
        first, last = starts[chunk.start], ends[chunk.end]
        words = sum(word_count(s.text) for s in sentences[first : last + 1])
        assert words <= chunk_words or first == last, f"{words} words in a multi-sentence chunk"
        covered.update(range(first, last + 1))
        if previous is not None:
            prev_first, prev_last = previous
            assert first > prev_first, "chunks must advance"
            assert first <= prev_last + 1, "no sentence may be skipped"
            shared = sentences[first : prev_last + 1]  # sentences repeated from the previous chunk
            assert sum(word_count(s.text) for s in shared) <= overlap_words
        previous = (first, last)
    assert covered == set(range(len(sentences)))
    assert chunks[-1].end == sentences[-1].end


def test_sentence_splitter_keeps_offsets() -> None:
    text = 'He said "stop." Then left!  Why?\n\nA heading\n\nLast one'
    sentences = split_sentences(text)
    assert [s.text for s in sentences] == ['He said "stop."', "Then left!", "Why?", "A heading", "Last one"]
    assert all(text[s.start : s.end] == s.text for s in sentences)


def test_chunks_pack_whole_sentences_with_overlap() -> None:
    text = english(30)
    chunks = chunk_text("doc.txt", text, chunk_words=30, overlap_words=10)
    check_chunks(text, chunks, 30, 10)
    assert len(chunks) > 3
    # consecutive chunks really overlap: with 7-word sentences and 10 words of overlap, one sentence is repeated
    for before, after in itertools.pairwise(chunks):
        assert after.start < before.end
        repeated = text[after.start : before.end]
        assert word_count(repeated) == 7
    assert all(c.source == "doc.txt" for c in chunks)


def test_no_overlap_gives_adjacent_chunks() -> None:
    text = english(24)
    chunks = chunk_text("doc.txt", text, chunk_words=21, overlap_words=0)
    check_chunks(text, chunks, 21, 0)
    for before, after in itertools.pairwise(chunks):
        assert after.start >= before.end
    assert [word_count(c.text) for c in chunks] == [21] * 8  # three 7-word sentences each


def test_a_long_sentence_is_never_cut() -> None:
    long_sentence = " ".join(f"word{i}" for i in range(35)) + "."  # 3.5x the budget: still a sentence
    text = f"Short one here. {long_sentence} Another short one. And the last."
    chunks = chunk_text("doc.txt", text, chunk_words=10, overlap_words=3)
    check_chunks(text, chunks, 10, 3)
    assert long_sentence in [c.text for c in chunks]


@pytest.mark.parametrize("text", ["", "   \n\n  \t"])
def test_empty_text_gives_no_chunks(text: str) -> None:
    assert chunk_text("empty.txt", text, 120, 30) == []


def test_cjk_sentences_and_word_counts() -> None:
    sentences = [
        "蜜蜂通过摇摆舞告诉同伴花蜜的位置。",
        "卡尔·冯·弗里施因破解这种舞蹈获得诺贝尔奖！",
        "莱茵河流经六个国家？",
        "太阳占太阳系质量的百分之九十九以上。",
        "木星是最大的行星；",
        "土星以其明亮的光环而闻名。",
    ]
    text = "".join(sentences) * 3
    assert word_count("蜜蜂通过") == 4  # each CJK character is a word
    assert word_count("Whisper 模型") == 3
    split = split_sentences(text)
    assert [s.text for s in split[:6]] == sentences
    chunks = chunk_text("zh.txt", text, chunk_words=40, overlap_words=12)
    check_chunks(text, chunks, 40, 12)
    assert len(chunks) >= 5
    assert all(c.text[-1] in "。！？；" for c in chunks)


def test_mixed_script_text() -> None:
    text = "Honey bees dance. 蜜蜂会跳舞。They point to food. 它们指向食物。" * 4
    chunks = chunk_text("mixed.md", text, chunk_words=12, overlap_words=4)
    check_chunks(text, chunks, 12, 4)


def test_content_hash_is_stable_and_content_based() -> None:
    a = chunk_text("a.txt", "Same text here. And more.", 120, 30)[0]
    b = chunk_text("b.txt", "Same text here. And more.", 120, 30)[0]
    c = chunk_text("a.txt", "Other text here. And more.", 120, 30)[0]
    assert a.content_hash == b.content_hash != c.content_hash
    assert len(a.content_hash) == 16


@pytest.mark.parametrize(
    "text",
    [
        "word " * 2_000_000,  # a 10 MB single line without a full stop
        "x" * 1_000_000 + " tail words",  # one 1 MB "word"
        "中" * 100_000,  # CJK without punctuation: each character is a word
    ],
    ids=["10MB-line", "1MB-word", "cjk"],
)
def test_run_on_text_is_cut_into_bounded_chunks(text: str) -> None:
    chunks = chunk_text("line.txt", text, chunk_words=120, overlap_words=30)
    assert max(len(c.text) for c in chunks) <= LONG_FACTOR * 120 * CHARS_PER_WORD
    assert max(word_count(c.text) for c in chunks) <= 120
    assert all(text[c.start : c.end] == c.text for c in chunks)  # offsets still point at the text
    # consecutive chunks leave no gap but whitespace: nothing is dropped
    for before, after in itertools.pairwise(chunks):
        assert after.start <= before.end or not text[before.end : after.start].strip()
    assert chunks[0].start == 0 and chunks[-1].end == len(text.rstrip())


@pytest.mark.parametrize(
    "text",
    [
        "word " * 2_000_000,  # a 10 MB single line
        "Short one. " * 100_000,  # 1.1 MB of tiny sentences: a sentence object each, were they all held
    ],
    ids=["10MB-line", "short-sentences"],
)
def test_chunking_memory_is_the_chunks_plus_one_copy_of_a_sentence(text: str) -> None:
    """Peak Python allocation while chunking stays within 3x the text's size: the chunks (with
    their overlap) plus at most one copy of the longest sentence. Holding every sentence at
    once cost 34x on tiny sentences."""
    size = len(text.encode("utf-8"))
    tracemalloc.start()
    try:
        chunks = chunk_text("big.txt", text, chunk_words=120, overlap_words=30)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert chunks[-1].end == len(text.rstrip())
    assert peak <= 3 * size, f"peak {peak / size:.1f}x the text"
