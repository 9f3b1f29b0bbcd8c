"""`voicerag ask`: answer spoken (or typed) questions from an index, one after another in one process."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from voicerag_cli.backends import backend_briefs, default_backend
from voicerag_cli.cli.completion_values import generators, index_names, rag_modes
from voicerag_cli.cli.console import err, out, print_json, safe
from voicerag_cli.cli.context import STATE
from voicerag_cli.cli.options import Profile, with_default
from voicerag_cli.cli.status import StatusLine, status_line_wanted
from voicerag_cli.cli.words import duration, grouped_timings, pack_line
from voicerag_cli.errors import BackendError, InputError, is_disk_full, storage_error
from voicerag_cli.languages import LANG_HELP, resolve

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from voicerag_cli.cli.answer_stream import AnswerStream
    from voicerag_cli.config import Settings
    from voicerag_cli.models.base import Passage
    from voicerag_cli.pipeline.ask import AskPipeline, AskResult
    from voicerag_cli.pipeline.question import Question

# config.py's built-in defaults, shown by --help (a config file may change them). Written out:
# importing config here would load every backend's settings for --help
# (tests/test_cli_output.py checks that they agree).
HELP_DEFAULTS = {"rag": "asr", "k": 5, "rounds": 1, "index": "default"}


def ask(
    audio: Annotated[
        list[str] | None,
        typer.Argument(
            help="Question audio files (wav/flac/ogg/mp3), or '-' for audio on stdin; several are answered in turn.",
            show_default=False,
        ),
    ] = None,
    text: Annotated[
        list[str] | None,
        typer.Option(
            "--text",
            "-t",
            help="Ask a typed question instead of audio; repeat it for several, '-' reads one question per line from stdin.",
        ),
    ] = None,
    rag: Annotated[
        str | None,
        typer.Option(
            "--rag",
            autocompletion=rag_modes,
            help=with_default(
                "Retrieval mode: asr (transcribe, then search the words) or e2e (search with the speech itself).",
                HELP_DEFAULTS["rag"],
            ),
        ),
    ] = None,
    index_name: Annotated[
        str | None,
        typer.Option(
            "--index", "-i", autocompletion=index_names, help=with_default("Index to search.", HELP_DEFAULTS["index"])
        ),
    ] = None,
    k: Annotated[int | None, typer.Option("-k", help=with_default("Passages to retrieve.", HELP_DEFAULTS["k"]))] = None,
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
        Path | None,
        typer.Option(
            "--out", "-o", help="Write answer.txt, answer.wav and result.json here (in 001/, 002/, ... for several)."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per question, one per line (schema: docs/scripting.md).")
    ] = False,
    play: Annotated[bool, typer.Option("--play", help="Speak the answer on the default audio device.")] = False,
    rounds: Annotated[
        int | None,
        typer.Option(
            "--rounds",
            help=with_default(
                "2: search again with the first answer added, answer from both.", HELP_DEFAULTS["rounds"]
            ),
        ),
    ] = None,
    generator: Annotated[
        str | None,
        typer.Option(
            "--generator",
            "-g",
            autocompletion=generators,
            help=with_default(f"Answer generator: {backend_briefs('generator')}.", default_backend("generator")),
        ),
    ] = None,
    profile: Profile = None,
) -> None:
    """Answer spoken (or typed) questions with passages from your documents (text, sources, timings; speech with --out/--play)."""
    if bool(audio) == bool(text):
        raise typer.BadParameter(
            "give exactly one of AUDIO (files or '-') or --text, not both"
            if audio
            else "give exactly one of AUDIO (files or '-') or --text"
        )
    profile, lang_settings = resolve(lang, profile)  # --lang: a profile, and backend keys
    settings = STATE.settings(
        {
            "ask.rag": rag,
            "ask.k": k,
            "ask.rounds": rounds,
            "index.name": index_name,
            "index.store": store,
            "models.generator": generator,
            **lang_settings,
        },
        profile=profile,
    )
    status = StatusLine(enabled=status_line_wanted(as_json))
    status.show("starting")
    try:
        _answer_all(settings, audio or [], text or [], out_dir, as_json, play, status)
    finally:
        status.stop()
    STATE.exit_when_done = True  # everything is written: skip the interpreter's slow teardown


def _answer_all(
    settings: Settings,
    audio: list[str],
    texts: list[str],
    out_dir: Path | None,
    as_json: bool,
    play: bool,
    status: StatusLine,
) -> None:
    from voicerag_cli.pipeline.build import open_pipeline

    # Read and check every input before loading any model: bad input fails fast and cheap.
    questions = _read_questions(audio, settings.ask.max_audio_s) if audio else _typed_questions(texts)
    fresh = out_dir is not None and not os.path.lexists(out_dir)  # made by this run: removed if it fails
    if out_dir is not None:
        _make_out_dir(out_dir)
    if play:
        from voicerag_cli.audio.playback import check_output_device

        check_output_device()
    registry = STATE.registry()
    registry.on_load = status.loading
    with open_pipeline(registry, STATE.index_root(), on_stage=status.stage) as pipeline:
        from voicerag_cli.cli.answer_stream import attach

        stream = attach(registry, show_text=not as_json, play=play)  # None unless the generator streams
        for number, question in enumerate(questions, start=1):
            if len(questions) > 1:
                status.prefix = f"[{number}/{len(questions)}] "
            folder = None if out_dir is None else out_dir if len(questions) == 1 else out_dir / f"{number:03d}"
            if folder is None:
                _answer_one(pipeline, question, folder, as_json, play, stream, status)
                continue
            from voicerag_cli.outputs import writing_to

            # a failed question leaves no partial folder (nor .part files); a full disk is one line
            with writing_to(folder, "--out", fresh=fresh if folder == out_dir else None):
                _answer_one(pipeline, question, folder, as_json, play, stream, status)


def _read_questions(sources: list[str], max_seconds: float) -> list[Question]:
    from voicerag_cli.audio.io import read_audio
    from voicerag_cli.pipeline.question import Question

    if sources.count("-") > 1:
        raise InputError("'-' (audio on stdin) can be given only once")
    questions = []
    for source in sources:
        started = time.perf_counter()
        clip = read_audio(source, max_seconds=max_seconds)
        questions.append(Question(clip, None, (time.perf_counter() - started) * 1000))
    return questions


def _typed_questions(texts: list[str]) -> list[Question]:
    """`--text Q` (repeatable); `--text -` reads one question per line from stdin, skipping blank lines."""
    from voicerag_cli.pipeline.question import Question

    questions = []
    for text in texts:
        if text == "-":
            lines = [line.strip() for line in sys.stdin.read().splitlines()]
            asked = [line for line in lines if line]
            if not asked:
                raise InputError("--text -: no question on stdin (one question per line)")
            questions += [Question(None, line, 0.0) for line in asked]
        elif not text.strip():
            raise InputError("the question text is empty")
        else:
            questions.append(Question(None, text, 0.0))
    return questions


def _answer_one(
    pipeline: AskPipeline,
    question: Question,
    out_dir: Path | None,
    as_json: bool,
    play: bool,
    stream: AnswerStream | None,
    status: StatusLine,
) -> None:
    speak_to = (out_dir or _temp_dir()) / "answer.wav" if out_dir is not None or play else None
    try:
        result = pipeline.ask(question, STATE.settings().ask.rag, speak_to)
    finally:
        if stream is not None:
            stream.close()  # waits for streamed playback to end
    status.stop()
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
        if is_disk_full(exc):
            raise storage_error(exc, out_dir, "write to --out") from exc
        raise InputError(f"cannot write to --out {out_dir}: {exc.strerror or exc}") from exc


def _short(source: str) -> str:
    """A source path relative to the working directory when it lies below it."""
    import os

    try:
        relative = os.path.relpath(source)
    except ValueError:
        return source
    return source if relative.startswith("..") else relative


QUOTE_CHARS = 160  # an uncited source shows this much of its first sentence


def _excerpt(passage: Passage) -> str:
    """An uncited source's first sentence of text (not a heading or code), cut to QUOTE_CHARS."""
    from voicerag_cli.models.base import passage_blocks
    from voicerag_cli.sentences import split_sentences

    texts = [passage.text[b.start : b.end] for b in passage_blocks(passage) if b.kind not in {"heading", "code"}]
    sentences = split_sentences(texts[0] if texts else passage.text)
    text = sentences[0].text if sentences else ""
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1].rstrip() + "…"


def sources_table(result: AskResult, k: int) -> Table:
    """Sources in rank order, readable at 80 columns: the rank ([n] when the answer cites it,
    as the answer writes it), the vector similarity, and a cell holding the source path over the
    sentence the answer quotes from it (else the passage's first sentence); with two rounds, the
    round each source came from. Passages below the top `k` that the answer quotes say so."""
    from rich.table import Table

    rounds = result.source_rounds()
    two_rounds = result.first_round is not None
    table = Table(show_edge=False, pad_edge=False, expand=True, show_lines=False)
    table.add_column("#", justify="right", no_wrap=True)
    if two_rounds:
        table.add_column("round", justify="right", no_wrap=True)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("source · cited sentence", overflow="fold", ratio=1)
    for rank, passage in enumerate(result.sources, start=1):
        deeper = rank > k and rounds[rank - 1] == 1
        cells = [f"[{rank}]" if rank in result.answer.cited else str(rank)]
        if two_rounds:
            cells.append(str(rounds[rank - 1]))
        cells += [f"{passage.score:.3f}", _source_cell(result, rank, passage, f"below the top {k}" if deeper else "")]
        table.add_row(*cells)
    return table


def _source_cell(result: AskResult, rank: int, passage: Passage, note: str) -> str:
    quote = result.answer.quotes.get(rank)
    shown = f"“{safe(quote)}”" if quote else f"[dim]{safe(_excerpt(passage))}[/]"
    noted = f" [dim]· {note}[/]" if note else ""
    return f"[bold]{safe(_short(passage.source))}[/]{noted}\n{shown}"


def sources_legend(result: AskResult, k: int) -> list[str]:
    """What the table's marks mean, said once under it (only the marks it shows)."""
    items = []
    if result.answer.cited:
        items.append("[n] cited in the answer")
    if len(result.sources) > k and any(r == 1 for r in result.source_rounds()[k:]):
        items.append(f"below the top {k}: a deeper passage the answer quotes")
    items.append("score: similarity in meaning (the rank also weighs matching words)")
    return items


def timing_items(result: AskResult) -> list[str]:
    """The timing line's parts in a user's words: "speech recognition 450 ms", ..., "total ..."."""
    items = [f"{words} {duration(ms)}" for words, ms in grouped_timings(result.timings_ms).items()]
    if "total" in result.timings_ms:
        items.append(f"total {duration(result.timings_ms['total'])}")
    loads = result.extra.get("model_load_s", {})
    if loads:
        items.append(f"loading models {sum(loads.values()):.1f} s (not in the total)")
    return items


def _print_packed(console: Console, items: list[str]) -> None:
    """Items on as few lines as fit, each line broken only between items (dim)."""
    for line in pack_line(items, console.width):
        console.print(line, style="dim", markup=False, soft_wrap=True)


def render(result: AskResult) -> None:
    from rich.panel import Panel

    lines = []
    if result.transcript is not None:
        lines.append(f"[bold]heard:[/] {safe(result.transcript)}")
    elif result.question is not None:
        lines.append(f"[bold]question:[/] {safe(result.question)}")
    else:
        lines.append("[bold]question:[/] (spoken, embedded directly: no transcript)")
    lines.append("")
    lines.append(safe(result.answer.text))
    out.print(Panel("\n".join(lines), title=f"voicerag · {result.rag} · index {safe(result.index)}", expand=True))

    k = STATE.settings().ask.k
    out.print(sources_table(result, k))
    _print_packed(out, sources_legend(result, k))
    _print_packed(err, timing_items(result))
    if result.answer_audio:
        err.print(f"[dim]spoken answer: {safe(result.answer_audio)}[/]")
