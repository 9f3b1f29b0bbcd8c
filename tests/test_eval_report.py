"""`voicerag eval`'s table stays readable in narrow terminals: split, never cropped or wrapped."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from voicerag_cli.eval.report import rich_tables, table_rows
from voicerag_cli.eval.summary import TABLE_COLUMNS


def _summary() -> dict[str, dict[str, float]]:
    every_metric = {key: (1234.0 if key.endswith("_ms") else 0.8125) for key, _ in TABLE_COLUMNS}
    return {mode: {"questions": 100, **every_metric} for mode in ("text", "asr", "e2e", "asr-round2")}


@pytest.mark.parametrize("width", [80, 120])
def test_eval_table_fits_the_terminal_with_every_value(width: int) -> None:
    summary = _summary()
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, legacy_windows=False)
    tables = rich_tables(summary, "RGB-en", width)
    for table in tables:
        console.print(table)
    text = buffer.getvalue()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    assert "…" not in text  # nothing cropped
    header, rows = table_rows(summary)
    for label in header:
        assert f" {label} " in text
    for row in rows:  # each mode's values are all there, in one line per table
        assert sum(line.count(row[0] + " ") for line in lines) >= len(tables)
    # split only as far as needed: a wide terminal gets one table
    counts = {w: len(rich_tables(summary, "RGB-en", w)) for w in (80, 120, 400)}
    assert counts[80] >= counts[120] > counts[400] == 1
