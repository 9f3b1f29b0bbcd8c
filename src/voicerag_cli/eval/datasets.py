"""Benchmark loaders: RGB (JSONL), HotpotQA (official distractor JSON), CMRC 2018 (SQuAD-style
JSON), custom JSONL.

Every loader returns `EvalItem`s with the same shape, so the runner never looks at formats:
candidate passages with stable ids, which of them are gold, the gold evidence text, and gold
answers as parts of alternatives (see `metrics.answer_scores`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voicerag_cli.errors import InputError

DATASETS = ("rgb-en", "rgb-zh", "hotpot", "cmrc2018", "jsonl")


@dataclass(frozen=True)
class EvalPassage:
    pid: str
    text: str
    title: str = ""


@dataclass
class EvalItem:
    qid: str
    question: str
    answers: list[list[str]]  # parts, each a list of acceptable alternatives
    passages: list[EvalPassage]
    gold_ids: set[str]
    gold_evidence: list[str]  # the text that should be retrieved (for context ROUGE-L)
    language: str  # "en" or "zh"
    audio: Path | None = None
    extra: dict[str, object] = field(default_factory=dict)


def load_dataset(kind: str, path: Path, limit: int | None = None) -> list[EvalItem]:
    if kind not in DATASETS:
        raise InputError(f"unknown dataset {kind!r}; choose from {', '.join(DATASETS)}")
    if not path.exists():
        raise InputError(f"dataset file not found: {path}")
    _check_dataset_file(path)
    try:
        if kind in ("rgb-en", "rgb-zh"):
            items = load_rgb(path, "en" if kind == "rgb-en" else "zh", limit)
        elif kind == "hotpot":
            items = load_hotpot(path, limit)
        elif kind == "cmrc2018":
            items = load_cmrc(path, limit)
        else:
            items = load_jsonl(path, limit)
    except UnicodeDecodeError as exc:  # a binary file, or text in another encoding
        raise InputError(
            f"dataset file {path} is not UTF-8 text (byte {exc.start}: {exc.reason}): not a {kind} dataset?"
        ) from exc
    except RecursionError as exc:
        raise InputError(f"dataset file {path}: JSON nested too deeply to read") from exc
    except OSError as exc:
        raise InputError(f"cannot read dataset file {path}: {exc.strerror or exc}") from exc
    if not items:
        raise InputError(f"no questions in {path}")
    return items


def _check_dataset_file(path: Path) -> None:
    """A dataset is a regular file: a FIFO or a device would hang or never end."""
    from voicerag_cli.safe_io import NotRegular, check_regular

    try:
        check_regular(path)
    except NotRegular as exc:
        raise InputError(f"dataset file {path} is {exc.kind}, not a regular file") from exc
    except OSError as exc:
        raise InputError(f"cannot read dataset file {path}: {exc.strerror or exc}") from exc


def _read_jsonl(path: Path, limit: int | None) -> list[tuple[int, dict[str, Any]]]:
    rows: list[tuple[int, dict[str, Any]]] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if limit is not None and len(rows) >= limit:
                break
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: invalid JSON ({exc.msg})") from exc
            if not isinstance(record, dict):
                raise InputError(f"{path}:{number}: expected a JSON object per line")
            rows.append((number, record))
    return rows


def rgb_answer_parts(answer: object) -> list[list[str]]:
    """RGB semantics: a string is one part; a list holds parts, each a string or a list of
    alternatives; every part must be found for the answer to count."""
    if isinstance(answer, str):
        return [[answer]]
    if isinstance(answer, list):
        parts = []
        for part in answer:
            if isinstance(part, str):
                parts.append([part])
            elif isinstance(part, list):
                parts.append([str(alt) for alt in part])
        return parts
    return [[str(answer)]]


def _require(record: dict[str, Any], key: str, where: str) -> object:
    if key not in record:
        raise InputError(f"{where}: missing field {key!r}")
    return record[key]


def _require_list(record: dict[str, Any], key: str, where: str) -> list[Any]:
    value = _require(record, key, where)
    if not isinstance(value, list):
        raise InputError(f"{where}: field {key!r} must be a list, got {type(value).__name__}")
    return value


def load_rgb(path: Path, language: str, limit: int | None) -> list[EvalItem]:
    items = []
    for number, record in _read_jsonl(path, limit):
        where = f"{path}:{number}"
        qid = str(record.get("id", number))
        positives = [str(p) for p in _require_list(record, "positive", where)]
        negatives = [str(p) for p in record.get("negative", [])]
        passages: list[EvalPassage] = []
        gold: set[str] = set()
        seen: dict[str, str] = {}
        # Duplicated passage text gets one id: a retrieved duplicate must not count twice.
        for label, texts in (("p", positives), ("n", negatives)):
            for i, text in enumerate(texts):
                if text in seen:
                    if label == "p":
                        gold.add(seen[text])
                    continue
                pid = f"{qid}:{label}{i}"
                seen[text] = pid
                passages.append(EvalPassage(pid, text))
                if label == "p":
                    gold.add(pid)
        items.append(
            EvalItem(
                qid=qid,
                question=str(_require(record, "query", where)),
                answers=rgb_answer_parts(_require(record, "answer", where)),
                passages=passages,
                gold_ids=gold,
                gold_evidence=positives,
                language=language,
            )
        )
    return items


def load_hotpot(path: Path, limit: int | None) -> list[EvalItem]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(data, list):
        raise InputError(f"{path}: expected the HotpotQA format (a JSON list of questions)")
    items: list[EvalItem] = []
    for record in data[:limit] if limit is not None else data:
        qid = str(record.get("_id", len(items)))
        where = f"{path} question {qid}"
        passages = []
        sentences_by_title: dict[str, list[str]] = {}
        for title, sentences in _require_list(record, "context", where):
            sentences_by_title[title] = list(sentences)
            passages.append(EvalPassage(f"{qid}:{title}", f"{title}. " + " ".join(s.strip() for s in sentences), title))
        gold_titles = {title for title, _ in _require_list(record, "supporting_facts", where)}
        evidence = [
            sentences_by_title[title][index].strip()
            for title, index in record["supporting_facts"]
            if title in sentences_by_title and index < len(sentences_by_title[title])
        ]
        items.append(
            EvalItem(
                qid=qid,
                question=str(_require(record, "question", where)),
                answers=[[str(_require(record, "answer", where))]],
                passages=passages,
                gold_ids={f"{qid}:{title}" for title in gold_titles},
                gold_evidence=evidence,
                language="en",
                extra={"type": record.get("type"), "level": record.get("level")},
            )
        )
    return items


def load_cmrc(path: Path, limit: int | None) -> list[EvalItem]:
    """CMRC 2018 (SQuAD format): each question's one candidate is its own paragraph, so the task
    is meaningful with `--corpus pooled` (every loaded question's paragraph in one index). The
    first question of each paragraph comes first, so a small limit spans many paragraphs."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise InputError(f"{path}: expected the CMRC 2018 / SQuAD format ({{'data': [...]}})")
    rounds: list[list[EvalItem]] = []
    for article in data["data"]:
        for paragraph in article.get("paragraphs", []):
            where = f"{path} paragraph {paragraph.get('id', '?')}"
            context = str(_require(paragraph, "context", where))
            passage = EvalPassage(str(paragraph.get("id", len(rounds))), context, str(article.get("title", "")))
            for turn, qa in enumerate(paragraph.get("qas", [])):
                answers = sorted({str(a["text"]) for a in qa.get("answers", []) if a.get("text")})
                item = EvalItem(
                    qid=str(qa.get("id", f"{passage.pid}:{turn}")),
                    question=str(_require(qa, "question", where)),
                    answers=[answers] if answers else [],
                    passages=[passage],
                    gold_ids={passage.pid},
                    gold_evidence=[context],
                    language="zh",
                )
                if turn == len(rounds):
                    rounds.append([])
                rounds[turn].append(item)
    items = [item for batch in rounds for item in batch]
    return items[:limit] if limit is not None else items


def load_jsonl(path: Path, limit: int | None) -> list[EvalItem]:
    """Custom format, one object per line:
    {"question": str, "answer": str | [str] | [[str]], "passages": [str | {"text": str, "gold": bool}],
     "gold": [passage index, ...] (optional), "audio": "path relative to the file" (optional),
     "id": str (optional), "language": "en" | "zh" (optional)}.
    Without any gold marking, passages containing an answer string are gold."""
    items = []
    for number, record in _read_jsonl(path, limit):
        where = f"{path}:{number}"
        qid = str(record.get("id", number))
        answers = rgb_answer_parts(_require(record, "answer", where))
        raw_passages = _require(record, "passages", where)
        if not isinstance(raw_passages, list) or not raw_passages:
            raise InputError(f"{where}: 'passages' must be a non-empty list")
        passages, gold = [], set()
        for i, entry in enumerate(raw_passages):
            text = entry.get("text", "") if isinstance(entry, dict) else str(entry)
            pid = f"{qid}:{i}"
            passages.append(EvalPassage(pid, text))
            if isinstance(entry, dict) and entry.get("gold"):
                gold.add(pid)
        gold |= {f"{qid}:{i}" for i in record.get("gold", [])}
        if not gold:
            alternatives = [alt.lower() for part in answers for alt in part]
            gold = {p.pid for p in passages if any(alt in p.text.lower() for alt in alternatives)}
        audio = record.get("audio")
        question = str(_require(record, "question", where))
        items.append(
            EvalItem(
                qid=qid,
                question=question,
                answers=answers,
                passages=passages,
                gold_ids=gold,
                gold_evidence=[p.text for p in passages if p.pid in gold],
                language=str(
                    record.get("language", "zh" if any("\u4e00" <= c <= "\u9fff" for c in question) else "en")
                ),
                audio=(path.parent / audio) if audio else None,
            )
        )
    return items
