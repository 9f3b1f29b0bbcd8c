"""GLM-4's tokenizer read natively from a snapshot's files, so that the native runtime runs none of
the snapshot's code (its `tokenization_chatglm.py`, upstream's `ChatGLM4Tokenizer`).

The files (as the GLM-4 snapshots publish them): `tokenizer.model`, one `base64(token bytes) rank`
per line, read by upstream with tiktoken and GLM-4's pre-tokenizing pattern; `tokenizer_config.json`,
whose `added_tokens_decoder` holds the special tokens (`[gMASK]`, `<sop>`, `<|user|>`, ...) and,
for GLM-4-Voice, `<|begin_of_audio|>` and the `<|audio_N|>` tokens, numbered after the ranks (not
necessarily without gaps: third-party code puts `<|audio_0|>` at 151552 or 152353, well past the
specials; every added token keeps the id its config gives it).
Older GLM-4 tokenizer code instead fixes the first 14 special tokens in code; a config without them
gets those, in that order.

The tiktoken ranks become a byte-level BPE for `tokenizers` (merge order = rank of the merged
token, whole pre-tokens found in the vocabulary kept whole, as tiktoken does). Upstream's encoding
of a prompt is `[gMASK]<sop>` + the ids of the text, special tokens matched as whole tokens; its
decoding joins the token bytes. tests/test_glm4voice_lm_parity.py checks ids and decoding against
upstream's class on a fixture written by scripts/make_lm_fixtures.py."""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any

from voicerag_cli.errors import ModelError

WHAT = "GLM-4-Voice LM tokenizer"
VOCAB_FILE = "tokenizer.model"
CLASS_NAME = "ChatGLM4Tokenizer"
# GLM-4's pre-tokenizing pattern (upstream's `pat_str`, the cl100k one).
PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# The special tokens older GLM-4 tokenizer code numbers from the end of the ranks, in this order.
BUILT_IN_SPECIALS = (
    "<|endoftext|>",
    "[MASK]",
    "[gMASK]",
    "[sMASK]",
    "<sop>",
    "<eop>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|observation|>",
    "<|begin_of_image|>",
    "<|end_of_image|>",
    "<|begin_of_video|>",
    "<|end_of_video|>",
)


def is_glm4_tokenizer(folder: Path) -> bool:
    """A snapshot whose tokenizer is upstream's tiktoken one (the file and the class it names)."""
    config_path = folder / "tokenizer_config.json"
    if not (folder / VOCAB_FILE).is_file() or not config_path.is_file():
        return False
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    named = config.get("tokenizer_class") or ""
    auto_map = config.get("auto_map")
    auto = (auto_map.get("AutoTokenizer") if isinstance(auto_map, dict) else None) or []
    auto = [auto] if isinstance(auto, str) else auto
    return CLASS_NAME in (named, *(a.rsplit(".", 1)[-1] for a in auto if isinstance(a, str)))


def read_ranks(path: Path) -> dict[bytes, int]:
    ranks: dict[bytes, int] = {}
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{WHAT}: cannot read {path}: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except (ValueError, binascii.Error) as exc:
            raise ModelError(f"{WHAT}: {path} line {number} is not 'base64 rank'") from exc
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise ModelError(f"{WHAT}: {path} ranks are not 0..{len(ranks) - 1}, each once")
    if any(bytes([b]) not in ranks for b in range(256)):
        raise ModelError(f"{WHAT}: {path} lacks some of the 256 single bytes")
    return ranks


def vocab_and_merges(ranks: dict[bytes, int]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The byte-level BPE equivalent to tiktoken's ranks: every split of a token into two tokens
    is a merge, ranked as the token it makes (tiktoken merges the pair whose concatenation has the
    lowest rank first)."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    # byte b -> its printable stand-in, applied in C (str.translate) to all 151k tokens
    table = {b: c for b, c in bytes_to_unicode().items()}
    text = {token: token.decode("latin-1").translate(table) for token in ranks}
    merges: list[tuple[int, int, int]] = []
    for token, rank in ranks.items():
        for cut in range(1, len(token)):
            left, right = ranks.get(token[:cut]), ranks.get(token[cut:])
            if left is not None and right is not None:
                merges.append((rank, left, right))
    merges.sort()
    by_rank = {rank: text[token] for token, rank in ranks.items()}
    return {text[t]: r for t, r in ranks.items()}, [(by_rank[left], by_rank[right]) for _, left, right in merges]


def added_tokens(config: dict[str, Any], first_id: int) -> list[tuple[int, dict[str, Any]]]:
    """(id, entry) of every added token, by id: past the `first_id` ranks, each id and each
    content once."""
    try:
        entries = {int(i): e for i, e in (config.get("added_tokens_decoder") or {}).items()}
    except (TypeError, ValueError, AttributeError) as exc:
        raise ModelError(f"{WHAT}: tokenizer_config.json's added_tokens_decoder is malformed: {exc}") from exc
    present = {e.get("content") for e in entries.values() if isinstance(e, dict)}
    if not present & set(BUILT_IN_SPECIALS):  # older tokenizer code: the first 14 come from code
        built_in = {first_id + n: {"content": t, "special": True} for n, t in enumerate(BUILT_IN_SPECIALS)}
        entries = built_in | entries
    seen: set[str] = set()
    for token_id, entry in sorted(entries.items()):
        content = entry.get("content") if isinstance(entry, dict) else None
        if not isinstance(content, str) or not content:
            raise ModelError(f"{WHAT}: added token {token_id} has no content")
        if token_id < first_id:
            raise ModelError(f"{WHAT}: added token {content!r} has id {token_id}, inside the {first_id} ranks")
        if content in seen:
            raise ModelError(f"{WHAT}: added token {content!r} appears twice")
        seen.add(content)
    return sorted(entries.items())


def load_glm4_tokenizer(folder: Path) -> Any:
    """A `PreTrainedTokenizerFast` equal to upstream's `ChatGLM4Tokenizer` for these files."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    ranks = read_ranks(folder / VOCAB_FILE)
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{WHAT}: cannot read {folder / 'tokenizer_config.json'}: {exc}") from exc
    vocab, merges = vocab_and_merges(ranks)
    added = added_tokens(config, len(ranks))
    # The added tokens enter the vocabulary under their own ids (gaps and all): registering them
    # below then keeps those ids instead of numbering them on from the ranks. No merge makes them,
    # and the pre-tokenizer never yields them whole, so text reaches them only as added tokens.
    clash = next((e["content"] for _, e in added if e["content"] in vocab), None)
    if clash is not None:
        raise ModelError(f"{WHAT}: added token {clash!r} is also one of the {len(ranks)} ranks")
    vocab |= {entry["content"]: token_id for token_id, entry in added}
    # ignore_merges: a pre-token that is itself in the vocabulary stays whole, as in tiktoken.
    core = Tokenizer(models.BPE(vocab, merges, fuse_unk=False, ignore_merges=True))
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    core.decoder = decoders.ByteLevel()
    tokens = []
    for _, entry in added:
        tokens.append(
            AddedToken(
                entry["content"],
                special=bool(entry.get("special", True)),
                normalized=False,
                lstrip=bool(entry.get("lstrip", False)),
                rstrip=bool(entry.get("rstrip", False)),
                single_word=bool(entry.get("single_word", False)),
            )
        )
    # one call (one per token rebuilds the matcher each time: minutes for 16k speech tokens)
    core.add_tokens(tokens)
    for token_id, entry in added:
        if core.token_to_id(entry["content"]) != token_id:
            raise ModelError(f"{WHAT}: added token {entry['content']!r} did not keep its id {token_id}")
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        clean_up_tokenization_spaces=False,
    )
