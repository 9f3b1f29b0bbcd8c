"""The one place a pipeline is assembled from settings: `ask`, `chat` and `eval` all build theirs here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from voicerag_cli.pipeline.ask import AskPipeline, Searcher

if TYPE_CHECKING:
    from voicerag_cli.index.base import StoreRoot
    from voicerag_cli.registry import Registry


def build_pipeline(
    registry: Registry,
    searcher: Searcher,
    *,
    k: int | None = None,
    rounds: int | None = None,
    depth: int = 0,
    on_stage: Callable[[str], None] | None = None,
) -> AskPipeline:
    """A pipeline over `searcher` with the registry's settings (ask.k, ask.rounds,
    index.hnsw_ef_search, generator.read_passages); `k`/`rounds` override them where a command
    (eval) has its own."""
    settings = registry.settings
    pipeline = AskPipeline(
        registry,
        searcher,
        settings.ask.k if k is None else k,
        settings.index.hnsw_ef_search,
        settings.ask.rounds if rounds is None else rounds,
        depth=depth,
        read=settings.generator.read_passages,
    )
    pipeline.on_stage = on_stage
    return pipeline


@contextmanager
def open_pipeline(
    registry: Registry, root: StoreRoot, on_stage: Callable[[str], None] | None = None
) -> Iterator[AskPipeline]:
    """The pipeline over the index `index.name` of `root`, whose language must suit the
    settings (languages.check_language); the index is closed on exit."""
    from voicerag_cli.languages import check_language

    settings = registry.settings
    reader = root.open(settings.index.name)
    try:
        check_language(reader.name, reader.manifest.extra, settings)
        yield build_pipeline(registry, reader, on_stage=on_stage)
    finally:
        reader.close()
