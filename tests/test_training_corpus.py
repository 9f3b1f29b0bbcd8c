"""Training texts for the speech embedder: WordNet parsing, held-out split, templates."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicerag_cli.training.corpus import build_corpus, is_held_out, split_long, wordnet_texts

# Lines in WordNet 3.0's data-file layout: pointers, then " | " and the gloss with quoted examples.
DATA = {
    "noun": (
        "  1 This software and database is being provided to you, the LICENSEE, by Princeton University\n"
        "02084071 05 n 02 dog 0 domestic_dog 0 000 | a member of the genus Canis that has been domesticated; "
        '"the dog barked all night"\n'
        "07679356 13 n 01 bread 0 000 | food made from dough of flour or meal and usually raised with yeast; "
        '"she bakes fresh bread every morning"; "bread"\n'
    ),
    "verb": '01664172 30 v 01 bake 0 000 | cook and make edible by putting in a hot oven; "bake the potatoes"\n',
    "adj": "00001740 00 a 01 able 0 000 | (usually followed by `to') having the necessary means or skill\n",
    "adv": '00001740 02 r 01 quickly 0 000 | with rapid movements; "he works quickly"\n',
}


def write_wordnet(folder: Path) -> Path:
    folder.mkdir()
    for pos, text in DATA.items():
        (folder / f"data.{pos}").write_text(text, encoding="utf-8")
    return folder


def test_wordnet_examples_and_definitions(tmp_path: Path) -> None:
    texts = wordnet_texts(write_wordnet(tmp_path / "wn"), limit=100, seed=0)
    examples = {
        "The dog barked all night",
        "She bakes fresh bread every morning",
        "Bake the potatoes",
        "He works quickly",
    }
    definitions = {
        "A member of the genus Canis that has been domesticated.",
        "Food made from dough of flour or meal and usually raised with yeast.",
        "Cook and make edible by putting in a hot oven.",
        "(usually followed by `to') having the necessary means or skill.",
        "With rapid movements.",
    }
    # the licence header and one-word examples ("bread") are skipped
    assert set(texts) == examples | definitions
    assert texts[: len(examples)] and set(texts[: len(examples)]) == examples  # usage examples first


def test_wordnet_limit_keeps_two_thirds_examples(tmp_path: Path) -> None:
    texts = wordnet_texts(write_wordnet(tmp_path / "wn"), limit=3, seed=0)
    assert len(texts) == 3
    assert sum(not t.endswith(".") for t in texts) == 2  # examples carry no added full stop


def test_missing_wordnet_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"data\.noun"):
        wordnet_texts(tmp_path, limit=10, seed=0)


def test_corpus_dedupes_and_splits_by_hash(tmp_path: Path) -> None:
    corpus = build_corpus(None, wordnet_dir=write_wordnet(tmp_path / "wn"), wordnet_limit=100)
    assert len({t.text.lower() for t in corpus}) == len(corpus)
    assert all(t.kind == "wordnet" and t.held_out == is_held_out(t.text) for t in corpus)
    assert build_corpus(None, wordnet_dir=tmp_path / "wn", wordnet_limit=100) == corpus  # deterministic


def test_split_long_cuts_at_clause_boundaries() -> None:
    sentence = " ".join(f"w{i}," if i == 15 else f"w{i}" for i in range(40))
    pieces = split_long(sentence)
    assert all(len(p.split()) <= 24 for p in pieces)
    assert " ".join(pieces).replace(",", "") == sentence.replace(",", "")


def test_wordpiece_targets_are_the_text_embedders_spoken_pieces() -> None:
    from voicerag_cli.training.wordpieces import BLANK, OTHER, wordpiece_targets

    texts = ["Who won the 2022 Nobel Prize?", "The prize went to Annie Ernaux.", "Who won?"]
    targets, vocabulary = wordpiece_targets(texts, train_text_ids=[0, 1], size=4)
    # counted over the training texts only; "?" and "." are not spoken, so not targets
    assert vocabulary[:2] == ["the", "prize"] and len(vocabulary) == 4
    assert "?" not in vocabulary and "." not in vocabulary
    first = targets[0].tolist()
    assert len(first) == 7  # who won the 202 ##2 nobel prize: MiniLM's own wordpieces
    assert first[2] == vocabulary.index("the") + OTHER + 1 and first[-1] == vocabulary.index("prize") + OTHER + 1
    assert all(c > BLANK for t in targets for c in t.tolist())
    assert OTHER in first  # pieces outside the 4 most frequent share one class
