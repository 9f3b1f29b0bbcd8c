"""Query-time runtime of the reader (onnxruntime int8 on CPU; onnxruntime is imported lazily).

Input per passage: ``[CLS] question [SEP] passage [SEP]``, question cut to 48 tokens, the whole
to 224 (the passage's tail is dropped). Outputs: ``relevance`` (a logit per passage) and
``token_logits`` (a logit per token that it belongs to the answering sentence/block). A span of
the passage text is scored by the mean answer probability of the tokens it overlaps.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from voicerag_cli.errors import ModelError
from voicerag_cli.models.bundled import MINILM, READER
from voicerag_cli.models.pinned import check_file, verified_folder

if TYPE_CHECKING:
    from tokenizers import Tokenizer

MODEL_PATH = Path(__file__).with_name(READER.files[0].relpath)
# The shipped file's SHA-256 (bundled.READER), checked before the first load.
MODEL_SHA256 = READER.files[0].sha256
MAX_LEN = 224
MAX_QUESTION = 48
CLS, SEP, PAD = 101, 102, 0
# Longer texts are cut before tokenising: 224 word pieces never span more characters than this
# in ordinary text, and a megabyte-long passage should not cost a megabyte of tokenising.
_MAX_CHARS = MAX_LEN * 24


@dataclass(frozen=True)
class PassageReading:
    """What the reader made of one passage."""

    text: str
    relevance: float  # a logit: > 0 means more likely relevant than not; sigmoid gives a probability
    token_probs: np.ndarray  # [n] answer probability of each passage token the model saw
    token_offsets: np.ndarray  # [n, 2] character range of each of those tokens in ``text``

    @property
    def probability(self) -> float:
        return float(1.0 / (1.0 + np.exp(-self.relevance)))

    @property
    def read_chars(self) -> int:
        """How much of ``text`` the model saw (the rest was cut at 224 tokens)."""
        return int(self.token_offsets[-1, 1]) if len(self.token_offsets) else 0

    def span_score(self, start: int, end: int) -> float:
        """Mean answer probability of the tokens overlapping ``text[start:end]`` (0.0 if none was read)."""
        if end <= start or not len(self.token_offsets):
            return 0.0
        off = self.token_offsets
        hit = (off[:, 0] < end) & (off[:, 1] > start)
        if not hit.any():
            return 0.0
        return float(self.token_probs[hit].mean())


class Reader:
    """Reads (question, passage) pairs; one forward pass per passage serves both scores."""

    def __init__(self, session: Any, tokenizer: Tokenizer) -> None:
        self._session = session
        self._tok = tokenizer

    def _encode(self, texts: list[str]) -> list[tuple[list[int], np.ndarray]]:
        encs = self._tok.encode_batch([t[:_MAX_CHARS] for t in texts], add_special_tokens=False)
        return [(e.ids, np.asarray(e.offsets, dtype=np.int64).reshape(-1, 2)) for e in encs]

    def read(self, question: str, passages: list[str]) -> list[PassageReading]:
        if not passages:
            return []
        (q_ids, _), *encoded = self._encode([question, *passages])
        q_ids = q_ids[:MAX_QUESTION]
        budget = MAX_LEN - len(q_ids) - 3
        windows = [(ids[:budget], off[:budget]) for ids, off in encoded]
        width = len(q_ids) + 3 + max(len(ids) for ids, _ in windows)
        input_ids = np.zeros((len(passages), width), dtype=np.int64)
        type_ids = np.zeros_like(input_ids)
        first = len(q_ids) + 2  # index of the first passage token
        for row, (ids, _) in enumerate(windows):
            seq = [CLS, *q_ids, SEP, *ids, SEP]
            input_ids[row, : len(seq)] = seq
            type_ids[row, first : len(seq)] = 1
        mask = (input_ids != PAD).astype(np.int64)
        relevance, token_logits = self._session.run(
            None, {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": type_ids}
        )
        out = []
        for row, (text, (ids, off)) in enumerate(zip(passages, windows, strict=True)):
            logits = token_logits[row, first : first + len(ids)].astype(np.float64)
            out.append(
                PassageReading(
                    text=text,
                    relevance=float(relevance[row]),
                    token_probs=1.0 / (1.0 + np.exp(-logits)),
                    token_offsets=off,
                )
            )
        return out


_lock = threading.Lock()
_cache: dict[Path, Reader] = {}


def _tokenizer(stamps: Path | None) -> Tokenizer:
    """all-MiniLM-L6-v2's WordPiece tokenizer, the one the reader was trained with."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(verified_folder(MINILM, stamps) / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def load_reader(path: Path | None = None, threads: int = 2, stamps: Path | None = None) -> Reader:
    """The reader, loaded once per process. Its file must match the shipped one's pin; `stamps`
    (pinned.stamps_for) spares re-hashing a file checked before, None hashes it."""
    path = Path(path) if path is not None else MODEL_PATH
    with _lock:
        if path in _cache:
            return _cache[path]
        check_file(path, READER.files[0], READER.package, stamps)
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ModelError("the reader needs onnxruntime (pip install onnxruntime)") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"reader model {path} could not be loaded: {exc}".splitlines()[0]) from exc
        reader = Reader(session, _tokenizer(stamps))
        _cache[path] = reader
        return reader
