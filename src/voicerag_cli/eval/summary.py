"""Aggregate per-question results into per-mode means."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

# Column order of the seed-style table; keys absent for a mode (e.g. WER outside asr) stay empty.
TABLE_COLUMNS = [
    ("recall@1", "R@1"),
    ("recall@5", "R@5"),
    ("hit@5", "Hit@5"),
    ("mrr", "MRR"),
    ("context_recall", "ctx R"),
    ("context_rouge_l_recall", "ctx RL-R"),
    ("context_rouge_l_f1", "ctx RL-F1"),
    ("wer", "WER"),
    ("cer", "CER"),
    ("em", "EM"),
    ("f1", "F1"),
    ("rouge_l", "RL"),
    ("match", "Acc"),
    ("retrieval_ms", "retr ms"),
    ("response_ms", "resp ms"),
]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def aggregate(rows: list[dict[str, Any]], modes: list[str]) -> dict[str, dict[str, Any]]:
    """Mean of every numeric metric per mode (and per mode's round 2), plus stage timings."""
    table: dict[str, dict[str, Any]] = {}
    for mode in modes:
        for suffix, pick in (("", lambda r: r), (" round2", lambda r: r.get("round2"))):
            values: dict[str, list[float]] = defaultdict(list)
            stages: dict[str, list[float]] = defaultdict(list)
            count = 0
            for row in rows:
                result = row["modes"].get(mode)
                block = pick(result) if result else None
                if not block:
                    continue
                count += 1
                for key, value in block.items():
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        values[key].append(float(value))
                if not suffix:
                    for stage, ms in block.get("timings_ms", {}).items():
                        stages[stage].append(ms)
            if count:
                entry: dict[str, Any] = {key: _mean(v) for key, v in sorted(values.items())}
                entry["questions"] = count
                if stages:
                    entry["stage_ms"] = {stage: _mean(v) for stage, v in stages.items()}
                table[mode + suffix] = entry
    return table


def running_means(rows: list[dict[str, Any]], modes: list[str], key: str = "recall@5") -> str:
    parts = []
    for mode in modes:
        values = [row["modes"][mode][key] for row in rows if mode in row["modes"] and key in row["modes"][mode]]
        if values:
            parts.append(f"{mode} {_short(key)} {_mean(values):.2f}")
        elif mode == "none":
            matches = [row["modes"][mode]["match"] for row in rows if mode in row["modes"]]
            if matches:
                parts.append(f"none Acc {_mean(matches):.2f}")
    return " · ".join(parts)


def _short(key: str) -> str:
    return dict(TABLE_COLUMNS).get(key, key)
