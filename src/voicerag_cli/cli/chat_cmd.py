"""`voicerag chat`: a spoken (or typed) conversation over an index."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from voicerag_cli.cli.completion_values import index_names, rag_modes
from voicerag_cli.cli.console import err, out, print_json, safe
from voicerag_cli.cli.context import STATE
from voicerag_cli.cli.options import Profile
from voicerag_cli.cli.status import StatusLine, status_line_wanted
from voicerag_cli.languages import LANG_HELP, resolve

if TYPE_CHECKING:
    from voicerag_cli.audio.stream import FileSource, SpeakerSink
    from voicerag_cli.config import Settings
    from voicerag_cli.pipeline.ask import AskPipeline, AskResult
    from voicerag_cli.pipeline.chat import Turn


def chat(
    mic: Annotated[bool, typer.Option("--mic", help="Listen on the microphone (the default mode).")] = False,
    input_file: Annotated[
        Path | None,
        typer.Option(
            "--input",
            help="Feed a recorded conversation (wav/flac/...) as if from the mic.",
            readable=False,  # checked (and refused) as `ask` checks audio, with its messages
        ),
    ] = None,
    realtime: Annotated[bool, typer.Option("--realtime", help="With --input: feed at real-time speed.")] = False,
    text_mode: Annotated[bool, typer.Option("--text", help="Type questions (one per line on stdin) instead.")] = False,
    device: Annotated[
        str | None, typer.Option("--device", help="Input device index or name (see --list-devices).")
    ] = None,
    output_device: Annotated[str | None, typer.Option("--output-device", help="Output device index or name.")] = None,
    list_devices: Annotated[bool, typer.Option("--list-devices", help="List audio devices and exit.")] = False,
    rag: Annotated[str | None, typer.Option("--rag", autocompletion=rag_modes, help="asr or e2e (ask.rag).")] = None,
    index_name: Annotated[
        str | None, typer.Option("--index", "-i", autocompletion=index_names, help="Index to search (index.name).")
    ] = None,
    k: Annotated[int | None, typer.Option("-k", help="Passages to retrieve (ask.k).")] = None,
    lang: Annotated[str | None, typer.Option("--lang", help=LANG_HELP)] = None,
    save: Annotated[Path | None, typer.Option("--save", help="Write each turn's audio, text and timings here.")] = None,
    mute: Annotated[bool, typer.Option("--mute", help="Do not play answers (no output device needed).")] = False,
    no_barge_in: Annotated[bool, typer.Option("--no-barge-in", help="Do not stop the answer when you speak.")] = False,
    silence_ms: Annotated[int | None, typer.Option(help="Silence that ends an utterance (chat.silence_ms).")] = None,
    start_threshold: Annotated[float | None, typer.Option(help="VAD start threshold (chat.start_threshold).")] = None,
    end_threshold: Annotated[float | None, typer.Option(help="VAD end threshold (chat.end_threshold).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per turn.")] = False,
    profile: Profile = None,
) -> None:
    """Talk with your documents: each utterance is answered aloud; speak during the answer to interrupt it."""
    from voicerag_cli.audio import stream

    if list_devices:
        _print_devices(stream.list_devices(), as_json)
        return
    if sum([mic, input_file is not None, text_mode]) > 1:
        raise typer.BadParameter("choose one of --mic, --input FILE and --text")
    profile, lang_settings = resolve(lang, profile)  # --lang: a profile, and backend keys
    settings = STATE.settings(
        {
            "ask.rag": rag,
            "ask.k": k,
            "index.name": index_name,
            "chat.silence_ms": silence_ms,
            "chat.start_threshold": start_threshold,
            "chat.end_threshold": end_threshold,
            **lang_settings,
        },
        profile=profile,
    )
    # A recorded conversation is read and checked (as `ask` checks audio) before any model loads.
    recorded = stream.FileSource(input_file, realtime=realtime) if input_file is not None else None
    from voicerag_cli.outputs import writing_to
    from voicerag_cli.pipeline.build import open_pipeline

    saving = writing_to(save, "--save", keep_complete=True) if save is not None else contextlib.nullcontext()
    status = StatusLine(enabled=status_line_wanted(as_json))
    registry = STATE.registry()
    registry.on_load = status.loading  # the first turn (or the warm-up) loads the models
    # Spoken chat shows its own live line while listening: stages go to the status line only when typing.
    on_stage = status.stage if text_mode else None
    try:
        with saving, open_pipeline(registry, STATE.index_root(), on_stage=on_stage) as pipeline:
            if text_mode:
                _text_chat(pipeline, settings, mute, output_device, save, as_json, status)
            else:
                _voice_chat(
                    pipeline,
                    settings,
                    recorded,
                    input_file,
                    device,
                    output_device,
                    save,
                    mute,
                    no_barge_in,
                    as_json,
                    status,
                )
    finally:
        status.stop()


def _device(value: str | None) -> int | str | None:
    return int(value) if value is not None and value.isdigit() else value


def _voice_chat(
    pipeline: AskPipeline,
    settings: Settings,
    recorded: FileSource | None,
    input_file: Path | None,
    device: str | None,
    output_device: str | None,
    save: Path | None,
    mute: bool,
    no_barge_in: bool,
    as_json: bool,
    status: StatusLine,
) -> None:
    from voicerag_cli.audio import stream
    from voicerag_cli.audio.vad import SileroVad, UtteranceSegmenter, VadConfig
    from voicerag_cli.pipeline.chat import ChatSession

    cfg = settings.chat
    vad = VadConfig(
        start_threshold=cfg.start_threshold,
        end_threshold=cfg.end_threshold,
        min_speech_ms=cfg.min_speech_ms,
        silence_ms=cfg.silence_ms,
    )
    # Devices are checked first (cheap, and the likeliest failure), then models are warmed up.
    source = recorded if recorded is not None else stream.MicSource(_device(device))
    # A file-fed run plays into a virtual speaker unless a device is asked for explicitly.
    virtual = mute or (input_file is not None and output_device is None)
    sink = stream.VirtualSink() if virtual else stream.SpeakerSink(_device(output_device))
    _warm_up(pipeline, settings.ask.rag, speak=not mute)
    status.stop()  # the live line below takes over
    ui = _LiveStatus(enabled=err.is_terminal and not as_json)
    session = ChatSession(
        pipeline,
        UtteranceSegmenter(SileroVad(), vad),
        sink,
        rag=settings.ask.rag,
        save_dir=save,
        history_turns=cfg.history_turns,
        barge_in=cfg.barge_in and not no_barge_in,
        speak=not mute,
        on_event=ui.event,
    )
    if input_file is None:
        err.print(f"[dim]listening on {getattr(source, 'name', 'microphone')} · Ctrl-C to stop[/]")
    ui.on_turn = lambda turn: _print_turn(turn, as_json)
    ui.on_barge_in = lambda turn, at_s: _print_barge_in(turn, at_s, as_json)
    try:
        with ui:
            session.run(source)
    except KeyboardInterrupt:
        source.close()
        err.print("[dim]bye[/]")
    if save is not None:
        err.print(f"[dim]{len(session.turns)} turn(s) saved in {save}[/]")


def _warm_up(pipeline: AskPipeline, rag: str, speak: bool) -> None:
    """Load the models and run each once before listening: the first turn should be as fast
    as the others, not pay for loading and first-call initialisation."""
    import numpy as np

    second = np.zeros(16_000, dtype=np.float32)
    if rag == "asr":
        pipeline.registry.asr().transcribe(second, 16_000)
    else:
        pipeline.registry.speech_embedder().embed_speech(second, 16_000)
    pipeline.registry.text_embedder().embed_texts(["warm up"])
    pipeline.registry.generator()
    if speak:
        pipeline.registry.tts()


def _text_chat(
    pipeline: AskPipeline,
    settings: Settings,
    mute: bool,
    output_device: str | None,
    save: Path | None,
    as_json: bool,
    status: StatusLine,
) -> None:
    from voicerag_cli.pipeline.chat import ChatSession, TypedLines

    speaker = None if mute else _speaker_or_text_only(output_device)
    interactive = sys.stdin.isatty()

    def shown(kind: str, payload: Any) -> None:
        status.stop()
        if kind == "warning":
            err.print(f"[yellow]{payload}[/]")
        elif kind == "turn" and payload.result is None:
            err.print(f"[yellow]{payload.error}[/]")
        elif kind == "turn":
            _print_result(payload.index, payload.result, as_json, echo_question=not interactive)

    session = ChatSession(
        pipeline,
        None,
        speaker,
        rag="text",
        save_dir=save,
        history_turns=settings.chat.history_turns,
        speak=speaker is not None or save is not None,  # a saved turn keeps its spoken answer, even muted
        on_event=shown,
    )
    session.run(TypedLines(sys.stdin, _typed_prompt(status) if interactive else None))
    if interactive:
        err.print()  # Ctrl-D leaves the cursor after the prompt: the shell's prompt gets a line of its own


PROMPT = "[bold]you[/] [dim](Ctrl-D to quit)[/][bold]>[/] "


def _typed_prompt(status: StatusLine) -> Callable[[], None]:
    def prompt() -> None:
        status.stop()
        err.print(PROMPT, end="")

    return prompt


def _speaker_or_text_only(output_device: str | None) -> SpeakerSink | None:
    """The speaker for typed chat; with no output device (a headless machine), None and one
    line saying so: a typed conversation needs no speaker. A device asked for by name must work."""
    from voicerag_cli.audio import stream
    from voicerag_cli.errors import BackendError

    try:
        return stream.SpeakerSink(_device(output_device))
    except BackendError:
        if output_device is not None:
            raise
        err.print("[dim]no audio output device: answers are shown as text only (speech is off)[/]")
        return None


def _print_turn(turn: Turn, as_json: bool) -> None:
    if as_json:
        print_json({"event": "turn", **turn.to_json()})
        return
    if turn.result is None:
        err.print(f"[yellow]turn {turn.index}: {turn.error}[/]")
        return
    _print_result(turn.index, turn.result, as_json=False)
    err.print(f"[dim]end of speech → answer audio {turn.eos_to_audio_ms:.0f} ms[/]")


def _print_barge_in(turn: int, at_s: float, as_json: bool) -> None:
    if as_json:
        print_json({"event": "barge_in", "turn": turn, "at_s": round(at_s, 3)})
    else:
        err.print(f"[dim]interrupted answer {turn} at {at_s:.2f} s[/]")


def _print_result(index: int, result: AskResult, as_json: bool, echo_question: bool = True) -> None:
    """`echo_question`: False for a line typed at the terminal, which is on screen already."""
    if as_json:
        print_json({"event": "turn", "turn": index, "result": result.to_json()})
        return
    if echo_question:
        heard = result.transcript or result.question or "(spoken question)"
        out.print(f"[bold cyan]you:[/] {safe(heard)}")
    out.print(f"[bold green]voicerag:[/] {safe(result.answer.text)}")
    cited = [result.sources[i - 1].source for i in result.answer.cited if 0 < i <= len(result.sources)]
    if cited:
        out.print(f"[dim]sources: {safe(', '.join(dict.fromkeys(cited)))}[/]")


class _LiveStatus:
    """A one-line status on stderr: state (listening / thinking / speaking) and input level."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.state = "listening"
        self.level = (-100.0, 0.0)
        self.on_turn: Any = lambda turn: None
        self.on_barge_in: Any = lambda turn, at_s: None
        self._live: Any = None

    def __enter__(self) -> _LiveStatus:
        if self.enabled:
            from rich.live import Live

            self._live = Live(self._render(), console=err, refresh_per_second=12, transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def event(self, kind: str, payload: Any) -> None:
        if kind == "state":
            self.state = payload
        elif kind == "level":
            self.level = payload
        elif kind == "barge_in":
            self.state = "listening (interrupted)"
            self.on_barge_in(*payload)
        elif kind == "turn":
            self.on_turn(payload)
        if self._live is not None:
            self._live.update(self._render())

    def _render(self) -> Any:
        from rich.text import Text

        db, probability = self.level
        bars = int(max(0.0, min(1.0, (db + 60) / 60)) * 20)
        colour = {"listening": "green", "thinking": "yellow", "speaking": "cyan"}.get(self.state, "white")
        return Text.assemble(
            (f"● {self.state:<24}", colour),
            ("▮" * bars + "▯" * (20 - bars), "dim"),
            f" {db:6.1f} dBFS  speech {probability:.2f}",
        )


def _print_devices(devices: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json({"devices": devices})
        return
    if not devices:
        err.print("no audio devices found (PortAudio sees none)")
        return
    for d in devices:
        out.print(
            f"{d['index']:3d}  {d['name']}  (in {d['inputs']}, out {d['outputs']}, {d['default_samplerate']:.0f} Hz)"
        )
