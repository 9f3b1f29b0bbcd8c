"""Command line of the speech-embedder pipeline (run from the repository root with `src` on the
path): each subcommand turns its options into the step's dataclass config and runs it.

    python -m training.speech pack --out .carry --shared-text ../shared/data/text ...   # here
    python -m training.speech split --folder .carry --out .parts                      # here
    python -m training.speech receive --part PART --store /root/carry                 # there, per call
    python -m training.speech render --carry C --work W --clips 150000                 # there
    python -m training.speech train --carry C --work W --out OUT/head.safetensors      # there
    python -m training.speech merge --head H --out H1                                  # here
    python -m training.speech soup --head A --weight 0.5 --head B --weight 0.5 --out C  # here

The GPU machine's limits live here, as the defaults of the options that depend on them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import fields
from pathlib import Path

# The lending machine returns files of at most 16 MiB, and one call carries at most 64 MiB
# with the working tree: a head comes back in parts of 15 MiB, a carry goes in parts of 22 MiB.
RETURN_PART_BYTES = 15 * 2**20
CARRY_PART_BYTES = 22 * 2**20


def _copies(values: list[str]) -> dict[str, int]:
    out = {}
    for value in values:
        name, _, count = value.partition("=")
        out[name] = int(count)
    return out


def add_train_options(p: argparse.ArgumentParser) -> None:
    from training.speech.train import StudentConfig, TrainConfig

    p.add_argument("--carry", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--init", type=Path)
    p.add_argument("--baseline-head", type=Path)
    p.add_argument("--extra-work", type=Path, action="append", default=[])
    p.add_argument("--real-hours", type=float, help="recorded human speech: whole speakers up to these hours")
    p.add_argument("--part-bytes", type=int, default=RETURN_PART_BYTES)
    skip = {"carry", "work", "out", "init", "baseline_head", "extra_work", "real_hours", "part_bytes", "student"}
    for config in (TrainConfig, StudentConfig):
        for f in fields(config):
            if f.name in skip:
                continue
            flag = "--" + f.name.replace("_", "-")
            default = f.default
            if isinstance(default, bool):
                p.add_argument(flag, action="store_true")
            else:
                p.add_argument(flag, type=type(default), default=default)


def train_config(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from training.speech.train import StudentConfig, TrainConfig

    student = StudentConfig(**{f.name: getattr(args, f.name) for f in fields(StudentConfig)})
    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if f.name != "student"}
    values["extra_work"] = tuple(values["extra_work"])
    return TrainConfig(student=student, **values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.speech", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="the carry folder (here)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--shared-text", type=Path, required=True, help="../shared/data/text")
    p.add_argument("--questions", type=int, default=180_000)
    p.add_argument("--sentences", type=int, default=120_000)
    p.add_argument("--docs", type=Path, action="append", default=[], help="folder of unpacked training-list sdists")
    p.add_argument("--espeak", type=Path, help="the espeakng-loader wheel, or an installed espeak-ng's library folder")
    p.add_argument("--speech-corpus", type=Path, action="append", default=[], help="../shared/data/speech/<corpus>")
    p.add_argument("--neural-voices", type=Path, help="a folder rendered by `neural-voices`")
    p.add_argument("--vocabulary", type=Path, action="append", default=[],
                   help="a texts.jsonl.gz whose words the teacher must know (a neural-voice plan)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    n = sub.add_parser("neural-voices", help="render training texts with Kokoro into a folder (here, slow)")
    n.add_argument("--texts", type=Path, required=True, help="a texts.jsonl.gz (its held-out rows are skipped)")
    n.add_argument("--folder", type=Path, required=True)
    n.add_argument("--clips", type=int, required=True)
    n.add_argument("--seed", type=int, default=0)
    n.add_argument("--threads", type=int, default=1)
    a = sub.add_parser("archive", help="a neural-voice folder as recordings/neural_voices.tar of a carry")
    a.add_argument("--folder", type=Path, required=True)
    a.add_argument("--carry", type=Path, required=True)
    s = sub.add_parser("split", help="a folder as parts for several device calls (here)")
    s.add_argument("--folder", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--part-bytes", type=int, default=CARRY_PART_BYTES)
    r = sub.add_parser("receive", help="one carried part into the store; the folder once all are there")
    r.add_argument("--part", type=Path, required=True)
    r.add_argument("--store", type=Path, required=True)
    for name, help_text in (("render", "render and featurize (there)"), ("render-train", "render, then train")):
        rp = sub.add_parser(name, help=help_text)
        rp.add_argument("--clips", type=int, default=150_000)
        rp.add_argument("--dev", type=int, default=2_000)
        rp.add_argument("--question-share", type=float, default=0.45)
        rp.add_argument("--docs-share", type=float, default=0.30)
        rp.add_argument(
            "--copies", action="append", default=[], help="NAME=N: each clip of recordings/NAME.tar N times"
        )
        rp.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
        rp.add_argument("--render-seed", type=int, default=0)
        rp.add_argument("--keep-mel", action="store_true")
        if name == "render":
            rp.add_argument("--carry", type=Path, required=True)
            rp.add_argument("--work", type=Path, required=True)
        else:
            add_train_options(rp)
            rp.add_argument("--budget-minutes", type=float, default=0, help="train until this long after the start")
    add_train_options(sub.add_parser("train", help="distil a student on rendered features (there)"))
    m = sub.add_parser("merge", help="a head saved in parts as one file (here)")
    m.add_argument("--head", type=Path, required=True)
    m.add_argument("--out", type=Path, required=True)
    so = sub.add_parser("soup", help="the weighted average of heads of one architecture (here)")
    so.add_argument("--head", type=Path, action="append", required=True)
    so.add_argument("--weight", type=float, action="append", required=True)
    so.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    if args.command == "pack":
        from training.speech.pack import PackConfig, pack

        pack(PackConfig(out=args.out, shared_text=args.shared_text, questions=args.questions,
                        sentences=args.sentences, docs=tuple(args.docs), espeak=args.espeak,
                        speech_corpora=tuple(args.speech_corpus), neural_voices=args.neural_voices,
                        vocabulary=tuple(args.vocabulary), seed=args.seed))  # fmt: skip
    elif args.command == "neural-voices":
        from training.speech.neural_voices import NeuralVoiceConfig, render_folder
        from training.speech.texts import read_texts

        rows = [r for r in read_texts(args.texts) if not r["held_out"]]
        render_folder(NeuralVoiceConfig(args.folder, args.clips, args.seed, args.threads), rows)
    elif args.command == "archive":
        from training.speech.neural_voices import archive
        from training.speech.render import RECORDINGS_DIR

        (args.carry / RECORDINGS_DIR).mkdir(exist_ok=True)
        print(f"{len(archive(args.folder, args.carry / RECORDINGS_DIR / 'neural_voices.tar'))} clips archived")
    elif args.command == "split":
        from training.speech.transfer import split

        for folder in split(args.folder, args.out, args.part_bytes):
            size = sum(f.stat().st_size for f in folder.iterdir())
            print(f"{folder}: {size / 2**20:.1f} MiB")
    elif args.command == "receive":
        from training.speech.transfer import receive

        print(receive(args.part, args.store).describe(), flush=True)
    elif args.command in ("render", "render-train"):
        from training.speech.render import RenderConfig, render

        started = time.time()
        cfg = RenderConfig(carry=args.carry, work=args.work, clips=args.clips, dev=args.dev,
                           question_share=args.question_share, docs_share=args.docs_share,
                           copies=_copies(args.copies), workers=args.workers, seed=args.render_seed,
                           keep_mel=args.keep_mel, save=args.command == "render")  # fmt: skip
        data = render(cfg)
        if args.command == "render-train":
            from dataclasses import replace

            from training.speech.train import train

            config = train_config(args)
            if args.budget_minutes:
                config = replace(config, minutes=max(1.0, args.budget_minutes - (time.time() - started) / 60))
            train(config, data)
    elif args.command == "train":
        from training.speech.train import train

        train(train_config(args))
    elif args.command == "soup":
        from training.speech.export import soup

        soup(args.head, args.weight, args.out)
    elif args.command == "merge":
        from training.speech.export import merge

        merge(args.head, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
