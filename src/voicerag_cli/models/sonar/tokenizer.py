"""The NLLB tokenizer as fairseq2 builds it for SONAR's text encoder, on the `sentencepiece` package.

fairseq2 (`load_nllb_tokenizer`) edits the SentencePiece model before use: it appends one control
piece `__<lang>__` per card language (in card order), then `<MINED_DATA>`, `<MMT_BT_DATA>`,
`<SMT_BT_DATA>`, and inserts `<pad>` at index 0. Control pieces never match input text, so the
segmentation is the original model's and every original id moves up by one. A source sentence is
encoded as [__lang__] + pieces + [</s>].
"""

from __future__ import annotations

from pathlib import Path

from voicerag_cli.errors import ModelError

_INTERNAL_SYMBOLS = 3  # <MINED_DATA>, <MMT_BT_DATA>, <SMT_BT_DATA>


class NllbTokenizer:
    pad_idx = 0

    def __init__(self, model_path: Path, langs: list[str]) -> None:
        try:
            import sentencepiece
        except ImportError as exc:
            raise ModelError("the SONAR text encoder needs sentencepiece: pip install 'voicerag[sonar]'") from exc
        try:
            self._sp = sentencepiece.SentencePieceProcessor(model_file=str(model_path))
        except (OSError, RuntimeError) as exc:
            raise ModelError(f"cannot load SentencePiece model {model_path}: {exc}") from exc
        pieces = self._sp.get_piece_size()
        self.langs = list(langs)
        self._lang_ids = {lang: pieces + 1 + i for i, lang in enumerate(self.langs)}
        self.vocab_size = pieces + 1 + len(self.langs) + _INTERNAL_SYMBOLS
        eos = self._sp.piece_to_id("</s>")
        if eos == self._sp.unk_id() or self._sp.id_to_piece(eos) != "</s>":
            raise ModelError(f"SentencePiece model {model_path} has no </s> piece: not an NLLB tokenizer")
        self.eos_idx = eos + 1

    def encode(self, text: str, lang: str) -> list[int]:
        if lang not in self._lang_ids:
            raise ModelError(f"the SONAR tokenizer has no language {lang!r}")
        return [self._lang_ids[lang], *(i + 1 for i in self._sp.encode(text)), self.eos_idx]
