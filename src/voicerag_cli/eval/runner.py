"""The evaluation loop: for each question, every mode's retrieval and answer, scored and
appended to results.jsonl (which makes runs resumable)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicerag_cli.errors import InputError, VoiceragError
from voicerag_cli.eval import metrics
from voicerag_cli.index.memory import MemoryIndex
from voicerag_cli.models.base import Query
from voicerag_cli.pipeline.build import build_pipeline
from voicerag_cli.pipeline.timing import Stopwatch

if TYPE_CHECKING:
    from voicerag_cli.audio.io import Audio
    from voicerag_cli.eval.datasets import EvalItem, EvalPassage
    from voicerag_cli.eval.speech import QuestionAudio, Voice
    from voicerag_cli.registry import Registry

MODES = ("none", "asr", "e2e", "oracle")
CORPORA = ("per-question", "pooled")
RESULTS = "results.jsonl"
RUN = "run.json"
# Stages that make up "retrieval time" (query embedding, incl. transcription for asr, + search).
RETRIEVAL_STAGES = ("asr", "embed_text", "embed_speech", "search", "search_prompt", "asr_round2")


@dataclass
class EvalConfig:
    dataset: str
    data: str
    modes: list[str]
    corpus: str
    k: int
    rounds: int
    seed: int
    voices: list[str]
    rates: list[int]
    depth: int = 10  # ranks scored for the Recall@k curves
    models: dict[str, str] = field(default_factory=dict)

    def fingerprint(self) -> dict[str, Any]:
        """What must match for a rerun to resume into the same results."""
        return asdict(self)


def passage_key(passage: EvalPassage) -> str:
    # Identity by text: the same passage listed under several questions is one corpus entry.
    return hashlib.sha1(passage.text.encode("utf-8")).hexdigest()[:16]


class Corpora:
    """Builds (and for the pooled setting, shares) the in-memory index a question searches."""

    def __init__(
        self, registry: Registry, items: list[EvalItem], setting: str, hnsw_m: int, ef_construction: int
    ) -> None:
        self.registry = registry
        self.setting = setting
        self.hnsw = (hnsw_m, ef_construction)
        self._pooled: MemoryIndex | None = None
        self._items = items

    def _build(self, name: str, passages: list[EvalPassage]) -> MemoryIndex:
        embedder = self.registry.text_embedder()
        unique: dict[str, str] = {}
        for passage in passages:
            unique.setdefault(passage_key(passage), passage.text)
        index = MemoryIndex(name, embedder.space, *self.hnsw)
        texts = list(unique.values())
        index.add(list(unique), texts, embedder.embed_texts(texts))
        return index

    def for_item(self, item: EvalItem) -> MemoryIndex:
        if self.setting == "per-question":
            return self._build(f"question-{item.qid}", item.passages)
        if self._pooled is None:
            self._pooled = self._build("pooled", [p for it in self._items for p in it.passages])
        return self._pooled


def prepare_out_dir(out_dir: Path, config: EvalConfig, overwrite: bool) -> set[str]:
    """Create or reopen a run folder; return the question ids already done."""
    out_dir.mkdir(parents=True, exist_ok=True)
    run_file, results = out_dir / RUN, out_dir / RESULTS
    if overwrite:
        results.unlink(missing_ok=True)
        run_file.unlink(missing_ok=True)
    if run_file.exists():
        previous = json.loads(run_file.read_text(encoding="utf-8"))
        differs = sorted(k for k, v in config.fingerprint().items() if previous.get(k) != v)
        if differs:
            raise InputError(
                f"{out_dir} holds results of a different run (differs in: {', '.join(differs)}); "
                "use another --out or --overwrite"
            )
    else:
        tmp = run_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(config.fingerprint(), indent=2), encoding="utf-8")
        tmp.replace(run_file)
    return {row["qid"] for row in read_results(results)}


def read_results(path: Path) -> list[dict[str, Any]]:
    """Read results.jsonl; a torn last line (the run was killed mid-write) is cut off."""
    if not path.exists():
        return []
    data = path.read_bytes()
    rows, intact = [], 0
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        try:
            rows.append(json.loads(line))
        except (json.JSONDecodeError, UnicodeDecodeError):
            break
        intact += len(line)
    if intact != len(data):
        with path.open("r+b") as handle:
            handle.truncate(intact)
    return rows


def append_result(path: Path, row: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


class Evaluator:
    def __init__(
        self,
        registry: Registry,
        config: EvalConfig,
        corpora: Corpora,
        question_audio: QuestionAudio,
        voices: dict[str, Voice],
    ) -> None:
        self.registry = registry
        self.config = config
        self.corpora = corpora
        self.question_audio = question_audio
        self.voices = voices
        self.skipped: dict[str, str] = {}
        self.ks = sorted({1, 3, 5, 10, config.k} | {config.depth})

    def check_modes(self) -> list[str]:
        """Load each mode's backends now; a mode whose backend is missing is skipped with a note."""
        # Every retrieval mode searches a corpus embedded by the text embedder.
        needs = {
            "none": ["generator"],
            "asr": ["asr", "text_embedder", "generator"],
            "e2e": ["speech_embedder", "text_embedder", "generator"],
            "oracle": ["text_embedder", "generator"],
        }
        active = []
        for mode in self.config.modes:
            try:
                for role in needs[mode]:
                    self.registry.get(role)
                if mode == "e2e" and self.registry.speech_embedder().space != self.registry.text_embedder().space:
                    raise InputError("the speech embedder's space differs from the text embedder's")
                active.append(mode)
            except VoiceragError as exc:
                self.skipped[mode] = str(exc)
        return active

    def evaluate(self, item: EvalItem, modes: list[str]) -> dict[str, Any]:
        from voicerag_cli.audio.io import read_audio

        voice = self.voices[item.qid]
        row: dict[str, Any] = {"qid": item.qid, "question": item.question, "language": item.language}
        audio: Audio | None = None
        if {"asr", "e2e"} & set(modes):
            path = self.question_audio.path_for(item, voice)
            audio = read_audio(path)
            row["audio"] = str(path)
            row["voice"] = None if item.audio else voice.to_json()
            row["audio_seconds"] = round(audio.duration_s, 3)
        index = self.corpora.for_item(item) if set(modes) - {"none"} else None
        gold = {passage_key(p) for p in item.passages if p.pid in item.gold_ids}
        row["modes"] = {mode: self._mode(mode, item, audio, index, gold) for mode in modes}
        return row

    def _mode(
        self, mode: str, item: EvalItem, audio: Audio | None, index: MemoryIndex | None, gold: set[str]
    ) -> dict[str, Any]:
        watch = Stopwatch()
        result: dict[str, Any] = {}
        if mode == "none":
            with watch.stage("generate"):
                answer = self.registry.generator().generate(Query(text=item.question), [])
            result["answer"] = answer.text
            result.update(metrics.answer_scores(answer.text, item.answers))
            result["timings_ms"] = _rounded(watch.ms)
            result["response_ms"] = round(watch.total(), 2)
            return result

        assert index is not None
        pipeline = build_pipeline(
            self.registry, index, k=self.config.k, rounds=self.config.rounds, depth=self.config.depth
        )
        if mode == "asr":
            assert audio is not None
            query, first_transcript = pipeline.transcribed_query(audio, watch)
            assert query.text is not None
            result["transcript"] = query.text
            if first_transcript is not None:
                result["first_transcript"] = first_transcript
            result.update(metrics.transcript_error(query.text, item.question))
        elif mode == "e2e":
            assert audio is not None
            query = pipeline.speech_query(audio, watch)
        else:  # oracle: the question's own text
            query = pipeline.text_query(item.question, watch)
        outcome = pipeline.answer_query(query, watch)
        first = outcome.first_round

        result["retrieved"] = [p.source for p in outcome.ranked]
        result.update(metrics.retrieval_scores(result["retrieved"], gold, self.ks))
        round1_context = first.passages if first else outcome.context
        result.update(_context_scores(round1_context, gold, item.gold_evidence))
        round1_answer = first.answer if first else outcome.answer
        result["answer"] = round1_answer.text
        result.update(metrics.answer_scores(round1_answer.text, item.answers))
        result["timings_ms"] = _rounded(watch.ms)
        result["retrieval_ms"] = round(sum(watch.ms.get(s, 0.0) for s in RETRIEVAL_STAGES), 2)
        result["response_ms"] = round(result["retrieval_ms"] + watch.ms.get("generate", 0.0), 2)
        if first is not None:  # round two: scored on the union context it answered from
            round2: dict[str, Any] = {"answer": outcome.answer.text, "context": [p.source for p in outcome.context]}
            round2.update(_context_scores(outcome.context, gold, item.gold_evidence))
            round2.update(metrics.answer_scores(outcome.answer.text, item.answers))
            round2["response_ms"] = round(watch.total(), 2)
            result["round2"] = round2
        return result


def _context_scores(context: list[Any], gold: set[str], evidence: list[str]) -> dict[str, float]:
    """How much of the gold evidence the generator's context holds: passages and ROUGE-L."""
    found = {p.source for p in context} & gold
    rouge = metrics.rouge_l(" ".join(p.text for p in context), " ".join(evidence))
    return {
        "context_size": float(len(context)),
        "context_recall": len(found) / len(gold) if gold else 0.0,
        "context_hit": float(bool(found)),
        "context_rouge_l_recall": rouge["recall"],
        "context_rouge_l_f1": rouge["f1"],
    }


def _rounded(ms: dict[str, float]) -> dict[str, float]:
    return {stage: round(value, 2) for stage, value in ms.items()}


def run(
    evaluator: Evaluator,
    items: list[EvalItem],
    out_dir: Path,
    done: set[str],
    modes: list[str],
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    results_path = out_dir / RESULTS
    for item in items:
        if item.qid in done:
            continue
        row = evaluator.evaluate(item, modes)
        append_result(results_path, row)
        if on_result:
            on_result(row)
    wanted = {item.qid for item in items}
    return [row for row in read_results(results_path) if row["qid"] in wanted]
