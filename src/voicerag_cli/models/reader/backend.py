"""The reader as a backend of the `reader` role: loaded once, and each (question, passage)
reading kept for the question, so that the rerank stage and the answerer read each passage once."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from voicerag_cli.models.weights_info import WeightsInfo

if TYPE_CHECKING:
    from voicerag_cli.config import Settings
    from voicerag_cli.models.base import Roles
    from voicerag_cli.models.reader.reader import PassageReading, Reader

READINGS_KEPT = 64  # about six questions' worth: the rerank stage's and the answerer's reads meet here


class RememberingReader:
    """A reader that keeps its latest readings: reading a passage costs a forward pass, and the
    rerank stage and the answerer read the same passages for the same question."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self._kept: OrderedDict[tuple[str, str], PassageReading] = OrderedDict()

    def read(self, question: str, passages: list[str]) -> list[PassageReading]:
        missing = list(dict.fromkeys(p for p in passages if (question, p) not in self._kept))
        if missing:
            for passage, reading in zip(missing, self.reader.read(question, missing), strict=True):
                self._kept[(question, passage)] = reading
        found = [self._kept[(question, p)] for p in passages]
        for passage in passages:
            self._kept.move_to_end((question, passage))
        while len(self._kept) > READINGS_KEPT:
            self._kept.popitem(last=False)
        return found


def create(settings: Settings, registry: Roles) -> RememberingReader:
    from voicerag_cli.models.pinned import stamps_for
    from voicerag_cli.models.reader.reader import load_reader

    return RememberingReader(load_reader(stamps=stamps_for(settings)))


def weights(settings: Settings) -> WeightsInfo:
    from voicerag_cli.models.reader.reader import MODEL_PATH

    present = MODEL_PATH.is_file()
    return WeightsInfo(str(MODEL_PATH), present, MODEL_PATH.stat().st_size if present else None)
