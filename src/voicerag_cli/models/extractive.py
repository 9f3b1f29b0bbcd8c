"""Offline answer generator: pick the retrieved passages' sentences that best answer the
question and return them with [n] citations. Needs no LLM; uses the text embedder that is
already loaded for retrieval, plus word overlap to favour sentences naming the asked entities."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from voicerag_cli.markup import plain_text
from voicerag_cli.models.base import Answer, Passage, Query, embed_queries
from voicerag_cli.sentences import split_sentences, word_count

if TYPE_CHECKING:
    from voicerag_cli.config import Settings
    from voicerag_cli.models.base import Roles, TextEmbedder

_WORD = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "from",
        "by",
        "with",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "did",
        "do",
        "does",
        "that",
        "this",
        "these",
        "those",
        "it",
        "its",
        "as",
        "into",
        "than",
    ]
)
RELATIVE_FLOOR = 0.8
MIN_WORDS = 4
NO_ANSWER = "I could not find an answer in the indexed documents."
# Page furniture that documentation sources and generated HTML carry: never an answer.
_BOILERPLATE = re.compile(
    r"(?i)\b(?:copyright|all rights reserved|table of contents|edit on github|view page source|"
    r"previous\s+next|next\s+previous|built with sphinx|last updated|skip to (?:main )?content|"
    r"licensed under|this page|permalink)\b|©"
)


def _answer_like(sentence: str) -> bool:
    """Headings, list fragments, page furniture, code-only lines and questions quoted in a
    passage (FAQ pages, search snippets) never answer a question."""
    text = sentence.strip()
    if word_count(text) < MIN_WORDS or text.startswith("#") or text.endswith(("?", "？")):
        return False
    if _BOILERPLATE.search(text):
        return False
    letters = sum(ch.isalpha() for ch in text)
    return letters >= 0.5 * len(text.replace(" ", ""))  # mostly symbols: code or a table rule


def _content_words(text: str) -> set[str]:
    return {w for w in (m.lower() for m in _WORD.findall(text)) if w not in _STOP}


class ExtractiveGenerator:
    def __init__(self, embedder: TextEmbedder, max_sentences: int, min_score: float = 0.0) -> None:
        self.embedder = embedder
        self.max_sentences = max_sentences
        # Below this best-passage similarity (text queries) the index holds nothing on the
        # question: say so instead of answering from an unrelated page. Calibrated, see README.
        self.min_score = min_score

    def generate(self, query: Query, passages: list[Passage]) -> Answer:
        question = (query.text or "").strip()
        # Follow-ups are searched with a vector blended with the previous question, which
        # scores lower: the threshold was calibrated on single questions only.
        # Only typed questions: a transcript's ASR errors lower its scores (the bee question
        # spoken by espeak-ng scored below the threshold), and that was not calibrated.
        typed = question and query.typed and not query.history
        if typed and passages and max(p.score for p in passages) < self.min_score:
            return Answer(NO_ANSWER, [], found=False)
        candidates: list[tuple[int, str]] = []  # (passage position, sentence)
        seen: set[str] = set()
        for position, passage in enumerate(passages):
            # Sentences of the passage's prose: markup (reST, Markdown, HTML) and headings removed.
            for sentence in split_sentences(plain_text(passage.text)):
                key = sentence.text.lower()
                # A question found in a passage (FAQ pages, search snippets) never answers one.
                if key not in seen and _answer_like(sentence.text):
                    seen.add(key)
                    candidates.append((position, sentence.text))
        usable_vector = query.vector is not None and query.vector.shape[-1] == self.embedder.space.dim
        if not candidates or not (question or usable_vector):
            return Answer(NO_ANSWER, [], found=False)

        sentence_vectors = self.embedder.embed_texts([text for _, text in candidates])
        if usable_vector:  # the retrieval vector: the question (in context), or the speech itself in e2e
            query_vector = np.asarray(query.vector, dtype=np.float32).reshape(-1)
        else:
            query_vector = embed_queries(self.embedder, [question])[0]
        semantic = sentence_vectors @ query_vector
        asked = _content_words(question)
        overlap = np.array(
            [len(asked & _content_words(text)) / max(len(asked), 1) for _, text in candidates],
            dtype=np.float32,
        )
        # Earlier (better-retrieved) passages get a small prior.
        rank_prior = np.array([1.0 / (1 + position) for position, _ in candidates], dtype=np.float32)
        scores = semantic + 0.3 * overlap + 0.05 * rank_prior

        # Keep only sentences close to the best one: a weakly related sentence dilutes the answer.
        ranked = np.argsort(-scores)[: self.max_sentences]
        best = float(scores[ranked[0]])
        chosen = [int(i) for i in ranked if float(scores[i]) >= RELATIVE_FLOOR * best]
        parts = [f"{candidates[i][1]} [{candidates[i][0] + 1}]" for i in chosen]
        cited = sorted({candidates[i][0] + 1 for i in chosen})
        quotes: dict[int, str] = {}
        for i in chosen:  # the best sentence of each cited passage
            quotes.setdefault(candidates[i][0] + 1, candidates[i][1])
        return Answer(" ".join(parts), cited, quotes=quotes)


def create(settings: Settings, registry: Roles) -> ExtractiveGenerator:
    return ExtractiveGenerator(registry.text_embedder(), settings.generator.max_sentences, settings.generator.min_score)
