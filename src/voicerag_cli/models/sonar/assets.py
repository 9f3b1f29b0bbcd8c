"""SONAR asset cards: which checkpoint and tokenizer files an encoder name stands for.

Cards use fairseq2's YAML format (several documents per file, separated by `---`):

    name: sonar_speech_encoder_eng
    base: sonar_speech_encoder_base        # fields are inherited from the base card
    model_family: sonar_speech
    model_arch: english
    checkpoint: "https://dl.fbaipublicfiles.com/SONAR/spenc.eng.pt"   # or a path, or file:///...

Cards in the user's `[sonar] asset_dir` override the built-in ones, which name the official
download URLs; a user card with an official name and no `base` only needs the fields it changes
(typically `checkpoint`/`tokenizer` paths). A URL is used through a copy in `<cache dir>/sonar/`; it is downloaded there on
first use only when `[sonar] download = true`. Relative paths are relative to the card's file.
"""

from __future__ import annotations

import os
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicerag_cli.errors import ModelError
from voicerag_cli.models.sonar.languages import NLLB_LANGS, SPEECH_LANGS, SPEECH_LANGS_V3

if TYPE_CHECKING:
    from voicerag_cli.config import Settings

OFFICIAL_URL = "https://dl.fbaipublicfiles.com/SONAR/"
BUILTIN = "built-in card"


@dataclass(frozen=True)
class Card:
    name: str
    fields: dict[str, Any]  # base cards' fields merged in
    origin: str  # the YAML file it came from, or BUILTIN

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)

    def require(self, key: str) -> Any:
        if key not in self.fields:
            raise ModelError(f"SONAR asset card {self.name!r} ({self.origin}) has no {key!r} field")
        return self.fields[key]


@dataclass(frozen=True)
class FileState:
    """Where a card's file is (or would be) on this machine."""

    card: str
    key: str  # "checkpoint" or "tokenizer"
    path: Path
    url: str | None  # set when the card names a download URL
    present: bool

    @property
    def size(self) -> int:
        return self.path.stat().st_size if self.present else 0


def _speech_checkpoint_url(code: str) -> str:
    if code == "eng":
        return f"{OFFICIAL_URL}spenc.eng.pt"
    generation = "v3ap" if code in SPEECH_LANGS_V3 else "v5ap"
    return f"{OFFICIAL_URL}spenc.{generation}.{code}.pt"


def builtin_cards() -> dict[str, dict[str, Any]]:
    """The official SONAR encoder cards (as published with SONAR), reduced to what we read."""
    cards: dict[str, dict[str, Any]] = {
        "text_sonar_basic_encoder": {
            "name": "text_sonar_basic_encoder",
            "model_family": "transformer_encoder",
            "model_arch": "basic",
            "checkpoint": f"{OFFICIAL_URL}sonar_text_encoder.pt",
            "tokenizer": f"{OFFICIAL_URL}sentencepiece.source.256000.model",
            "tokenizer_family": "nllb",
            "tokenizer_config": {"_set_": {"default_lang": "eng_Latn", "langs": list(NLLB_LANGS)}},
        },
        "sonar_speech_encoder_base": {
            "name": "sonar_speech_encoder_base",
            "model_family": "sonar_speech",
            "model_arch": "non_english",
        },
    }
    for code in SPEECH_LANGS:
        name = f"sonar_speech_encoder_{code}"
        cards[name] = {"name": name, "base": "sonar_speech_encoder_base", "checkpoint": _speech_checkpoint_url(code)}
        if code == "eng":
            cards[name]["model_arch"] = "english"
    return cards


def _read_card_files(asset_dir: Path) -> dict[str, tuple[dict[str, Any], str]]:
    import yaml

    if not asset_dir.is_dir():
        raise ModelError(f"SONAR asset dir not found: {asset_dir} (set [sonar] asset_dir / VOICERAG_SONAR__ASSET_DIR)")
    found: dict[str, tuple[dict[str, Any], str]] = {}
    for path in sorted([*asset_dir.glob("*.yaml"), *asset_dir.glob("*.yml")]):
        try:
            documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"cannot read SONAR asset card file {path}: {first}") from exc
        for document in documents:
            if document is None:
                continue
            if not isinstance(document, dict) or not isinstance(document.get("name"), str):
                raise ModelError(f"SONAR asset card file {path}: every card needs a 'name' field")
            name = document["name"]
            if name in found:
                raise ModelError(f"SONAR asset card {name!r} is defined twice: in {found[name][1]} and {path}")
            found[name] = (document, str(path))
    return found


class AssetStore:
    """The cards visible to this run and the files they name."""

    def __init__(self, asset_dir: str, cache_dir: Path, download: bool) -> None:
        self.asset_dir = Path(asset_dir).expanduser() if asset_dir else None
        self.cache_dir = cache_dir / "sonar"
        self.download = download
        self._raw: dict[str, tuple[dict[str, Any], str]] = {
            name: (card, BUILTIN) for name, card in builtin_cards().items()
        }
        self.user_cards: list[str] = []
        if self.asset_dir is not None:
            user = _read_card_files(self.asset_dir)
            self.user_cards = sorted(user)
            for name, (card, origin) in user.items():
                # A card named like an official one may give just its local files: the rest
                # (family, arch, languages) comes from the built-in card.
                builtin = self._raw.get(name, ({}, BUILTIN))[0] if "base" not in card else {}
                self._raw[name] = ({**builtin, **card}, origin)

    @classmethod
    def from_settings(cls, settings: Settings) -> AssetStore:
        from voicerag_cli.models.sonar.settings import SonarConfig
        from voicerag_cli.paths import cache_dir

        sonar = settings.section(SonarConfig)
        return cls(sonar.asset_dir, cache_dir(settings.paths.cache_dir), sonar.download)

    def names(self) -> list[str]:
        return sorted(self._raw)

    def card(self, name: str) -> Card:
        if name not in self._raw:
            where = f"in {self.asset_dir} or among the built-in cards" if self.asset_dir else "among the built-in cards"
            raise ModelError(f"no SONAR asset card named {name!r} {where}")
        chain: list[tuple[dict[str, Any], str]] = []
        current: str | None = name
        while current is not None:
            if current not in self._raw:
                raise ModelError(f"SONAR asset card {chain[-1][0]['name']!r} has an unknown base {current!r}")
            if any(raw["name"] == current for raw, _ in chain):
                raise ModelError(f"SONAR asset card {name!r} has a cyclic 'base' chain")
            chain.append(self._raw[current])
            base = chain[-1][0].get("base")
            current = str(base) if base else None
        merged: dict[str, Any] = {}
        for raw, _ in reversed(chain):  # the base first; the card itself wins
            merged.update(raw)
        return Card(name, merged, chain[0][1])

    def file_state(self, card: Card, key: str) -> FileState:
        value = str(card.require(key))
        if value.startswith(("http://", "https://")):
            filename = Path(urllib.parse.urlparse(value).path).name or f"{card.name}.{key}"
            path = self.cache_dir / filename
            return FileState(card.name, key, path, value, path.is_file())
        if value.startswith("file://"):
            path = Path(urllib.request.url2pathname(urllib.parse.urlparse(value).path))
        else:
            path = Path(value).expanduser()
            if not path.is_absolute() and card.origin != BUILTIN:
                path = Path(card.origin).parent / path
        return FileState(card.name, key, path, None, path.is_file())

    def file(self, card: Card, key: str) -> Path:
        """The local path of a card's file, downloading it first when allowed."""
        state = self.file_state(card, key)
        if state.present:
            return state.path
        if state.url is None:
            raise ModelError(f"SONAR {key} for {card.name!r} not found: {state.path} (named by {card.origin})")
        if not self.download:
            raise ModelError(
                f"SONAR {key} for {card.name!r} is not on this machine: set [sonar] download = true "
                f"(VOICERAG_SONAR__DOWNLOAD=1) to fetch {state.url} into {state.path}, or point an asset card "
                "in [sonar] asset_dir at a local copy"
            )
        fetch(state.url, state.path)
        return state.path


def fetch(url: str, target: Path) -> None:
    """Download `url` to `target` atomically (a killed download leaves no partial file)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    sys.stderr.write(f"voicerag: downloading {url} to {target}\n")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as handle:
            while chunk := response.read(1 << 20):
                handle.write(chunk)
        partial.replace(target)
    except (OSError, ValueError) as exc:  # URLError and HTTPError are OSErrors
        partial.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise ModelError(
            f"cannot download {url}: {reason} (offline? download it elsewhere and use [sonar] asset_dir)"
        ) from exc
