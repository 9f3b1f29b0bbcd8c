"""`voicerag ask`: answer one spoken (or typed) question from an index."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from voicerag_cli.cli.console import err, out, print_json
from voicerag_cli.cli.context import STATE
from voicerag_cli.cli.options import Profile
from voicerag_cli.errors import BackendError, InputError
from voicerag_cli.languages import LANG_HELP, check_language, resolve

if TYPE_CHECKING:
    from voicerag_cli.pipeline.ask import AskResult


def ask(
    audio: Annotated[
        str | None,
        typer.Argument(help="Question audio file (wav/flac/ogg/mp3), or '-' for audio on stdin.", show_default=False),
    ] = None,
    text: Annotated[str | None, typer.Option("--text", "-t", help="Ask a typed question instead of audio.")] = None,
    rag: Annotated[
        str | None,
        typer.Option("--rag", help="Retrieval mode: asr (transcribe first) or e2e (embed speech)."),
    ] = None,
    index_name: Annotated[
        str | None, typer.Option("--index", "-i", help="Index to search (default: index.name).")
    ] = None,
    k: Annotated[int | None, typer.Option("-k", help="Passages to retrieve (ask.k).")] = None,
    lang: Annotated[
        str | None,
        typer.Option(
            "--lang",
            help=LANG_HELP,
        ),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="Index store (index.store): hnswlib, milvus://host:port\\[/collection], milvus-lite:PATH.db.",
        ),
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write answer.txt, answer.wav and result.json here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (schema in README).")] = False,
    play: Annotated[bool, typer.Option("--play", help="Speak the answer on the default audio device.")] = False,
    rounds: Annotated[
        int | None,
        typer.Option("--rounds", help="2: search again with the question plus the first answer, answer from both."),
    ] = None,
    generator: Annotated[
        str | None,
        typer.Option("--generator", "-g", help="Answer generator (models.generator): extractive, openai, glm4voice."),
    ] = None,
    profile: Profile = None,
) -> None:
    """Answer a spoken question with passages from your documents (text, sources, timings; speech with --out/--play)."""
    if (audio is None) == (text is None):
        raise typer.BadParameter("give exactly one of AUDIO (a file or '-') and --text")
    profile, sonar_lang = resolve(lang, profile)
    settings = STATE.settings(
        {
            "ask.rag": rag,
            "ask.k": k,
            "ask.rounds": rounds,
            "index.name": index_name,
            "sonar.lang": sonar_lang,
            "index.store": store,
            "models.generator": generator,
        },
        profile=profile,
    )

    from voicerag_cli.pipeline.ask import AskPipeline

    # Read and check the input before loading any model: bad input fails fast and cheap.
    if out_dir is not None:
        _make_out_dir(out_dir)
    clip = None
    if audio is not None:
        from voicerag_cli.audio.io import read_audio

        started = time.perf_counter()
        clip = read_audio(audio)
        read_ms = (time.perf_counter() - started) * 1000
    registry = STATE.registry()
    reader = STATE.index_root().open(settings.index.name)
    check_language(reader.name, reader.manifest.extra, settings)
    stream = None
    try:
        from voicerag_cli.cli.answer_stream import attach

        stream = attach(registry, show_text=not as_json, play=play)  # None unless the generator streams
        pipeline = AskPipeline(registry, reader, settings.ask.k, settings.index.hnsw_ef_search, settings.ask.rounds)
        if clip is not None:
            result = pipeline.ask_audio(clip, settings.ask.rag)
            result.timings_ms = {"read_audio": read_ms, **result.timings_ms}
        else:
            assert text is not None
            result = pipeline.ask_text(text)
        if out_dir is not None or play:
            target = (out_dir or _temp_dir()) / "answer.wav"
            pipeline.speak(result, target)
        result.timings_ms["total"] = sum(result.timings_ms.values())
        result.extra["model_load_s"] = {role: round(s, 3) for role, s in registry.load_seconds.items()}
    finally:
        if stream is not None:
            stream.close()  # waits for streamed playback to end
        reader.close()

    if out_dir is not None:
        _write_outputs(out_dir, result)
    if as_json:
        print_json(result.to_json())
    else:
        render(result)
    if stream is not None and stream.player is not None and stream.player.error:
        raise BackendError(f"{stream.player.error} (answer saved at {result.answer_audio})")
    if play and result.answer_audio and not (stream is not None and stream.played):
        from voicerag_cli.audio.playback import play_wav

        play_wav(Path(result.answer_audio))


def _temp_dir() -> Path:
    import tempfile

    return Path(tempfile.mkdtemp(prefix="voicerag-"))


def _make_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot write to --out {out_dir}: {exc.strerror or exc}") from exc


def _write_outputs(out_dir: Path, result: AskResult) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "answer.txt").write_text(result.answer.text + "\n", encoding="utf-8")
        (out_dir / "result.json").write_text(
            json.dumps(result.to_json(), ensure_ascii=False, indent=2), encoding="utf-8"
        )
    except OSError as exc:
        raise InputError(f"cannot write to --out {out_dir}: {exc.strerror or exc}") from exc


def _short(source: str) -> str:
    """A source path relative to the working directory when it lies below it."""
    import os

    try:
        relative = os.path.relpath(source)
    except ValueError:
        return source
    return source if relative.startswith("..") else relative


def render(result: AskResult) -> None:
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table

    lines = []
    if result.transcript is not None:
        lines.append(f"[bold]heard:[/] {escape(result.transcript)}")
    elif result.question is not None:
        lines.append(f"[bold]question:[/] {escape(result.question)}")
    else:
        lines.append("[bold]question:[/] (spoken, embedded directly: no transcript)")
    lines.append("")
    lines.append(escape(result.answer.text))
    out.print(Panel("\n".join(lines), title=f"voicerag · {result.rag} · index {escape(result.index)}", expand=True))

    table = Table(show_edge=False, pad_edge=False, expand=True)
    table.add_column("#", justify="right", min_width=3, no_wrap=True)
    table.add_column("score", justify="right", min_width=5, no_wrap=True)
    table.add_column("source", overflow="fold", ratio=3)
    table.add_column("passage", overflow="ellipsis", no_wrap=True, ratio=4)
    for rank, passage in enumerate(result.sources, start=1):
        mark = "*" if rank in result.answer.cited else ""
        table.add_row(
            f"{rank}{mark}",
            f"{passage.score:.3f}",
            escape(_short(passage.source)),
            escape(" ".join(passage.text.split())),
        )
    out.print(table)
    timings = "  ".join(f"{stage} {ms:.0f} ms" for stage, ms in result.timings_ms.items())
    loads = result.extra.get("model_load_s", {})
    loaded = f"  (model loading {sum(loads.values()):.1f} s, not included)" if loads else ""
    err.print(f"[dim]{timings}{loaded}[/]")
    if result.answer_audio:
        err.print(f"[dim]spoken answer: {escape(result.answer_audio)}[/]")
