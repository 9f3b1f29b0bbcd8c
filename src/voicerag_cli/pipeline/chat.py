"""A conversation, spoken or typed, in one loop: segment the input stream into utterances (or
read typed lines), answer each through the ask pipeline with the earlier turns as history,
speak the answer, and let the user interrupt it (barge-in, spoken input only)."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from voicerag_cli.audio.io import Audio
from voicerag_cli.audio.vad import SpeechStarted, Utterance, UtteranceSegmenter
from voicerag_cli.errors import InputError, VoiceragError

if TYPE_CHECKING:
    from typing import TextIO

    from voicerag_cli.audio.stream import AudioSink, AudioSource
    from voicerag_cli.pipeline.ask import AskPipeline, AskResult

RATE = 16_000


@dataclass
class Turn:
    index: int
    result: AskResult | None  # None when nothing usable was heard
    start_s: float  # stream time the question started
    end_s: float  # ... and ended (last speech frame)
    detected_s: float  # when the end was declared (end_s + VAD silence timeout)
    answer_started_s: float | None = None  # stream time the answer began to play
    interrupted_s: float | None = None  # stream time the user barged in
    eos_to_audio_ms: float = 0.0  # end of speech -> first answer audio
    latency_ms: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    saved: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "turn": self.index,
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "detected_s": round(self.detected_s, 3),
            "answer_started_s": None if self.answer_started_s is None else round(self.answer_started_s, 3),
            "interrupted_s": None if self.interrupted_s is None else round(self.interrupted_s, 3),
            "eos_to_audio_ms": round(self.eos_to_audio_ms, 1),
            "latency_ms": {k: round(v, 1) for k, v in self.latency_ms.items()},
            "error": self.error,
            "result": None if self.result is None else self.result.to_json(),
        }


# on_event(kind, payload): kinds are "state" (listening/thinking/speaking), "level", "turn",
# "barge_in", and "warning" (a typed turn's answer could not be spoken: the message)
EventFn = Callable[[str, Any], None]


@dataclass
class Typed:
    """A typed question (chat --text)."""

    text: str


class TypedLines:
    """Typed questions, one per line of `stream`, blank lines skipped; `prompt` is called
    before each line is read (an interactive "you>")."""

    def __init__(self, stream: TextIO, prompt: Callable[[], None] | None = None) -> None:
        self.stream = stream
        self.prompt = prompt

    def questions(self) -> Iterator[Typed]:
        while True:
            if self.prompt is not None:
                self.prompt()
            line = self.stream.readline()
            if not line:
                return
            if line.strip():
                yield Typed(line.strip())

    def close(self) -> None:
        pass


class ChatSession:
    """`segmenter` splits a spoken source into utterances (None for typed input only); `sink`
    plays answers (None: not played, as chat --text --mute)."""

    def __init__(
        self,
        pipeline: AskPipeline,
        segmenter: UtteranceSegmenter | None,
        sink: AudioSink | None,
        rag: str,
        save_dir: Path | None = None,
        history_turns: int = 3,
        barge_in: bool = True,
        speak: bool = True,
        on_event: EventFn | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.segmenter = segmenter
        self.sink = sink
        self.rag = rag
        self.save_dir = save_dir
        self.history_turns = history_turns
        self.barge_in = barge_in
        self.speak = speak
        self.on_event = on_event or (lambda kind, payload: None)
        self.turns: list[Turn] = []
        self._audio_dir = save_dir  # a temporary folder, made on first use, when not saving
        self._state = ""

    # --- the loop ---------------------------------------------------------------------
    def run(self, source: AudioSource | TypedLines) -> list[Turn]:
        """The one turn loop of spoken and typed chat."""
        try:
            for event in self._events(source):
                if isinstance(event, SpeechStarted):
                    self._speech_started(event)
                elif isinstance(event, Utterance):
                    self._answer(event)
                else:
                    self._answer_typed(event)
        finally:
            source.close()
            if self.sink is not None and self.sink.is_playing(self.now_s):
                self.sink.stop(self.now_s)
        return self.turns

    @property
    def now_s(self) -> float:
        """Stream time: how much spoken input has been heard (0 for typed input)."""
        return 0.0 if self.segmenter is None else self.segmenter.now_s

    def _events(self, source: AudioSource | TypedLines) -> Iterator[SpeechStarted | Utterance | Typed]:
        if isinstance(source, TypedLines):
            yield from source.questions()
            return
        segmenter = self.segmenter
        if segmenter is None:
            raise InputError("spoken chat needs an utterance segmenter")
        for block in source.blocks():
            yield from segmenter.feed(block)
            playing = self.sink is not None and self.sink.is_playing(segmenter.now_s)
            self._set_state("speaking" if playing else "listening")
            self.on_event("level", (segmenter.last_level_db, segmenter.last_probability))
        yield from segmenter.flush()

    def _speech_started(self, event: SpeechStarted) -> None:
        now = self.now_s
        if self.barge_in and self.sink is not None and self.sink.is_playing(now):
            self.sink.stop(now)
            if self.turns:
                self.turns[-1].interrupted_s = event.at_s
                self._save(self.turns[-1])
            self.on_event("barge_in", (len(self.turns), event.at_s))

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self.on_event("state", state)

    # --- one turn ---------------------------------------------------------------------
    def _answer(self, utterance: Utterance) -> Turn:
        self._set_state("thinking")
        turn = Turn(len(self.turns) + 1, None, utterance.start_s, utterance.end_s, utterance.detected_s)
        started = time.perf_counter()
        try:
            clip = Audio(utterance.samples, RATE, f"turn {turn.index}")
            # chat's own limit for a second decoding: it costs ~0.2 s of the 1.5 s turn budget
            below = self.pipeline.registry.settings.chat.index_prompt_below
            result = self.pipeline.ask_audio(clip, self.rag, self._history(), prompt_below=below)
        except InputError as exc:  # e.g. nothing recognizable: tell the user, keep listening
            turn.error = str(exc)
        else:
            turn.result = result
            if self.speak:
                path = self.pipeline.speak(result, self._turn_dir(turn) / "answer.wav")
                if self.sink is not None:
                    self._play(path, turn)
        processing_ms = (time.perf_counter() - started) * 1000
        tail_ms = (utterance.detected_s - utterance.end_s) * 1000
        turn.latency_ms = {"vad_tail": tail_ms, **(turn.result.timings_ms if turn.result else {})}
        turn.latency_ms["processing"] = processing_ms
        turn.eos_to_audio_ms = tail_ms + processing_ms
        self.turns.append(turn)
        self._save(turn, utterance.samples)
        self.on_event("turn", turn)
        return turn

    def _answer_typed(self, typed: Typed) -> Turn:
        """A typed turn: answered with the same history; its answer is spoken (when `speak`) and
        played to the end before the next line is read, and saved as the ask result itself."""
        turn = Turn(len(self.turns) + 1, None, self.now_s, self.now_s, self.now_s)
        try:
            turn.result = self.pipeline.ask_text(typed.text, self._history())
        except InputError as exc:
            turn.error = str(exc)
        self.turns.append(turn)
        if turn.result is not None and self.speak:
            folder = self._turn_dir(turn) if self.save_dir is not None else Path(tempfile.mkdtemp(prefix="voicerag-"))
            try:
                self.pipeline.speak(turn.result, folder / "answer.wav")
            except VoiceragError as exc:  # no voice: the text answer still stands
                self.on_event("warning", str(exc))
            if self.sink is not None and turn.result.answer_audio:
                self._play(Path(turn.result.answer_audio), turn)
                self.sink.wait()
        if turn.result is not None and self.save_dir is not None:
            _write_json(self._turn_dir(turn) / "turn.json", turn.result.to_json())
            turn.saved = self._turn_dir(turn)
        self.on_event("turn", turn)
        return turn

    def _play(self, path: Path, turn: Turn) -> None:
        import soundfile as sf

        assert self.sink is not None
        samples, rate = sf.read(str(path), dtype="float32")
        turn.answer_started_s = self.now_s
        self.sink.play(samples, rate, self.now_s)
        self._set_state("speaking")

    def _history(self) -> list[tuple[str, str]]:
        done = [t.result for t in self.turns if t.result is not None]
        return [(r.question or "", r.answer.text) for r in done[-self.history_turns :]] if self.history_turns else []

    # --- saving -----------------------------------------------------------------------
    def _turn_dir(self, turn: Turn) -> Path:
        if self._audio_dir is None:
            self._audio_dir = Path(tempfile.mkdtemp(prefix="voicerag-chat-"))
        folder = self._audio_dir / f"turn-{turn.index:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _save(self, turn: Turn, question: np.ndarray | None = None) -> None:
        """Each turn is written as soon as it completes, so a crash or a lost device later
        never loses it; files are replaced atomically."""
        if self.save_dir is None:
            return
        import soundfile as sf

        folder = self._turn_dir(turn)
        if question is not None:
            tmp = folder / "question.wav.part"
            try:
                sf.write(str(tmp), question, RATE, format="WAV", subtype="PCM_16")
                tmp.replace(folder / "question.wav")
            finally:
                tmp.unlink(missing_ok=True)  # a failed write (a full disk) leaves no .part
        _write_json(folder / "turn.json", turn.to_json())
        turn.saved = folder
        _write_json(self.save_dir / "session.json", {"rag": self.rag, "turns": [t.to_json() for t in self.turns]})


def _write_json(path: Path, payload: Any) -> None:
    tmp = path.with_name(path.name + ".part")
    try:
        tmp.write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)  # a failed write (a full disk) leaves no .part
