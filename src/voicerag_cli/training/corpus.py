"""Training texts: HotpotQA questions and context sentences, templated questions on HotpotQA
titles, and (optionally) phrases covering the text embedder's whole-word vocabulary and
everyday English from WordNet (its usage examples and definitions: Debian `wordnet-base`).

Nothing from RGB is read here: RGB-en is the held-out benchmark. Texts are split by a stable
hash, so the same sentence is always on the same side: `HELD_OUT_PERCENT` of them are never
trained on and serve the held-out-sentence evaluation.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

HELD_OUT_PERCENT = 3
MAX_WORDS = 24  # longer sentences are cut at clause boundaries: clips stay a few seconds long
MIN_WORDS = 3

# Generic question forms (entity slot {e}, year slot {y}); entities come from HotpotQA titles.
ENTITY_TEMPLATES = (
    "Who is {e}?",
    "What is {e}?",
    "Where is {e}?",
    "Tell me about {e}.",
    "What is {e} known for?",
    "When was {e} founded?",
    "Who founded {e}?",
    "Where was {e} born?",
    "When did {e} die?",
    "Who directed {e}?",
    "When was {e} released?",
    "Who wrote {e}?",
    "What genre is {e}?",
    "How old is {e}?",
    "{e} location",
    "{e} history",
    "Who owns {e}?",
    "Who acquired {e}?",
    "Who is the CEO of {e}?",
    "What nationality is {e}?",
    "Which country is {e} in?",
    "How many people live in {e}?",
)
YEAR_TEMPLATES = (
    "What happened to {e} in {y}?",
    "Who won the {y} {e}?",
    "Where was the {y} {e} held?",
    "What was the revenue of {e} in {y}?",
    "Who won {e} in {y}?",
    "When is {e} {y}?",
    "{e} {y} winner",
    "Which team won {e} in {y}?",
    "Who was the president of {e} in {y}?",
    "What did {e} announce in {y}?",
)


@dataclass(frozen=True)
class Text:
    text: str
    kind: str  # "question", "sentence", "template", "vocabulary", "wordnet"
    held_out: bool


def is_held_out(text: str) -> bool:
    digest = hashlib.sha1(text.strip().lower().encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % 100 < HELD_OUT_PERCENT


def split_long(sentence: str) -> list[str]:
    """Cut a long sentence at commas/semicolons into pieces of at most MAX_WORDS words."""
    words = sentence.split()
    if len(words) <= MAX_WORDS:
        return [sentence]
    pieces: list[str] = []
    current: list[str] = []
    for word in words:
        current.append(word)
        if (len(current) >= MAX_WORDS // 2 and word[-1:] in ",;:") or len(current) >= MAX_WORDS:
            pieces.append(" ".join(current).rstrip(",;:"))
            current = []
    if current:
        pieces.append(" ".join(current))
    return pieces


def _clean_title(title: str) -> str:
    return re.sub(r"\s*\([^)]*\)", "", title).strip()


def hotpot_texts(path: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """(text, kind) pairs from a HotpotQA distractor file, and its paragraph titles."""
    records = json.loads(path.read_text(encoding="utf-8"))
    texts: list[tuple[str, str]] = []
    titles: list[str] = []
    for record in records:
        texts.append((record["question"].strip(), "question"))
        for title, sentences in record["context"]:
            titles.append(_clean_title(title))
            for sentence in sentences:
                for piece in split_long(" ".join(sentence.split())):
                    if len(piece.split()) >= MIN_WORDS:
                        texts.append((piece, "sentence"))
    return texts, sorted(set(titles))


def templated_texts(titles: list[str], per_title: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out: list[str] = []
    for title in titles:
        if not title:
            continue
        for template in rng.sample(ENTITY_TEMPLATES, per_title):
            out.append(template.format(e=title))
        if rng.random() < 0.5:
            out.append(rng.choice(YEAR_TEMPLATES).format(e=title, y=rng.randint(1950, 2025)))
    return out


def vocabulary_phrases(vocab_file: Path, seed: int) -> list[str]:
    """Every whole word of the text embedder's WordPiece vocabulary (plus years) exactly once, in
    random phrases of 1-4 words. Ten thousand sentences cannot cover the words people ask about;
    these phrases teach the head how many more words sound, each mapped to its own text vector."""
    words = [w for w in vocab_file.read_text(encoding="utf-8").split() if w.isalpha() and w.isascii() and len(w) >= 3]
    words += [str(year) for year in range(1950, 2031)]
    rng = random.Random(seed)
    rng.shuffle(words)
    phrases: list[str] = []
    while words:
        n = rng.randint(1, 4)
        phrases.append(" ".join(words[:n]))
        words = words[n:]
    return phrases


def wordnet_texts(folder: Path, limit: int, seed: int) -> list[str]:
    """Everyday sentences: WordNet 3.0's usage examples ("the pilot reported two kills during the
    mission") and definitions, from the `data.<pos>` files of a wordnet-base install. HotpotQA
    is Wikipedia prose about people and places; these cover the common words it lacks."""
    examples: list[str] = []
    glosses: list[str] = []
    for pos in ("noun", "verb", "adj", "adv"):
        path = folder / f"data.{pos}"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: point --wordnet at WordNet's dict folder")
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("  ") or " | " not in line:  # the licence header
                continue
            for part in line.split(" | ", 1)[1].split(";"):
                part = part.strip()
                quoted = part.startswith('"') and part.endswith('"')
                text = part.strip('"').strip()
                words = text.split()
                if not (MIN_WORDS <= len(words) <= MAX_WORDS) or not text.isascii() or "_" in text:
                    continue
                (examples if quoted else glosses).append(text[0].upper() + text[1:] + ("" if quoted else "."))
    rng = random.Random(seed)
    rng.shuffle(examples)
    rng.shuffle(glosses)
    # Mostly real usage (whole sentences), a third definitions (vocabulary in plain words).
    texts = examples[: (2 * limit) // 3]
    return texts + glosses[: limit - len(texts)]


def build_corpus(
    hotpot_path: Path | None,
    per_title: int = 4,
    seed: int = 0,
    vocab_file: Path | None = None,
    wordnet_dir: Path | None = None,
    wordnet_limit: int = 20_000,
) -> list[Text]:
    pairs: list[tuple[str, str]] = []
    if hotpot_path is not None:
        pairs, titles = hotpot_texts(hotpot_path)
        pairs += [(t, "template") for t in templated_texts(titles, per_title, seed)]
    if vocab_file is not None:
        pairs += [(t, "vocabulary") for t in vocabulary_phrases(vocab_file, seed)]
    if wordnet_dir is not None:
        pairs += [(t, "wordnet") for t in wordnet_texts(wordnet_dir, wordnet_limit, seed)]
    seen: set[str] = set()
    corpus: list[Text] = []
    for text, kind in pairs:
        key = text.lower()
        if key not in seen:
            seen.add(key)
            corpus.append(Text(text, kind, is_held_out(text)))
    return corpus
