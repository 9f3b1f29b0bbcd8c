"""Offline answer generator: pick the retrieved passages' sentences that best answer the
question and return them with [n] citations. Needs no LLM; uses the text embedder that is
already loaded for retrieval, plus word overlap to favour sentences naming the asked entities."""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from voicerag_cli.markup import Block, blocks
from voicerag_cli.models.base import Answer, Passage, Query, embed_queries
from voicerag_cli.sentences import split_sentences, word_count
from voicerag_cli.stopwords import FUNCTION_WORDS

if TYPE_CHECKING:
    from voicerag_cli.config import Settings
    from voicerag_cli.models.base import Roles, TextEmbedder

_WORD = re.compile(r"\w+", re.UNICODE)
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


# A sentence opening with one of these leans on its neighbour ("This can be done by...",
# "(If a slash is given, ...)"): quoted alone it loses what it is about.
_LEANING = re.compile(
    r"^(?:\(|(?:this|that|these|those|it|its|they|their|such|so|then|thus|hence|otherwise|however|also|"
    r"alternatively|instead|here|(?:in|for|with) (?:that|this|such) (?:case|way|reason)|to do (?:so|this|that))\b)",
    re.IGNORECASE,
)
# A following sentence may also refer back inside ("X can be used for these patches").
_REFERS_BACK = re.compile(r"(?i)\b(?:for|to|in|with|of|by|from) (?:this|these|that|those|such)\b")
MAX_LEANING = 2  # sentences added after a quoted one that lean on it
EXAMPLE_CHARS = 200  # an example shown after its lead-in ("...like this:") is cut near this length
SEE_EXAMPLE = "(the example is in the written answer)"
_POINTS_AHEAD = re.compile(r"(?i)\b(?:the following|as follows|like this|like so|below)\b")
LEAD_IN_WORDS = 4  # "Example:", "Example usage:": a paragraph this short only introduces what follows


# "How do I ..." is answered by a sentence naming what to use: an identifier (snake_case, a dotted
# name, a call), an option (--debug, -k), an assignment (required=True), a placeholder (<int:id>),
# or the example it introduces. A sentence that only restates the topic ("We want to be able to
# serve the uploaded files") scores as high on similarity and names nothing.
_CODE_TOKEN = re.compile(
    r"\b[A-Za-z]\w*_\w+|\b[A-Za-z_]\w+\.[A-Za-z_]\w+|\b\w+\(|(?<![\w-])--?[A-Za-z][\w-]*|\b\w+=\S|<\w+(?::\w+)?>"
)
NAMES_WHAT_TO_USE = 0.1
# ...and weighs more when the question asks how to do something or what to use: then a sentence
# that names nothing only restates the question, however similar it is.
NAMES_WHAT_TO_USE_HOW = 0.3
_HOW_TO = re.compile(
    r"(?i)^\s*(?:how\s+(?:do|does|can|could|should|would|to|shall|must)\b|(?:what|which)\s+"
    r"(?:\w+\s+){0,3}(?:should|do|does|can|must)\s+(?:i|we|you)\b|is there a way\b)"
)
# Sentences about the documentation itself point elsewhere instead of answering.
_POINTER = re.compile(
    r"(?i)^\s*see\b|\b(?:see (?:the|also|below|above)|this (?:documentation|document|page|section|chapter|tutorial|guide)|"
    r"the (?:tutorial|documentation|docs|guide) (?:goes|go|covers?|explains?|describes?)|goes over|"
    r"(?:described|explained|covered) (?:here|below|later|in the)|is not exhaustive|the following (?:pages|sections)|"
    r"(?:these|the) docs)\b"
)
POINTS_ELSEWHERE = 0.15


@dataclass(frozen=True)
class _Candidate:
    position: int  # the passage's 0-based rank
    sentence: str  # the sentence scored and quoted
    unit: str  # what the answer shows: the sentence with the neighbours it needs
    spoken: str  # the unit read aloud: an example it shows is announced, not read
    members: frozenset[tuple[int, int, int]]  # (passage, block, sentence) of every sentence in `unit`
    names_code: bool = False  # quotes inline code of its paragraph ("use the `set` tag") or shows an example
    example: _Example | None = None  # the example its paragraph leads into, where the unit stops short of it

    def with_example(self) -> _Candidate:
        """The unit going on to the example its paragraph leads into: docs describe code in the
        paragraph before it ("You can also exclude fields by passing in the exclude parameter."
        then `UserSchema(exclude=...)`), or end that paragraph with a colon a sentence or two
        after the one that names the topic ("... shouldn't be changed after instantiation. If
        you'd like to enforce it, attrs will try to help:")."""
        if self.example is None:
            return self
        return dataclasses.replace(
            self,
            unit=f"{self.unit} {self.example.shown}",
            spoken=f"{self.spoken} {self.example.said}",
            members=self.members | self.example.members,
            names_code=True,
        )


@dataclass(frozen=True)
class _Example:
    shown: str  # the rest of the paragraph, if any, then the code
    said: str  # the rest of the paragraph, then SEE_EXAMPLE
    members: frozenset[tuple[int, int, int]]  # the rest of the paragraph's sentences


def _units(position: int, passage_blocks: list[Block]) -> list[_Candidate]:
    """The answerable sentences of one passage, each with what it needs to be read alone: the
    sentence before it when it leans on it, the sentences after it that lean on it, and what
    it introduces when it ends with a colon ("...like this:", "...the following:") or is
    followed by a short lead-in ("Example:"): the example, or the list items."""
    out: list[_Candidate] = []
    split = [[s.text for s in split_sentences(b.text)] if b.kind == "prose" else [] for b in passage_blocks]
    leads = [_introduced(passage_blocks, split, b) for b in range(len(split))]  # what each block introduces
    # List items a closing colon shows whole are quoted with it, not alone: "Create a custom
    # Field class" is one of "There are three ways to create a custom-formatted field:"
    in_lists = {
        item
        for sentences, lead in zip(split, leads, strict=True)
        if sentences and sentences[-1].endswith(":") and lead
        for item in lead[2]
    }
    for b, sentences in enumerate(split):
        if b in in_lists:
            continue
        for i, sentence in enumerate(sentences):
            if not _answer_like(sentence):
                continue
            first = i - 1 if i > 0 and _LEANING.match(sentence) else i
            last = i
            while last + 1 < len(sentences) and last - i < MAX_LEANING and _leans_back(sentences[last + 1]):
                last += 1
            shown: list[str] = []
            said: list[str] = []
            if last == len(sentences) - 1:
                introduced = leads[b]
                if introduced is None:  # it announces what the passage does not hold
                    if last == i:
                        continue
                    last -= 1  # a follower announcing it: the unit ends before it
                else:
                    shown, said, _ = introduced
            parts = sentences[first : last + 1]
            members = frozenset((position, b, j) for j in range(first, last + 1))
            names_code = SEE_EXAMPLE in said or _quotes_literal(" ".join(parts), passage_blocks[b].literals)
            example = None
            if not shown:
                example = _example_after(passage_blocks, split, b, last, position, leads[b])
            out.append(
                _Candidate(
                    position, sentence, " ".join(parts + shown), " ".join(parts + said), members, names_code, example
                )
            )
    return out


def _quotes_literal(text: str, literals: tuple[str, ...]) -> bool:
    """Whether `text` names one of its paragraph's inline code spans as a whole word (a ``x``
    elsewhere in the paragraph does not make "example" name it)."""
    return any(re.search(rf"(?<!\w){re.escape(literal)}(?!\w)", text) for literal in literals)


def _leans_back(sentence: str) -> bool:
    return bool(_LEANING.match(sentence) or _REFERS_BACK.search(sentence))


def _introduced(
    passage_blocks: list[Block], split: list[list[str]], b: int
) -> tuple[list[str], list[str], list[int]] | None:
    """What the end of block `b` introduces, as (shown, said) parts and the prose blocks they
    show whole: the code after a closing colon, after a sentence pointing ahead ("Use the following
    ..."), or after a short lead-in paragraph ("Example:"), cut near EXAMPLE_CHARS and said as
    SEE_EXAMPLE; the paragraphs (list items) after a closing colon, whole ones up to
    EXAMPLE_CHARS. None when block `b` ends with a colon and nothing follows in the passage."""
    following = b + 1
    there = following < len(passage_blocks)
    if split[b] and split[b][-1].endswith(":"):
        if there and passage_blocks[following].kind == "code":
            return [_cut_code(passage_blocks[following].text)], [SEE_EXAMPLE], []
        # the list items that follow, or else the one paragraph that follows
        items: list[str] = []
        whole: list[int] = []  # the blocks shown whole
        for index, block in enumerate(passage_blocks[following:], start=following):
            if block.kind != "prose" or (items and not block.item):
                break
            if sum(map(len, items)) + len(block.text) > EXAMPLE_CHARS:
                if not items:  # one long paragraph: its first words
                    items.append(block.text[:EXAMPLE_CHARS].rsplit(" ", 1)[0] + " …")
                break
            items.append(block.text)
            whole.append(index)
            if not block.item:
                break
        return ([_list(items)], [_list(items)], whole) if items else None
    # "Use the following to generate the script." announces the code right after it without a colon
    if split[b] and there and passage_blocks[following].kind == "code" and _POINTS_AHEAD.search(split[b][-1]):
        return [_cut_code(passage_blocks[following].text)], [SEE_EXAMPLE], []
    if there and following + 1 < len(passage_blocks) and passage_blocks[following + 1].kind == "code":
        lead = split[following]
        if len(lead) == 1 and lead[0].endswith(":") and word_count(lead[0]) <= LEAD_IN_WORDS:
            return [lead[0], _cut_code(passage_blocks[following + 1].text)], [lead[0], SEE_EXAMPLE], [following]
    return [], [], []


def _example_after(
    passage_blocks: list[Block],
    split: list[list[str]],
    b: int,
    last: int,
    position: int,
    introduced: tuple[list[str], list[str], list[int]] | None,
) -> _Example | None:
    """The example block `b` leads into after its sentence `last`: the code right after the
    block when `last` ends it, or the code the block's closing colon introduces (`introduced`,
    its `_introduced`) within MAX_LEANING sentences after `last` (those sentences shown with
    it). None otherwise."""
    rest = split[b][last + 1 :]
    following = b + 1
    if not rest:
        if following < len(passage_blocks) and passage_blocks[following].kind == "code":
            return _Example(_cut_code(passage_blocks[following].text), SEE_EXAMPLE, frozenset())
        return None
    if len(rest) > MAX_LEANING or not all(_answer_like(sentence) or sentence.endswith(":") for sentence in rest):
        return None
    if not introduced or SEE_EXAMPLE not in introduced[1]:  # it leads into a list, or into nothing
        return None
    shown, said, _ = introduced
    members = frozenset((position, b, j) for j in range(last + 1, len(split[b])))
    return _Example(" ".join(rest + shown), " ".join(rest + said), members)


def _list(items: list[str]) -> str:
    """List items on one line: "; " between them, unless an item already ends a sentence."""
    return (
        " ".join(item if item.endswith((".", ";", "!", "?", "。")) else item + ";" for item in items[:-1])
        + (" " if len(items) > 1 else "")
        + items[-1]
    )


def _cut_code(code: str) -> str:
    """An example cut near EXAMPLE_CHARS, at a statement boundary where there is one."""
    if len(code) <= EXAMPLE_CHARS:
        return code
    cut = code.rfind("; ", 0, EXAMPLE_CHARS)
    return (code[:cut] if cut > 0 else code[:EXAMPLE_CHARS].rstrip()) + " …"


@functools.cache
def _stem() -> Callable[[str], str]:
    import snowballstemmer

    return snowballstemmer.stemmer("english").stemWord


def _content_words(text: str) -> set[str]:
    """The words that carry content, stemmed, so "uploads" meets "upload" and "sessions" "session"."""
    stem = _stem()
    return {stem(w) for w in (m.lower() for m in _WORD.findall(text)) if w not in FUNCTION_WORDS}


# A passage holding this share of the question's content words is about it, whatever its
# similarity: a short docs question ("How do I add my own filter?") scores low against any page.
# Calibrated with the threshold: it gave up no correct "found nothing" there (README).
MIN_COVERAGE = 0.6


def _covered(asked: set[str], passages: list[Passage]) -> bool:
    """Whether a passage holds MIN_COVERAGE of the question's content words `asked`."""
    return bool(asked) and any(len(asked & _content_words(p.text)) >= MIN_COVERAGE * len(asked) for p in passages)


# The citation marker `generate` ends each quoted unit with (code inside a unit has no space before "[").
_CITATION = re.compile(r" \[(\d+)\](?= |$)")


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
        asked = _content_words(question)
        if typed and passages and max(p.score for p in passages) < self.min_score and not _covered(asked, passages):
            return Answer(NO_ANSWER, [], found=False)
        # Sentences of the passages' prose (markup, headings and code out), each with the
        # neighbours it needs. A sentence found in several (overlapping) passages keeps the
        # occurrence that shows the most of it (a chunk boundary may cut off its example).
        best_of: dict[str, _Candidate] = {}
        for position, passage in enumerate(passages):
            for candidate in _units(position, blocks(passage.text)):
                key = candidate.sentence.lower()
                if key not in best_of or len(candidate.unit) > len(best_of[key].unit):
                    best_of[key] = candidate
        candidates = sorted(best_of.values(), key=lambda c: c.position)
        how_to = bool(_HOW_TO.match(question))
        if how_to:  # "how do I ...": the example a sentence's paragraph leads into is the answer's half
            candidates = [c.with_example() for c in candidates]
        usable_vector = query.vector is not None and query.vector.shape[-1] == self.embedder.space.dim
        if not candidates or not (question or usable_vector):
            return Answer(NO_ANSWER, [], found=False)

        sentence_vectors = self.embedder.embed_texts([c.sentence for c in candidates])
        if usable_vector:  # the retrieval vector: the question (in context), or the speech itself in e2e
            query_vector = np.asarray(query.vector, dtype=np.float32).reshape(-1)
        else:
            query_vector = embed_queries(self.embedder, [question])[0]
        semantic = sentence_vectors @ query_vector
        overlap = np.array(
            [len(asked & _content_words(c.sentence)) / max(len(asked), 1) for c in candidates],
            dtype=np.float32,
        )
        # Earlier (better-retrieved) passages get a small prior.
        rank_prior = np.array([1.0 / (1 + c.position) for c in candidates], dtype=np.float32)
        names = np.array([c.names_code or bool(_CODE_TOKEN.search(c.unit)) for c in candidates], dtype=np.float32)
        naming_weight = NAMES_WHAT_TO_USE_HOW if how_to else NAMES_WHAT_TO_USE
        pointer = np.array([bool(_POINTER.search(c.sentence)) for c in candidates], dtype=np.float32)
        scores = semantic + 0.3 * overlap + 0.05 * rank_prior + naming_weight * names - POINTS_ELSEWHERE * pointer

        # Keep only sentences close to the best one: a weakly related sentence dilutes the answer.
        ranked = np.argsort(-scores)[: self.max_sentences]
        best = float(scores[ranked[0]])
        parts: list[str] = []
        said: list[str] = []
        shown: set[tuple[int, int, int]] = set()
        quotes: dict[int, str] = {}
        for i in (int(i) for i in ranked if float(scores[i]) >= RELATIVE_FLOOR * best):
            chosen = candidates[i]
            if chosen.members & shown:  # already in the answer as another sentence's neighbour
                continue
            shown |= chosen.members
            parts.append(f"{chosen.unit} [{chosen.position + 1}]")
            said.append(chosen.spoken)
            quotes.setdefault(chosen.position + 1, chosen.sentence)  # the best sentence of each cited passage
        return Answer(" ".join(parts), sorted(quotes), quotes=quotes, spoken=" ".join(said))

    def renumbered(self, answer: Answer, numbers: dict[int, int]) -> Answer:
        """See DeepReader. The markers are the " [n]" that `generate` puts after each unit."""

        def number(match: re.Match[str]) -> str:
            return f" [{numbers.get(int(match.group(1)), int(match.group(1)))}]"

        return dataclasses.replace(
            answer,
            text=_CITATION.sub(number, answer.text),
            cited=sorted(numbers.get(n, n) for n in answer.cited),
            quotes={numbers.get(n, n): quote for n, quote in answer.quotes.items()},
        )


def create(settings: Settings, registry: Roles) -> ExtractiveGenerator:
    return ExtractiveGenerator(registry.text_embedder(), settings.generator.max_sentences, settings.generator.min_score)
