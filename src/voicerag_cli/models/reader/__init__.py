"""The trained reader: a MiniLM cross-encoder that scores a passage's relevance to a question and
every token's chance of belonging to the answer, in one int8 onnxruntime pass (no torch).
See MODEL_CARD.md beside this file."""

from voicerag_cli.models.reader.reader import PassageReading, Reader, load_reader

__all__ = ["PassageReading", "Reader", "load_reader"]
