"""The `[sonar]` config section, shared by the `sonar` text and speech embedders. Standard
library only: every command's settings hold it, most never run SONAR."""

from __future__ import annotations

from dataclasses import dataclass

from voicerag_cli.config_schema import one_of, setting

# The offline profile languages of `--lang` (languages.py), as SONAR's speech encoders name them.
PROFILE_CODES = {"en": "eng", "zh": "cmn"}


@dataclass(frozen=True)
class SonarConfig:
    asset_dir: str = ""  # folder of fairseq2 asset cards (*.yaml) naming local checkpoints; empty: built-in cards
    lang: str = "eng"  # --lang: eng, cmn, ... (speech encoder) or an NLLB code (eng_Latn, zho_Hans)
    text_encoder: str = "text_sonar_basic_encoder"  # card name; also names the embedding space
    speech_encoder: str = ""  # card name; empty: sonar_speech_encoder_<lang>
    download: bool = False  # fetch files that cards name by URL into <cache dir>/sonar on first use
    # cosine: normalized vectors; l2: raw vectors, Euclidean (the reference system's)
    metric: str = setting("cosine", one_of("cosine", "l2", quoted=False))


def lang_code(code: str) -> str:
    """`sonar.lang` for `--lang CODE` (the backend table's lang hook): en/zh in SONAR's
    spelling; any other code must be SONAR's (eng, cmn, an NLLB code such as fra_Latn), so a
    typo such as `--lang fr` is a one-line error instead of an ignored setting."""
    if code.strip().lower() in PROFILE_CODES:
        return PROFILE_CODES[code.strip().lower()]
    from voicerag_cli.models.sonar.languages import text_lang

    text_lang(code)  # raises ConfigError naming the accepted codes
    return code
