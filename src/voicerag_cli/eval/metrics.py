"""Answer, retrieval and ASR metrics.

Answer normalization follows the SQuAD/HotpotQA evaluation scripts (lowercase, strip
punctuation and the articles a/an/the, collapse whitespace). Chinese is compared character
by character, as RGB does, and RGB's own accuracy is "the gold answer occurs in the output".
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_PUNCT = set(string.punctuation) | {
    "，",
    "。",
    "！",
    "？",
    "；",
    "：",
    "、",
    "“",
    "”",
    "‘",
    "’",
    "（",
    "）",
    "《",
    "》",
    "【",
    "】",
}


def is_chinese(text: str) -> bool:
    return bool(_CJK.search(text))


def normalize_answer(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def normalize_cer(text: str) -> str:
    """Mandarin CER text: the answer normalisation, spaces dropped, Arabic numerals written as
    Chinese numerals (cn2an, "32度" -> "三十二度"). Chinese references such as AISHELL's spell
    numbers in characters while Whisper writes digits; scoring them as different characters
    would count a correct number as an error (the usual CER normalisation does the same)."""
    text = unicodedata.normalize("NFKC", text)
    if any(ch.isdigit() for ch in text):
        try:
            import cn2an

            # before punctuation goes: "50%" reads 百分之五十
            text = cn2an.transform(text, "an2cn")
        except ImportError:  # voicerag[zh] brings it; without it digits stay digits
            pass
        except (ValueError, KeyError, IndexError):  # cn2an gives up on some mixed strings
            pass
    return normalize_answer(text).replace(" ", "")


def tokens(text: str) -> list[str]:
    """Normalized tokens: words for Latin script, single characters for CJK."""
    normalized = normalize_answer(text)
    if is_chinese(normalized):
        return [ch for ch in normalized if not ch.isspace()]
    return normalized.split()


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = tokens(prediction), tokens(gold)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence, bit-parallel (Hyyrö 2004): O(len(b)) big-int
    operations instead of the O(len(a)*len(b)) table, which matters for passage-length text."""
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for i, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(a)) - 1
    row = full
    for token in b:
        match = row & masks.get(token, 0)
        row = ((row + match) | (row - match)) & full
    return len(a) - row.bit_count()


def rouge_l(prediction: str, gold: str) -> dict[str, float]:
    """ROUGE-L precision/recall/F1 on normalized tokens."""
    pred, ref = tokens(prediction), tokens(gold)
    lcs = lcs_length(pred, ref)
    if lcs == 0:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    precision, recall = lcs / len(pred), lcs / len(ref)
    return {"precision": precision, "recall": recall, "f1": 2 * precision * recall / (precision + recall)}


def contains_answer(prediction: str, gold: str) -> float:
    """RGB accuracy: the normalized gold answer occurs in the normalized output, as whole
    words ("no" does not match inside "not", "1885" not inside "18850"); Chinese, written
    without spaces, is matched as a substring as RGB does."""
    needle = normalize_answer(gold)
    if not needle:
        return 0.0
    haystack = normalize_answer(prediction)
    if is_chinese(needle):
        return float(needle in haystack)
    return float(f" {needle} " in f" {haystack} ")


def answer_scores(prediction: str, golds: Sequence[Sequence[str]]) -> dict[str, float]:
    """Score against gold answers given as parts, each a list of acceptable alternatives.

    A plain question has one part. RGB's multi-part (`*_int`) questions need every part:
    `match` is 1 only if each part has an alternative contained in the prediction; EM, F1
    and ROUGE-L take the best alternative of each part and average over parts.
    """
    parts = [list(part) for part in golds if part]
    if not parts:
        return {"em": 0.0, "f1": 0.0, "rouge_l": 0.0, "match": 0.0}
    em = sum(max(exact_match(prediction, g) for g in part) for part in parts) / len(parts)
    f1 = sum(max(token_f1(prediction, g) for g in part) for part in parts) / len(parts)
    rl = sum(max(rouge_l(prediction, g)["f1"] for g in part) for part in parts) / len(parts)
    match = float(all(any(contains_answer(prediction, g) for g in part) for part in parts))
    return {"em": em, "f1": f1, "rouge_l": rl, "match": match}


def retrieval_scores(ranked_ids: Sequence[str], gold_ids: set[str], ks: Sequence[int]) -> dict[str, float]:
    """Recall@k (share of gold items in the top k), Hit@k (any gold in the top k) and MRR."""
    scores: dict[str, float] = {}
    for k in ks:
        top = set(ranked_ids[:k])
        scores[f"recall@{k}"] = len(top & gold_ids) / len(gold_ids) if gold_ids else 0.0
        scores[f"hit@{k}"] = float(bool(top & gold_ids))
    first = next((rank for rank, item in enumerate(ranked_ids, start=1) if item in gold_ids), None)
    scores["mrr"] = 1.0 / first if first else 0.0
    return scores


def transcript_error(hypothesis: str, reference: str) -> dict[str, float]:
    """WER for English, CER for Chinese (jiwer), both on normalized text (`normalize_cer` for CER)."""
    import jiwer

    ref, hyp = normalize_answer(reference), normalize_answer(hypothesis)
    if not ref:
        return {}
    if is_chinese(ref):
        return {"cer": float(jiwer.cer(normalize_cer(ref), normalize_cer(hyp) or " "))}
    return {"wer": float(jiwer.wer(ref, hyp or " "))}
