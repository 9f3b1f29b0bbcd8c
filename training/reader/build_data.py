"""Build the reader's training and validation pairs (CPU; run from the repository root).

Inputs:
  * the QA sets in ``../shared/data/qa`` (SQuAD v1.1 train, SQuAD 2.0 train first-10-article
    unanswerables, NQ-QED, SelQA, CLAPNQ, AWS docs QA);
  * documentation folders of source distributions of libraries on the *training* list of
    ``../shared/notes/docs-libraries.md`` (downloaded with ``pip download --no-deps --no-binary
    :all:`` and unpacked under ``--sdists``).

Output: one gzipped JSON file per split with a table of unique passages and a list of groups.
A group is one question with its candidate passages: ``[passage_id, label, evidence_spans]``,
the positive (if any) first; ``evidence_spans`` are character ranges of the passage that hold
the answer (empty for negatives).  Validation groups also carry ``units`` (the passage's
sentences / blocks) for the answer-block accuracy.  Tokenisation happens in ``train.py``.

Validation = whole SQuAD articles and whole libraries held out (``--val-libs``).
"""

# ruff: noqa: B023  (the per-library helper closures are called only within their own loop iteration)

from __future__ import annotations

import gzip
import json
import lzma
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

# ----------------------------------------------------------------------------- config


@dataclass
class BuildConfig:
    qa_dir: Path = Path("../shared/data/qa")
    sdists: Path = Path(".reader/sdists")  # unpacked sdists, one folder per library
    out_dir: Path = Path(".reader/data")
    val_libs: tuple[str, ...] = ("gunicorn", "structlog", "arrow")
    val_squad_articles: int = 16
    train_negatives: int = 4  # stored per positive; train.py samples from them
    val_candidates: int = 10  # 1 positive + 9 negatives, like a retrieval top-10
    max_passage_chars: int = 1400
    seed: int = 13


# ----------------------------------------------------------------------------- passages


class Store:
    """Unique passage texts, shared by the groups that use them."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self._ids: dict[str, int] = {}

    def add(self, text: str) -> int:
        pid = self._ids.get(text)
        if pid is None:
            pid = len(self.texts)
            self._ids[text] = pid
            self.texts.append(text)
        return pid


@dataclass
class Group:
    question: str
    source: str
    items: list[list] = field(default_factory=list)  # [pid, label, [[s, e], ...]]
    units: list[list[int]] | None = None  # sentence/block spans of the positive


_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])|\n+")


def sentence_spans(text: str) -> list[list[int]]:
    spans: list[list[int]] = []
    start = 0
    for m in _SENT.finditer(text):
        if text[start : m.start()].strip():
            spans.append([start, m.start()])
        start = m.end()
    if text[start:].strip():
        spans.append([start, len(text)])
    return spans


def evidence_ranges(context: str, evidence: list[str]) -> list[list[int]]:
    out = []
    for ev in evidence:
        i = context.find(ev)
        if i >= 0:
            out.append([i, i + len(ev)])
    return out


# ----------------------------------------------------------------------------- QA sets


def read_jsonl(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def qa_groups(cfg: BuildConfig, store: Store, rng: random.Random) -> tuple[list[Group], list[Group]]:
    train: list[Group] = []
    val: list[Group] = []

    def build(records: list[dict], source: str, key, val_keys: set[str], skip_ambiguous: bool = False) -> None:
        by_key: dict[str, list[str]] = defaultdict(list)
        for r in records:
            ctxs = by_key[key(r)]
            if r["context"] not in ctxs:
                ctxs.append(r["context"])
        all_ctx = [c for cs in by_key.values() for c in cs]
        for r in records:
            k = key(r)
            is_val = k in val_keys
            n_neg = cfg.val_candidates - 1 if is_val else cfg.train_negatives
            same = [c for c in by_key[k] if c != r["context"]]
            rng.shuffle(same)
            negs = same[: (n_neg + 1) // 2 if not is_val else min(5, n_neg)]
            while len(negs) < n_neg:
                c = rng.choice(all_ctx)
                if c != r["context"] and c not in negs:
                    negs.append(c)
            g = Group(question=r["question"].strip(), source=source)
            if r.get("answerable", True) and r.get("evidence_sentences"):
                if skip_ambiguous and r.get("answer_start_ambiguous"):
                    continue
                ev = evidence_ranges(r["context"], r["evidence_sentences"])
                if not ev:
                    continue
                g.items.append([store.add(r["context"]), 1, ev])
                if is_val:
                    g.units = [[s, e] for s, e in sentence_spans(r["context"])]
            else:
                g.items.append([store.add(r["context"]), 0, []])  # unanswerable: topical but no answer
            for c in negs:
                g.items.append([store.add(c), 0, []])
            (val if is_val else train).append(g)

    qa = cfg.qa_dir
    squad = read_jsonl(qa / "squad_v1.1_train.jsonl.gz")
    titles = sorted({r["title"] for r in squad})
    val_titles = set(random.Random(cfg.seed).sample(titles, cfg.val_squad_articles))
    build(squad, "squad", lambda r: r["title"], val_titles, skip_ambiguous=True)
    seen = {(r["question"], r["context"]) for r in squad}
    squad2 = [
        r
        for r in read_jsonl(qa / "squad_v2.0_train_first10articles.jsonl.gz")
        if (r["question"], r["context"]) not in seen
    ]
    build(squad2, "squad2_unanswerable", lambda r: r["title"], set())
    build(read_jsonl(qa / "nq_qed_train.jsonl.gz"), "nq_qed", lambda r: r["title"], set())
    build(read_jsonl(qa / "selqa_ass_devtest.jsonl.gz"), "selqa", lambda r: r["title"].split(" / ")[0], set())
    build(read_jsonl(qa / "clapnq_dev_NQdev-derived.jsonl.gz"), "clapnq", lambda r: "all", set())
    build(read_jsonl(qa / "aws_docs_qa.jsonl.gz"), "aws_docs", lambda r: r["title"].split("/")[0], set())
    return train, val


# ----------------------------------------------------------------------------- docs


CHANGELOG_PATH = re.compile(r"change|history|release|whatsnew|what_s_new|news|upgrad|migrat|porting", re.I)
SKIP_PATH = re.compile(r"license|authors|contributors|code_of_conduct|/_build/|/_templates/|/tests?/|/\.github/", re.I)
RST_ADORN = re.compile(r"^([=\-~^\"'*+#`:.<>_])\1{2,}\s*$")
MD_HEAD = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
DIRECTIVE = re.compile(r"^(\s*)\.\.\s+([\w:-]+)::\s*(.*)$")
OPTION_DIRECTIVES = {
    "option",
    "cmdoption",
    "confval",
    "setting",
    "envvar",
    "std:setting",
    "std:confval",
    "describe",
    "py:data",
    "data",
    "attribute",
    "py:attribute",
}
SIG_DIRECTIVES = {
    "function",
    "py:function",
    "method",
    "py:method",
    "class",
    "py:class",
    "decorator",
    "py:decorator",
    "classmethod",
    "py:classmethod",
    "staticmethod",
    "py:staticmethod",
    "exception",
    "py:exception",
    "coroutinefunction",
    "py:coroutinefunction",
    "coroutinemethod",
    "py:coroutinemethod",
}
DEFAULT_LINE = re.compile(
    r"^\s*(?:\*\*|\*)?(?::default:|default(?:s)?(?: value)?(?:\*\*)?\s*[:=]|defaults to\b|the default is\b|by default\b)",
    re.I,
)

ROLE = re.compile(r":[\w:+-]+:`~?([^`<]*?)\s*(?:<[^`>]*>)?`")
LITERAL = re.compile(r"``(.+?)``")
REF = re.compile(r"`([^`<]+?)\s*(?:<[^`>]*>)?`__?")
STRONG = re.compile(r"\*\*(.+?)\*\*")
MDLINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
MDCODE = re.compile(r"`([^`]+)`")


def clean(text: str) -> str:
    """Plain-ish text from reST/Markdown markup (the runtime sees parsed blocks, not raw markup)."""
    lines = []
    for line in text.splitlines():
        m = DIRECTIVE.match(line)
        if m:
            name, arg = m.group(2), m.group(3).strip()
            if name in OPTION_DIRECTIVES or name in SIG_DIRECTIVES:
                line = arg
            elif name in {
                "code-block",
                "code",
                "sourcecode",
                "highlight",
                "literalinclude",
                "toctree",
                "image",
                "figure",
                "index",
                "currentmodule",
                "module",
                "py:module",
                "automodule",
                "include",
            }:
                continue
            else:
                line = arg
        elif re.match(r"^\s*:[\w-]+:\s*\S*\s*$", line) and not DEFAULT_LINE.match(line):
            continue  # directive options like :linenos:
        line = ROLE.sub(r"\1", line)
        line = LITERAL.sub(r"\1", line)
        line = REF.sub(r"\1", line)
        line = STRONG.sub(r"\1", line)
        line = MDLINK.sub(r"\1", line)
        line = MDCODE.sub(r"\1", line)
        line = line.rstrip()
        if line.strip() in {"::", "```", "~~~"} or line.strip().startswith("```"):
            continue
        lines.append(line.replace("::", ":") if line.endswith("::") else line)
    out = re.sub(r"<!--.*?-->", "", "\n".join(lines), flags=re.S).strip("\n")
    return re.sub(r"\n{3,}", "\n\n", out)


@dataclass
class Section:
    lib: str
    path: str
    heading: str
    parents: list[str]
    blocks: list[str]  # raw blocks (blank-line separated; default lines split out)
    changelog: bool


def split_sections(lib: str, path: str, text: str) -> list[Section]:
    is_md = path.endswith(".md")
    lines = text.splitlines()
    heads: list[tuple[int, int, str, int]] = []  # (line index of title, first body line, title, level)
    adorn_levels: dict[str, int] = {}
    in_fence = False
    i = 0
    while i < len(lines):
        ln = lines[i]
        if is_md:
            if ln.strip().startswith(("```", "~~~")):
                in_fence = not in_fence
            elif not in_fence:
                m = MD_HEAD.match(ln)
                if m:
                    heads.append((i, i + 1, m.group(2), len(m.group(1))))
        else:
            if (
                i + 1 < len(lines)
                and ln.strip()
                and not ln.startswith((" ", "\t", ".."))
                and RST_ADORN.match(lines[i + 1])
                and len(lines[i + 1].strip()) >= len(ln.strip()) - 1
                and not RST_ADORN.match(ln)
            ):
                ch = lines[i + 1].strip()[0] + ("o" if i > 0 and RST_ADORN.match(lines[i - 1]) else "")
                level = adorn_levels.setdefault(ch, len(adorn_levels) + 1)
                heads.append((i, i + 2, ln.strip(), level))
                i += 2
                continue
        i += 1
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    changelog = bool(CHANGELOG_PATH.search(path))
    for n, (_, body_start, title, level) in enumerate(heads):
        body_end = heads[n + 1][0] if n + 1 < len(heads) else len(lines)
        if not is_md and n + 1 < len(heads) and body_end > 0 and RST_ADORN.match(lines[body_end - 1] or ""):
            body_end -= 1  # overline of the next title
        while stack and stack[-1][0] >= level:
            stack.pop()
        parents = [t for _, t in stack]
        stack.append((level, title))
        blocks = split_blocks(lines[body_start:body_end])
        title_clean = clean(title).strip()
        if blocks and title_clean:
            sections.append(
                Section(lib, path, title_clean, parents, blocks, changelog or bool(CHANGELOG_PATH.search(title)))
            )
    return sections


def split_blocks(lines: list[str]) -> list[str]:
    blocks: list[str] = []
    cur: list[str] = []
    in_fence = False
    for ln in lines:
        if ln.strip().startswith(("```", "~~~")):
            in_fence = not in_fence
        if in_fence or ln.strip().startswith(("```", "~~~")):
            cur.append(ln)
            continue
        if not ln.strip() or RST_ADORN.match(ln):
            if cur:
                blocks.append("\n".join(cur))
                cur = []
            continue
        if DEFAULT_LINE.match(ln) and cur:  # a default/value line is its own unit
            blocks.append("\n".join(cur))
            cur = []
        if re.match(r"^\s*\.\.\s+_[^:]+:\s*$", ln):  # reST label
            continue
        cur.append(ln)
        if DEFAULT_LINE.match(ln):
            blocks.append("\n".join(cur))
            cur = []
    if cur:
        blocks.append("\n".join(cur))
    return [b for b in blocks if b.strip()]


def is_prose(block: str) -> bool:
    b = block.strip()
    if (
        not b
        or b.startswith((">>>", "$ ", "```", "..", "|", "+-", "=", "{", "[", "#", "<", "!!!", "???", ":"))
        or block.startswith(("    ", "\t"))
    ):
        return False
    words = re.findall(r"[A-Za-z]{2,}", b)
    return len(words) >= 5


GERUND_BASE = {
    "using": "use",
    "configuring": "configure",
    "writing": "write",
    "creating": "create",
    "running": "run",
    "setting": "set",
    "getting": "get",
    "handling": "handle",
    "managing": "manage",
    "defining": "define",
    "changing": "change",
    "serving": "serve",
    "storing": "store",
    "scheduling": "schedule",
    "debugging": "debug",
    "making": "make",
    "sharing": "share",
    "adding": "add",
    "removing": "remove",
    "enabling": "enable",
    "disabling": "disable",
    "customizing": "customize",
    "customising": "customise",
    "deploying": "deploy",
    "installing": "install",
    "testing": "test",
    "logging": "log",
    "extending": "extend",
    "building": "build",
    "routing": "route",
    "serializing": "serialize",
    "parsing": "parse",
    "passing": "pass",
    "stopping": "stop",
    "starting": "start",
    "mapping": "map",
    "upgrading": "upgrade",
    "migrating": "migrate",
    "writting": "write",
    "reading": "read",
    "loading": "load",
    "signing": "sign",
    "sending": "send",
    "returning": "return",
    "caching": "cache",
    "including": "include",
    "excluding": "exclude",
    "specifying": "specify",
    "controlling": "control",
    "integrating": "integrate",
    "monitoring": "monitor",
    "securing": "secure",
    "working": "work",
    "dealing": "deal",
    "connecting": "connect",
    "querying": "query",
    "filtering": "filter",
    "formatting": "format",
    "translating": "translate",
    "generating": "generate",
    "documenting": "document",
}
HOWTO_VERBS = {
    "install",
    "configure",
    "use",
    "run",
    "deploy",
    "create",
    "write",
    "add",
    "set",
    "enable",
    "disable",
    "handle",
    "test",
    "migrate",
    "upgrade",
    "define",
    "customize",
    "customise",
    "build",
    "get",
    "make",
    "serve",
    "change",
    "start",
    "stop",
    "connect",
    "debug",
    "register",
    "specify",
    "extend",
    "integrate",
    "avoid",
    "limit",
    "pass",
    "send",
    "read",
    "load",
    "log",
    "call",
    "access",
    "control",
    "choose",
}


def heading_question(h: str, rng: random.Random) -> tuple[str, str]:
    """(question, kind) for a section heading."""
    h = re.sub(r"\s+", " ", h).strip().rstrip(":")
    words = h.split()
    first = words[0].lower() if words else ""
    rest = " ".join(words[1:])
    low_rest = rest[:1].lower() + rest[1:] if rest else ""
    if h.endswith("?"):
        return h, "question"
    if h.lower().startswith("how to "):
        return f"How do I {h[7:]}?", "howto"
    if first in GERUND_BASE and rest:
        return rng.choice(
            [
                f"How do I {GERUND_BASE[first]} {low_rest}?",
                f"How can I {GERUND_BASE[first]} {low_rest}?",
                f"{h.lower()}",
            ]
        ), "howto"
    if first in HOWTO_VERBS and rest:
        return rng.choice([f"How do I {h[:1].lower() + h[1:]}?", f"How can I {h[:1].lower() + h[1:]}?"]), "howto"
    return rng.choice(
        [f"What is {h}?", f"What does {h} do?", f"Tell me about {h}.", f"{h}", f"How does {h} work?", f"Explain {h}."]
    ), "term"


RESTATE = [
    "The following options control {t}:",
    "This section describes {t}.",
    "{T} can be configured as shown below.",
    "Here is how {t} works:",
    "See below for details about {t}.",
    "The settings below relate to {t}.",
    "You can change {t} as follows:",
]


def restating(term: str, rng: random.Random) -> str:
    t = term.strip()
    return rng.choice(RESTATE).format(t=t, T=t[:1].upper() + t[1:])


def render(
    blocks: list[str], evidence: set[int], raw: bool, heading: str | None, prefix: str | None, cap: int
) -> tuple[str, list[list[int]], list[list[int]]]:
    """Join blocks into a passage; return (text, evidence spans, unit spans)."""
    parts: list[str] = []
    spans: list[list[int]] = []
    units: list[list[int]] = []
    pos = 0

    def put(s: str, is_ev: bool) -> bool:
        nonlocal pos
        if not s.strip():
            return True
        sep = "\n\n" if parts else ""
        if pos + len(sep) + len(s) > cap and parts:
            return False
        start = pos + len(sep)
        parts.append(sep + s)
        pos = start + len(s)
        units.append([start, pos])
        if is_ev:
            spans.append([start, pos])
        return True

    if heading:
        put(heading, False)
    for i, b in enumerate(blocks):
        if prefix is not None and i == min(evidence, default=0):
            put(prefix, False)
        s = b.strip("\n") if raw else clean(b)
        if raw:
            s = "\n".join(x.rstrip() for x in s.splitlines())
            s = re.sub(r"^\s+", "", s)
        if not put(s, i in evidence):
            break
    return "".join(parts), spans, units


def _bare_default(block: str) -> bool:
    """A 'Default:' line whose value sits in the next block (a code block)."""
    return bool(re.fullmatch(r"[\s*:`]*", DEFAULT_LINE.sub("", clean(block), count=1)))


SIG_NAME = re.compile(r"([A-Za-z_][\w.]*)\s*(?:\(|$|\s)")


def directive_units(sec: Section) -> list[tuple[str, str, list[str]]]:
    """(kind, term, blocks) for option-like and signature directives inside a section."""
    out = []
    for bi, b in enumerate(sec.blocks):
        first = b.splitlines()[0]
        m = DIRECTIVE.match(first)
        if not m:
            continue
        name, arg, ind = m.group(2), m.group(3).strip(), len(m.group(1))
        if name not in OPTION_DIRECTIVES and name not in SIG_DIRECTIVES:
            continue
        body: list[str] = []
        rest_of_first = b.splitlines()[1:]
        if rest_of_first:
            body.append("\n".join(rest_of_first))
        for nb in sec.blocks[bi + 1 :]:
            lead = len(nb) - len(nb.lstrip(" "))
            if lead <= ind or (DIRECTIVE.match(nb.splitlines()[0]) and lead <= ind):
                break
            body.append(nb)
        body = [x for x in body if not re.fullmatch(r"(\s*:[\w-]+:.*\n?)+", x)]  # option fields only
        if not body:
            continue
        if name in SIG_DIRECTIVES:
            mm = SIG_NAME.match(arg)
            term = mm.group(1).split(".")[-1] if mm else arg
            out.append(("sig", term, [first, *body]))
        else:
            term = arg.split(",")[0].split()[0] if arg else ""
            if term:
                out.append(("option", term, [first, *body]))
    return out


def docs_groups(cfg: BuildConfig, store: Store, rng: random.Random) -> tuple[list[Group], list[Group], dict]:
    train: list[Group] = []
    val: list[Group] = []
    stats: dict[str, dict] = {}
    for libdir in sorted(p for p in cfg.sdists.iterdir() if p.is_dir()):
        lib = re.sub(r"-[\d.]+.*$", "", libdir.name).lower().replace("_", "-")
        is_val = lib in cfg.val_libs
        sections: list[Section] = []
        for f in sorted(libdir.rglob("*")):
            if f.suffix not in {".rst", ".md", ".txt"} or not f.is_file():
                continue
            rel = str(f.relative_to(libdir))
            if f.suffix == ".txt" and not rel.startswith(("doc", "docs")):
                continue
            if SKIP_PATH.search("/" + rel):
                continue
            try:
                text = f.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            sections.extend(split_sections(lib, rel, text))
        docs = [s for s in sections if not s.changelog]
        notes = [s for s in sections if s.changelog]
        note_blocks = [clean(b) for s in notes for b in s.blocks if is_prose(b)]
        per_file: dict[str, list[Section]] = defaultdict(list)
        for s in docs:
            per_file[s.path].append(s)
        n_neg = cfg.val_candidates - 1 if is_val else cfg.train_negatives
        counts: dict[str, int] = defaultdict(int)

        def passage(blocks, ev, heading, prefix=None):
            raw = rng.random() < 0.3
            return render(blocks, ev, raw, heading if rng.random() < 0.6 else None, prefix, cfg.max_passage_chars)

        def other_section_text(exclude: Section) -> str:
            for _ in range(10):
                o = rng.choice(docs)
                if o is not exclude:
                    t, _, _ = passage(o.blocks, set(), o.heading)
                    if t.strip():
                        return t
            return ""

        def changelog_hits(term: str) -> list[str]:
            if len(term) < 4:
                return []
            tl = term.lower()
            hits = [b for b in note_blocks if tl in b.lower()]
            rng.shuffle(hits)
            return hits[:2]

        def add_group(
            question: str, kind: str, pos: tuple[str, list[list[int]], list[list[int]]], hard: list[str], owner: Section
        ) -> None:
            text, spans, units = pos
            if not spans or not text.strip():
                return
            g = Group(question=question, source=f"docs:{lib}:{kind}")
            g.items.append([store.add(text), 1, spans])
            if is_val:
                g.units = units
            negs = [h for h in hard if h.strip() and h != text][: max(1, n_neg - 1)]
            while len(negs) < n_neg:
                t = other_section_text(owner)
                if not t:
                    break
                negs.append(t)
            for t in negs:
                g.items.append([store.add(t), 0, []])
            (val if is_val else train).append(g)
            counts[kind] += 1

        for _path, secs in per_file.items():
            usage_groups(secs, rng, passage, add_group, is_val)
            for sec in secs:
                instruction_group(sec, rng, passage, add_group)
            for si, sec in enumerate(secs):
                neighbours = [secs[j] for j in (si - 1, si + 1) if 0 <= j < len(secs)]
                # 1. heading -> its section (evidence: first prose block, and the next one if it ends with ':')
                prose = [i for i, b in enumerate(sec.blocks) if is_prose(b) and not DIRECTIVE.match(b.splitlines()[0])]
                for _rep in range(1 if is_val else 2):  # train: two renderings/questions per section
                    if not (prose and 2 <= len(sec.heading) <= 80):
                        break
                    ev = {prose[0]}
                    if clean(sec.blocks[prose[0]]).rstrip().endswith(":") and prose[0] + 1 < len(sec.blocks):
                        ev.add(prose[0] + 1)
                    q, kind = heading_question(sec.heading, rng)
                    prefix = restating(sec.heading.lower(), rng) if rng.random() < 0.4 else None
                    hard = [passage(n.blocks, set(), n.heading)[0] for n in neighbours]
                    hard += changelog_hits(sec.heading)
                    hard.append(
                        restating(sec.heading.lower(), rng)
                        + "\n\n"
                        + (passage(neighbours[0].blocks, set(), None)[0] if neighbours else "")
                    )
                    rng.shuffle(hard)
                    add_group(q, "section_" + kind, passage(sec.blocks, ev, sec.heading, prefix), hard, sec)
                # 2. Default: lines of a section (gunicorn/celery style settings)
                dflt = [i for i, b in enumerate(sec.blocks) if DEFAULT_LINE.match(b.splitlines()[0])]
                if dflt and len(sec.heading) <= 60:
                    term = sec.heading
                    q = rng.choice(
                        [
                            f"What is the default {term}?",
                            f"What is the default value of {term}?",
                            f"What is {term} set to by default?",
                            f"default {term}",
                        ]
                    )
                    prefix = restating(term, rng) if rng.random() < 0.5 else None
                    without = [b for i, b in enumerate(sec.blocks) if i not in dflt]
                    hard = [passage(without, set(), sec.heading)[0]] if without else []
                    hard += [passage(n.blocks, set(), n.heading)[0] for n in neighbours] + changelog_hits(term)
                    ev = {dflt[0]}
                    if _bare_default(sec.blocks[dflt[0]]) and dflt[0] + 1 < len(sec.blocks):
                        ev.add(dflt[0] + 1)
                    add_group(q, "default", passage(sec.blocks, ev, sec.heading, prefix), hard, sec)
                # 3. option / signature directives
                for kind, term, blocks in directive_units(sec):
                    body_prose = [i for i, b in enumerate(blocks) if i > 0 and is_prose(b)]
                    body_dflt = [
                        i for i, b in enumerate(blocks) if i > 0 and DEFAULT_LINE.match(b.strip().splitlines()[0])
                    ]
                    others = [b for b in sec.blocks if b not in blocks]
                    if kind == "option" and body_dflt:
                        q = rng.choice(
                            [
                                f"What is the default of {term}?",
                                f"What is the default value for {term}?",
                                f"What does {term} default to?",
                            ]
                        )
                        without = [b for i, b in enumerate(blocks) if i not in body_dflt]
                        hard = [
                            passage(without, set(), None)[0],
                            restating(term, rng) + "\n\n" + passage(others, set(), None)[0],
                            *changelog_hits(term),
                        ]
                        ev = {body_dflt[0]}
                        if _bare_default(blocks[body_dflt[0]]) and body_dflt[0] + 1 < len(blocks):
                            ev.add(body_dflt[0] + 1)
                        add_group(q, "option_default", passage(blocks + others[:2], ev, sec.heading, None), hard, sec)
                    if body_prose:
                        if kind == "option":
                            q = rng.choice(
                                [
                                    f"How do I set {term}?",
                                    f"What does {term} do?",
                                    f"What is {term} for?",
                                    f"What does the {term} option control?",
                                ]
                            )
                        else:
                            q = rng.choice(
                                [
                                    f"What does {term} do?",
                                    f"What is {term}?",
                                    f"How do I use {term}?",
                                    f"What is {term} used for?",
                                ]
                            )
                        ev = {0, body_prose[0]} if kind == "sig" else {body_prose[0]}
                        prefix = restating(term, rng) if rng.random() < 0.3 else None
                        hard = [passage(others, set(), sec.heading)[0]] if others else []
                        hard += [passage(n.blocks, set(), n.heading)[0] for n in neighbours] + changelog_hits(term)
                        add_group(q, kind, passage(blocks, ev, None, prefix), hard, sec)
        stats[lib] = {
            "sections": len(docs),
            "changelog_sections": len(notes),
            "split": "val" if is_val else "train",
            **counts,
        }
    return train, val, stats


# A page's usage sections: "How do I use/enable/install/configure <page title>?" is answered by the
# instructions there ("Use `tables` as the name of the extension.", the code a sentence leads
# into), not by the page's opening description, which each positive passage also holds. The same
# passage asked "What is <title>?" has the description as its answer, so the reader learns to
# tell the kinds of question apart instead of always preferring a defining sentence.
USAGE_HEADING = re.compile(
    r"(?i)^(?:basic\s+|simple\s+)?(?:usage|quick\s*start|getting\s+started|installation|installing|install|"
    r"set\s*up|setup|configuration|configuring|examples?|tutorial|(?:enabling|using|how\s+to\s+use)\b.*)$"
)


def usage_questions(title: str, heading: str) -> list[str]:
    t = re.sub(r"\s+", " ", title).strip().rstrip(":")
    h = heading.lower()
    if h.startswith("install"):
        return [f"How do I install {t}?", f"How can I install {t}?"]
    if h.startswith("configur"):
        return [f"How do I configure {t}?", f"How do I set up {t}?"]
    if re.search(r"(?i)extension|plugin|middleware|backend|transport|formatter", t):
        return [f"How do I enable {t}?", f"How do I use {t}?", f"How do I turn on {t}?"]
    return [f"How do I use {t}?", f"How do I get started with {t}?", f"How can I use {t}?"]


def _instruction_evidence(blocks: list[str]) -> set[int]:
    """The usage section's first prose block, and the code block it leads into."""
    prose = [i for i, b in enumerate(blocks) if is_prose(b) and not DIRECTIVE.match(b.splitlines()[0])]
    if not prose:
        return set()
    first = prose[0]
    ev = {first}
    if first + 1 < len(blocks) and not is_prose(blocks[first + 1]):
        ev.add(first + 1)
    return ev


def usage_groups(secs: list[Section], rng: random.Random, passage, add_group, is_val: bool) -> None:
    if not secs or secs[0].parents:
        return
    page = secs[0]
    intro = [b for b in page.blocks if is_prose(b) and not DIRECTIVE.match(b.splitlines()[0])][:1]
    if not intro or not (2 <= len(page.heading) <= 60):
        return
    for sec in secs[1:]:
        if not USAGE_HEADING.match(sec.heading.strip()):
            continue
        ev = _instruction_evidence(sec.blocks)
        if not ev:
            continue
        blocks = [*intro, sec.heading, *sec.blocks]
        shifted = {i + 2 for i in ev}
        questions = usage_questions(page.heading, sec.heading)
        for q in rng.sample(questions, 1 if is_val else min(2, len(questions))):
            # hard negatives: the description alone, and the page's other sections
            hard = [passage(intro, set(), page.heading)[0]]
            hard += [passage(o.blocks, set(), o.heading)[0] for o in secs[1:] if o is not sec][:2]
            add_group(q, "usage", passage(blocks, shifted, page.heading), hard, sec)
        if not is_val:
            what = rng.choice([f"What is {page.heading}?", f"What does {page.heading} do?"])
            add_group(what, "usage_contrast", passage(blocks, {0}, page.heading), [], page)


INSTRUCTION = re.compile(
    r"(?i)^\W*(?:(?:first|then|simply|just|now|instead|alternatively),?\s+)?(?:"
    r"(?:use|pass|set|call|add|run|install|create|enable|disable|put|write|register|import|define|specify|"
    r"give|wrap|subclass|configure|include|start|type|change|replace|make|provide|apply|load|select|choose|"
    r"mark|declare|attach|append|insert|override|implement|invoke|launch|open|point|prefix|place)\b"
    r"|to\s+\w+[^,.]{0,80},\s"
    r"|(?:you|one|we)\s+(?:can|could|should|must|may|need\s+to|have\s+to)\s+)"
)


def instruction_group(sec: Section, rng: random.Random, passage, add_group) -> None:
    """A section that first describes and then instructs: asked how, the instruction answers."""
    if USAGE_HEADING.match(sec.heading.strip()) or not (2 <= len(sec.heading) <= 60):
        return
    prose = [i for i, b in enumerate(sec.blocks) if is_prose(b) and not DIRECTIVE.match(b.splitlines()[0])]
    if len(prose) < 2:
        return
    said = next((i for i in prose[1:] if INSTRUCTION.match(clean(sec.blocks[i]))), None)
    if said is None:
        return
    ev = {said}
    if said + 1 < len(sec.blocks) and not is_prose(sec.blocks[said + 1]):
        ev.add(said + 1)
    q, kind = heading_question(sec.heading, rng)
    if kind != "howto":
        h = re.sub(r"\s+", " ", sec.heading).strip().rstrip(":")
        h = h[:1].lower() + h[1:] if not h[:2].isupper() else h
        q = rng.choice([f"How do I use {h}?", f"How can I use {h}?", f"How do I work with {h}?"])
    add_group(q, "instruction", passage(sec.blocks, ev, sec.heading), [], sec)


# ----------------------------------------------------------------------------- main


def write(path: Path, store: Store, groups: list[Group]) -> None:
    used = sorted({it[0] for g in groups for it in g.items})
    remap = {pid: n for n, pid in enumerate(used)}
    payload = {
        "passages": [store.texts[p] for p in used],
        "groups": [
            {
                "q": g.question,
                "src": g.source,
                "items": [[remap[i[0]], i[1], i[2]] for i in g.items],
                **({"units": g.units} if g.units else {}),
            }
            for g in groups
        ],
    }
    with lzma.open(path, "wt", encoding="utf-8") as fh:
        json.dump(payload, fh, ensure_ascii=False, separators=(",", ":"))


def main(cfg: BuildConfig) -> None:
    rng = random.Random(cfg.seed)
    store = Store()
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    qa_train, qa_val = qa_groups(cfg, store, rng)
    d_train, d_val, stats = docs_groups(cfg, store, rng)
    train = qa_train + d_train
    rng.shuffle(train)
    write(cfg.out_dir / "train.json.xz", store, train)
    write(cfg.out_dir / "val.json.xz", store, qa_val + d_val)
    summary = {
        "train_groups": len(train),
        "val_groups": len(qa_val) + len(d_val),
        "by_source_train": _count(train),
        "by_source_val": _count(qa_val + d_val),
        "libraries": stats,
    }
    (cfg.out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "libraries"}, indent=1))


def _count(groups: list[Group]) -> dict[str, int]:
    c: dict[str, int] = defaultdict(int)
    for g in groups:
        c[g.source.split(":")[0] + (":" + g.source.split(":")[-1] if g.source.startswith("docs") else "")] += 1
    return dict(c)


if __name__ == "__main__":
    main(BuildConfig())
