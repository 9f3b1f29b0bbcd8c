"""Per-stage wall-clock timings."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Stopwatch:
    def __init__(self, on_stage: Callable[[str], None] | None = None) -> None:
        self.ms: dict[str, float] = {}
        self.on_stage = on_stage  # told each stage's name as it starts (a status line)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.on_stage is not None:
            self.on_stage(name)
        started = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - started) * 1000.0

    def total(self) -> float:
        return sum(self.ms.values())
