"""Render an evaluation: rich table, summary.json, and a PNG plot."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from voicerag_cli.eval.summary import TABLE_COLUMNS


def table_rows(summary: dict[str, dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Column headers and formatted cells, omitting columns no mode has."""
    columns = [(key, label) for key, label in TABLE_COLUMNS if any(key in entry for entry in summary.values())]
    header = ["mode", "n"] + [label for _, label in columns]
    rows = []
    for mode, entry in summary.items():
        cells = [mode, str(entry["questions"])]
        for key, _ in columns:
            value = entry.get(key)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                cells.append("")
            elif key.endswith("_ms"):
                cells.append(f"{value:.0f}")
            else:
                cells.append(f"{value:.3f}")
        rows.append(cells)
    return header, rows


def markdown_table(summary: dict[str, dict[str, Any]]) -> str:
    header, rows = table_rows(summary)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def rich_tables(summary: dict[str, dict[str, Any]], title: str, width: int) -> list[Any]:
    """The table as one or more rich tables that each fit in `width` columns: the metric columns
    are split over several tables (each repeating mode and n) rather than cropped or wrapped."""
    from rich import box
    from rich.table import Table

    header, rows = table_rows(summary)
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) + 3 for i in range(len(header))]
    fixed = widths[0] + widths[1] + 1  # mode and n, and the closing border
    groups: list[list[int]] = [[]]
    for i in range(2, len(header)):
        if groups[-1] and fixed + sum(widths[j] for j in groups[-1]) + widths[i] > width:
            groups.append([])
        groups[-1].append(i)
    tables = []
    for number, group in enumerate(groups, start=1):
        part = f" ({number}/{len(groups)})" if len(groups) > 1 else ""
        table = Table(title=title + part, box=box.SQUARE)
        for i in [0, 1, *group]:
            table.add_column(header[i], justify="left" if i == 0 else "right", no_wrap=True)
        for row in rows:
            table.add_row(*(row[i] for i in [0, 1, *group]))
        tables.append(table)
    return tables


def json_safe(value: Any) -> Any:
    """NaN (a metric with no data) becomes null: strict JSON for jq and friends."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def write_summary(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(json_safe(payload), indent=2, ensure_ascii=False, allow_nan=False), encoding="utf-8")
    tmp.replace(path)


def write_plot(path: Path, summary: dict[str, dict[str, Any]], ks: list[int], title: str) -> None:
    """Left: Recall@k per retrieval mode. Right: mean latency per stage, stacked per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for mode, entry in summary.items():
        points = [(k, entry[f"recall@{k}"]) for k in ks if f"recall@{k}" in entry]
        if points and "round2" not in mode:
            left.plot([k for k, _ in points], [v for _, v in points], marker="o", label=mode)
    left.set_xlabel("k")
    left.set_ylabel("Recall@k")
    left.set_ylim(0, 1.02)
    left.set_xticks(ks)
    left.grid(alpha=0.3)
    left.legend()
    left.set_title("retrieval")

    modes = [m for m, e in summary.items() if "stage_ms" in e]
    stages = sorted({s for m in modes for s in summary[m]["stage_ms"]})
    bottoms = [0.0] * len(modes)
    for stage in stages:
        heights = [summary[m]["stage_ms"].get(stage, 0.0) for m in modes]
        right.bar(modes, heights, bottom=bottoms, label=stage)
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    right.set_ylabel("mean ms per question")
    right.set_title("latency by stage")
    right.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
