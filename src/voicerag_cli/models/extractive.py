"""Offline answerer: quote what answers the question from the retrieved passages' blocks, with
[n] citations. No LLM.

The passages come with the structure read at index time (`Passage.blocks`: prose, list items,
fields, table rows, signatures, code, with their spans). Every sentence of a text block is a
candidate; a trained reader (`models/reader`, when configured) scores each candidate's span in
its passage, else the text embedder's similarity does. The answer is the best candidate, led
by what it belongs to (a field's term, an object's signature), followed by the one structured
line or example that completes it (a setting's "Default: 4", the code its paragraph introduces),
and at most two more sentences that score close to it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from voicerag_cli.markup import join_code
from voicerag_cli.models.base import Answer, Passage, Query, Reading, embed_queries, passage_blocks, read_passages
from voicerag_cli.sentences import split_sentences, word_count
from voicerag_cli.stopwords import FUNCTION_WORDS
from voicerag_cli.structure import ChunkBlock, searchable_text

if TYPE_CHECKING:
    from voicerag_cli.config import Settings
    from voicerag_cli.models.base import PassageReader, Roles, TextEmbedder

NO_ANSWER = "I could not find an answer in the indexed documents."
MAX_SENTENCES = 3  # sentences quoted, besides the structured line or example that completes them
MAX_WORDS = 150  # an answer a person reads or hears: longer ones are cut at a sentence
RELATIVE_FLOOR = 0.8  # a further sentence joins the answer when it scores this close to the best
EXAMPLE_CHARS = 200  # an example is cut near this length
SEE_EXAMPLE = "(the example is in the written answer)"
MIN_WORDS = 3
TEXT_KINDS = frozenset(["prose", "list_item", "field", "table_row", "admonition", "signature"])
# Page furniture that documentation sources and generated HTML carry: never an answer.
_BOILERPLATE = re.compile(
    r"(?i)\b(?:copyright|all rights reserved|table of contents|edit on github|view page source|"
    r"previous\s+next|next\s+previous|built with sphinx|last updated|skip to (?:main )?content|"
    r"licensed under|this page|permalink)\b|©"
)
# A sentence opening with one of these leans on the one before it ("This can be done by ...").
_LEANING = re.compile(
    r"^(?:\(|(?:this|that|these|those|it|its|they|their|such|so|then|thus|hence|otherwise|however|also|"
    r"alternatively|instead|here|to do (?:so|this|that))\b)",
    re.IGNORECASE,
)
# The field line that holds a setting's fact: "Default: 4", "Type: int", "Environment variable: X".
_FACT_LINE = re.compile(r"(?i)^\s*(?:default(?: value)?|defaults? to|type|values?|choices|env(?:ironment)? var\w*)\b")
# A typed question that the reader finds no passage for (every passage's relevance below this
# probability) gets "found nothing" when the similarity rule agrees: calibrated on factoid
# questions (benchmarks/no_answer_threshold.py --reader), where docs questions score lower.
READER_MIN_RELEVANCE = 0.11
RELEVANCE_WEIGHT = 0.5  # how much a passage's relevance adds to its sentences' span scores
# With a reader, the similarity signals still count this much: the reader's span scores tell an
# answer from a restatement, similarity and naming what to use find the sentence on the topic.
SIMILARITY_WEIGHT = 1.0
# Without a reader: "how do I ..." is answered by a sentence naming what to use (an identifier,
# an option, a call, an assignment) or leading into an example; one that names nothing only
# restates the question, however similar it is.
_HOW_TO = re.compile(
    r"(?i)^\s*(?:how\s+(?:do|does|can|could|should|would|to|shall|must)\b|(?:what|which)\s+"
    r"(?:\w+\s+){0,3}(?:should|do|does|can|must)\s+(?:i|we|you)\b|is there a way\b)"
)
_CODE_TOKEN = re.compile(
    r"\b[A-Za-z]\w*_\w+|\b[A-Za-z_]\w+\.[A-Za-z_]\w+|\b\w+\(|(?<![\w-])--?[A-Za-z][\w-]*|\b\w+=\S|<\w+(?::\w+)?>"
)
NAMES_WHAT_TO_USE = 0.1
NAMES_WHAT_TO_USE_HOW = 0.3
# "How do I ..." is answered by an instruction: a sentence that tells what to do ("Use tables as
# the name of the extension.", "To enable it, pass ...", "You can set ..."), not one that
# describes the thing asked about ("The Tables extension adds ...").
_INSTRUCTION = re.compile(
    r"(?i)^(?:\W*)(?:(?:first|then|simply|just|now|instead|alternatively),?\s+)?(?:"
    r"(?:use|pass|set|call|add|run|install|create|enable|disable|put|write|register|import|define|specify|"
    r"give|wrap|subclass|configure|include|start|type|change|replace|make|provide|apply|load|select|choose|"
    r"mark|declare|attach|append|insert|override|implement|invoke|launch|open|point|prefix|place|list|"
    r"initiali[sz]e|instantiate|decorate|return|raise|bind|connect|send|publish|consume|serve|listen)\b"
    r"|to\s+\w+[^,.]{0,80},\s"
    r"|(?:you|one|we)\s+(?:can|could|should|must|may|need\s+to|have\s+to|will\s+need\s+to)\s+)"
)
INSTRUCTS_HOW = 0.3
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Candidate:
    """A sentence that may answer: where it is, and what it is read with."""

    position: int  # the passage's 0-based rank
    block: int  # its block's index in the passage's blocks
    start: int  # its span in the passage's text
    end: int
    text: str
    lead: str = ""  # what it belongs to, said before it when it does not say it itself
    example: bool = False  # it ends its block, and code follows


def _answer_like(sentence: str) -> bool:
    """Fragments, page furniture, questions quoted in a passage and symbol runs never answer."""
    text = sentence.strip()
    if word_count(text) < MIN_WORDS or text.endswith(("?", "？")) or _BOILERPLATE.search(text):
        return False
    letters = sum(ch.isalpha() for ch in text)
    return letters >= 0.5 * len(text.replace(" ", ""))


def candidates(position: int, passage: Passage) -> list[Candidate]:
    """The answerable sentences of a passage's text blocks, each with the term or signature it
    belongs to (a field's sentences after the first do not repeat the term)."""
    out = []
    text = passage.text
    blocks = passage_blocks(passage)
    for index, block in enumerate(blocks):
        if block.kind not in TEXT_KINDS:
            continue
        body = text[block.start : block.end]
        # a field's term leads its sentences; an admonition's label ("Added in version 2.0") does not
        lead = block.term if block.kind == "field" else _signature_of(block)
        sentences = split_sentences(body)
        code_follows = index + 1 < len(blocks) and blocks[index + 1].kind == "code"
        for number, sentence in enumerate(sentences):
            if not _answer_like(sentence.text) and not (block.kind == "signature" and sentence.text.strip()):
                continue
            said = sentence.text.strip()
            out.append(
                Candidate(
                    position,
                    index,
                    block.start + sentence.start,
                    block.start + sentence.end,
                    said,
                    "" if lead and said.startswith(lead) else lead,
                    code_follows and (number == len(sentences) - 1 or said.endswith(":")),
                )
            )
    return out


def _signature_of(block: ChunkBlock) -> str:
    """The object a description's body is about: its heading path ends with the signature."""
    if block.kind == "signature" or not block.heading_path:
        return ""
    last = block.heading_path[-1]
    return last if _looks_like_code(last) else ""


def _looks_like_code(text: str) -> bool:
    """A signature or an option ("--check", "serve(app, **kw)", "Session.get", "max_retries"),
    not a title: one token before any parenthesis, with code's punctuation or case."""
    name = text.split("(", 1)[0]
    return (
        len(text) <= 120
        and bool(name)
        and " " not in name.strip()
        and bool(re.search(r"[()_=.]|^--?\w|^[a-z]+[A-Z]\w*$", text))
        and not name.endswith(".")
    )


def _cut(text: str, limit: int = EXAMPLE_CHARS) -> str:
    if len(text) <= limit:
        return text
    cut = text.rfind("; ", 0, limit)
    return (text[:cut] if cut > limit // 2 else text[:limit].rsplit(" ", 1)[0]) + " …"


@functools.cache
def _stem() -> Callable[[str], str]:
    import snowballstemmer

    return snowballstemmer.stemmer("english").stemWord


def content_words(text: str) -> set[str]:
    """The words that carry content, stemmed, so "uploads" meets "upload"."""
    stem = _stem()
    return {stem(w) for w in (m.lower() for m in _WORD.findall(text)) if w not in FUNCTION_WORDS}


# A passage holding this share of the question's content words is about it, whatever its
# similarity: a short docs question ("How do I add my own filter?") scores low against any page.
MIN_COVERAGE = 0.6


def _covered(asked: set[str], passages: Sequence[Passage]) -> bool:
    return bool(asked) and any(len(asked & content_words(p.text)) >= MIN_COVERAGE * len(asked) for p in passages)


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


# The citation marker `generate` ends each quoted part with.
_CITATION = re.compile(r" \[(\d+)\](?= |$)")


@dataclass
class _Part:
    position: int
    shown: str
    said: str


class ExtractiveGenerator:
    def __init__(
        self,
        embedder: TextEmbedder,
        max_sentences: int = MAX_SENTENCES,
        min_score: float = 0.0,
        reader: PassageReader | None = None,
    ) -> None:
        self.embedder = embedder
        self.max_sentences = max(1, min(max_sentences, MAX_SENTENCES))
        # Without a reader: below this best-passage similarity (typed questions) the index holds
        # nothing on the question.
        self.min_score = min_score
        self.reader = reader

    # --- scoring ------------------------------------------------------------------------
    def _reader_scores(
        self, question: str, passages: Sequence[Passage], found: list[Candidate]
    ) -> tuple[np.ndarray, np.ndarray]:
        assert self.reader is not None
        readings: list[Reading] = read_passages(self.reader, question, passages)
        shift = [len(searchable_text(p.text, p.heading_path)) - len(p.text) for p in passages]
        relevance = np.array([_probability(r.relevance) for r in readings], dtype=np.float32)
        scores = np.array(
            [
                readings[c.position].span_score(c.start + shift[c.position], c.end + shift[c.position])
                + RELEVANCE_WEIGHT * relevance[c.position]
                for c in found
            ],
            dtype=np.float32,
        )
        return relevance, scores

    def _embedder_scores(self, query: Query, question: str, found: list[Candidate]) -> np.ndarray:
        vectors = self.embedder.embed_texts([f"{c.lead}: {c.text}" if c.lead else c.text for c in found])
        if query.vector is not None and query.vector.shape[-1] == self.embedder.space.dim:
            asked_vector = np.asarray(query.vector, dtype=np.float32).reshape(-1)
        else:
            asked_vector = embed_queries(self.embedder, [question])[0]
        asked = content_words(question)
        overlap = np.array(
            [len(asked & content_words(f"{c.lead} {c.text}")) / max(len(asked), 1) for c in found], dtype=np.float32
        )
        prior = np.array([1.0 / (1 + c.position) for c in found], dtype=np.float32)
        names = np.array([bool(_CODE_TOKEN.search(f"{c.lead} {c.text}")) or c.example for c in found], dtype=np.float32)
        how_to = bool(_HOW_TO.match(question))
        naming = NAMES_WHAT_TO_USE_HOW if how_to else NAMES_WHAT_TO_USE
        scores = vectors @ asked_vector + 0.3 * overlap + 0.05 * prior + naming * names
        if how_to:
            instructs = np.array([bool(_INSTRUCTION.match(c.text)) for c in found], dtype=np.float32)
            scores = scores + INSTRUCTS_HOW * instructs
        return scores

    # --- the answer ---------------------------------------------------------------------
    def generate(self, query: Query, passages: list[Passage]) -> Answer:
        question = (query.text or "").strip()
        usable_vector = query.vector is not None and query.vector.shape[-1] == self.embedder.space.dim
        if not passages or not (question or usable_vector):
            return Answer(NO_ANSWER, [], found=False)
        # Follow-ups and transcripts score lower than the typed single questions that "found
        # nothing" was calibrated on: only those may get it.
        typed = bool(question) and query.typed and not query.history
        found = _unique(c for position, passage in enumerate(passages) for c in candidates(position, passage))
        if not found:
            return Answer(NO_ANSWER, [], found=False)
        asked = content_words(question)
        unrelated = typed and max(p.score for p in passages) < self.min_score and not _covered(asked, passages)
        if self.reader is not None and question:
            relevance, scores = self._reader_scores(question, passages, found)
            if unrelated and float(relevance.max()) < READER_MIN_RELEVANCE:
                return Answer(NO_ANSWER, [], found=False)
            scores = scores + SIMILARITY_WEIGHT * self._embedder_scores(query, question, found)
        else:
            if unrelated:
                return Answer(NO_ANSWER, [], found=False)
            scores = self._embedder_scores(query, question, found)
        return self._compose(passages, found, scores)

    def _compose(self, passages: list[Passage], found: list[Candidate], scores: np.ndarray) -> Answer:
        """The best candidate, then others scoring within RELATIVE_FLOOR of it, from any page:
        the next best sentences raise the chance that one answers (keeping to the best one's page
        lowered RGB-en and HotpotQA answer accuracy, with the reader too)."""
        order = [int(i) for i in np.argsort(-scores)]
        best = float(scores[order[0]])
        floor = best - abs(best) * (1 - RELATIVE_FLOOR)
        parts: list[_Part] = []
        used: set[tuple[int, int, int]] = set()  # (passage, start, end) of every sentence shown
        sentences = 0
        words = 0
        for rank, i in enumerate(order):
            chosen = found[i]
            if rank and (float(scores[i]) < floor or sentences >= self.max_sentences):
                break
            if (chosen.position, chosen.start, chosen.end) in used:
                continue
            part, members = self._part(passages[chosen.position], chosen, found)
            part_words = len(part.shown.split())
            if rank and words + part_words > MAX_WORDS:
                break
            used |= members
            parts.append(part)
            sentences += 1
            words += part_words
        cited = sorted({p.position + 1 for p in parts})
        quotes: dict[int, str] = {}
        for part in parts:
            quotes.setdefault(part.position + 1, part.shown)
        text = " ".join(f"{p.shown} [{p.position + 1}]" for p in parts)
        said = " ".join(p.said for p in parts)
        return Answer(text, cited, quotes=quotes, spoken=said)

    def _part(
        self, passage: Passage, chosen: Candidate, found: list[Candidate]
    ) -> tuple[_Part, set[tuple[int, int, int]]]:
        """The chosen sentence as quoted: the sentence it leans on before it, its lead, and what
        completes it: a setting's fact line, or the example or list its paragraph introduces."""
        blocks = passage_blocks(passage)
        own = [c for c in found if c.position == chosen.position and c.block == chosen.block]
        members = {(chosen.position, chosen.start, chosen.end)}
        shown = [chosen.text]
        index = next((n for n, c in enumerate(own) if c.start == chosen.start), 0)
        if _LEANING.match(chosen.text) and index > 0:
            before = own[index - 1]
            shown.insert(0, before.text)
            members.add((before.position, before.start, before.end))
        lead = chosen.lead if not (index > 0 and shown[0] != chosen.text) else own[index - 1].lead
        said = list(shown)
        block = blocks[chosen.block]
        fact = _fact_line(passage, block, chosen, members)
        if fact is not None and (lead or block.kind == "field"):
            shown.append(fact[0])
            said.append(fact[0])
            members.add(fact[1])
        else:
            example = self._completion(passage, blocks, chosen, own)
            if example is not None:
                shown.append(example[0])
                said.append(example[1])
        text = " ".join(shown)
        spoken = " ".join(said)
        if lead:
            text, spoken = f"{lead}: {text}", f"{lead}: {spoken}"
        return _Part(chosen.position, text, spoken), members

    @staticmethod
    def _completion(
        passage: Passage, blocks: Sequence[ChunkBlock], chosen: Candidate, own: list[Candidate]
    ) -> tuple[str, str] | None:
        """The example or list the chosen sentence leads into: the code block right after its
        block when it ends the block (or ends with a colon), or the list items after a colon."""
        ends_block = not own or own[-1].start == chosen.start
        following = chosen.block + 1
        if following >= len(blocks) or not (ends_block or chosen.text.endswith(":")):
            return None
        after = blocks[following]
        if after.kind == "code":
            return _cut(join_code(passage.text[after.start : after.end])), SEE_EXAMPLE
        if chosen.text.endswith(":") and after.kind == "list_item":
            items: list[str] = []
            for block in blocks[following:]:
                if block.kind != "list_item" or sum(map(len, items)) > EXAMPLE_CHARS:
                    break
                items.append(passage.text[block.start : block.end].strip())
            listed = _cut("; ".join(items))
            return listed, listed
        return None

    def renumbered(self, answer: Answer, numbers: dict[int, int]) -> Answer:
        """See DeepReader. The markers are the " [n]" that `generate` puts after each part."""

        def number(match: re.Match[str]) -> str:
            return f" [{numbers.get(int(match.group(1)), int(match.group(1)))}]"

        return dataclasses.replace(
            answer,
            text=_CITATION.sub(number, answer.text),
            cited=sorted(numbers.get(n, n) for n in answer.cited),
            quotes={numbers.get(n, n): quote for n, quote in answer.quotes.items()},
        )


def _fact_line(
    passage: Passage, block: ChunkBlock, chosen: Candidate, members: set[tuple[int, int, int]]
) -> tuple[str, tuple[int, int, int]] | None:
    """The first fact line ("Default: 120") after the chosen sentence in its block: too short
    to be a candidate itself, it holds the value the sentence is about."""
    body = passage.text[block.start : block.end]
    for sentence in split_sentences(body):
        start, end = block.start + sentence.start, block.start + sentence.end
        if start >= chosen.end and _FACT_LINE.match(sentence.text):
            key = (chosen.position, start, end)
            return (sentence.text.strip(), key) if key not in members else None
    return None


def _probability(logit: float) -> float:
    return 1.0 / (1.0 + math.exp(-logit))


def _unique(found: Iterable[Candidate]) -> list[Candidate]:
    """Candidates without repeats: overlapping chunks hold the same sentence twice; the better
    ranked passage's copy stays."""
    seen: set[str] = set()
    out = []
    for candidate in found:
        key = _normal(candidate.text)
        if key in seen:
            continue
        seen.add(key)
        out.append(candidate)
    return out


def create(settings: Settings, registry: Roles) -> ExtractiveGenerator:
    reader = registry.reader()
    return ExtractiveGenerator(
        registry.text_embedder(),
        settings.generator.max_sentences,
        settings.generator.min_score,
        reader=reader,
    )
