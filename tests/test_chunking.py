"""Sentence splitting and chunking: whole sentences, word budgets, overlap, CJK text."""

from __future__ import annotations

import itertools
import tracemalloc

import pytest

from voicerag_cli.index.chunking import Chunk, chunk_document
from voicerag_cli.sentences import split_sentences, word_count
from voicerag_cli.structure import parse
from voicerag_cli.structure.chunks import CHARS_PER_WORD

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


def read_text(text: str, suffix: str = ".txt") -> str:
    """A file's text as the index reads it: its blocks' text, a blank line apart."""
    return "\n\n".join(block.text for block in parse(text, suffix))


def check_chunks(text: str, chunks: list[Chunk], chunk_words: int, overlap_words: int) -> None:
    """The invariants every chunking must satisfy: numbered in order, each within the word
    budget (a lone block piece may fill it), each found at its offset in the text as read, and
    every sentence of that text in some chunk."""
    read = read_text(text)
    assert chunks, "text with sentences gave no chunks"
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert word_count(chunk.text) <= chunk_words or len(chunk.blocks) == 1
        first = chunk.text[: chunk.blocks[0].end]
        assert read[chunk.start : chunk.start + len(first)] == first
    quoted = " ".join(c.text for c in chunks)
    assert all(s.text in quoted for s in split_sentences(read))
    for before, after in itertools.pairwise(chunks):
        assert after.start > before.start, "chunks must advance"


def test_sentence_splitter_keeps_offsets() -> None:
    text = 'He said "stop." Then left!  Why?\n\nA heading\n\nLast one'
    sentences = split_sentences(text)
    assert [s.text for s in sentences] == ['He said "stop."', "Then left!", "Why?", "A heading", "Last one"]
    assert all(text[s.start : s.end] == s.text for s in sentences)


def test_chunks_pack_whole_paragraphs_with_overlap() -> None:
    text = "\n\n".join(f"Paragraph {NUMBERS[i % 12]} of group {i // 12} says this." for i in range(30))
    chunks = chunk_document("doc.txt", text, ".txt", chunk_words=30, overlap_words=10)
    check_chunks(text, chunks, 30, 10)
    assert len(chunks) > 3
    # consecutive chunks overlap: the paragraph ending one chunk starts the next
    for before, after in itertools.pairwise(chunks):
        assert after.text.split("\n\n")[0] == before.text.split("\n\n")[-1]
    assert all(c.source == "doc.txt" for c in chunks)


def test_no_overlap_gives_adjacent_chunks() -> None:
    text = english(24)
    chunks = chunk_document("doc.txt", text, ".txt", chunk_words=21, overlap_words=0)
    check_chunks(text, chunks, 21, 0)
    for before, after in itertools.pairwise(chunks):
        assert after.start >= before.end


def test_a_paragraph_over_the_budget_is_cut_between_sentences() -> None:
    text = " ".join(f"Sentence number {NUMBERS[i % 12]} is here." for i in range(12))
    chunks = chunk_document("doc.txt", text, ".txt", chunk_words=10, overlap_words=0)
    check_chunks(text, chunks, 10, 0)
    assert all(c.text.endswith(".") for c in chunks)


@pytest.mark.parametrize("text", ["", "   \n\n  \t"])
def test_empty_text_gives_no_chunks(text: str) -> None:
    assert chunk_document("empty.txt", text, ".txt", 120, 30) == []


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
    chunks = chunk_document("zh.txt", text, ".txt", chunk_words=40, overlap_words=12)
    check_chunks(text, chunks, 40, 12)
    assert len(chunks) >= 2
    assert all(c.text[-1] in "。！？；" for c in chunks)


def test_mixed_script_text() -> None:
    text = "Honey bees dance. 蜜蜂会跳舞。They point to food. 它们指向食物。" * 4
    chunks = chunk_document("mixed.md", text, ".txt", chunk_words=12, overlap_words=4)
    check_chunks(text, chunks, 12, 4)


def test_content_hash_is_stable_and_content_based() -> None:
    a = chunk_document("a.txt", "Same text here. And more.", ".txt", 120, 30)[0]
    b = chunk_document("b.txt", "Same text here. And more.", ".txt", 120, 30)[0]
    c = chunk_document("a.txt", "Other text here. And more.", ".txt", 120, 30)[0]
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
    chunks = chunk_document("line.txt", text, ".txt", chunk_words=120, overlap_words=30)
    assert max(len(c.text) for c in chunks) <= 120 * CHARS_PER_WORD
    assert max(word_count(c.text) for c in chunks) <= 120
    # nothing is dropped: the pieces hold every non-space character of the text
    assert sum(len("".join(c.text.split())) for c in chunks) >= len("".join(text.split()))


@pytest.mark.parametrize(
    "text",
    [
        "word " * 2_000_000,  # a 10 MB single line
        "Short one. " * 100_000,  # 1.1 MB of tiny sentences: a sentence object each, were they all held
    ],
    ids=["10MB-line", "short-sentences"],
)
def test_chunking_memory_stays_a_small_multiple_of_the_text(text: str) -> None:
    """Peak Python allocation while reading and chunking stays a bounded multiple of the text's
    size (its blocks, the chunks and their layouts); holding every sentence object at once cost
    34x on tiny sentences. Files over 8 MiB are read in pieces of about 4 Mi characters
    (`index.documents`), so this multiple applies to a piece, not to a whole large file."""
    size = len(text.encode("utf-8"))
    tracemalloc.start()
    try:
        chunks = chunk_document("big.txt", text, ".txt", chunk_words=120, overlap_words=30)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert chunks
    assert peak <= 16 * size, f"peak {peak / size:.1f}x the text"
