"""`voicerag eval`: spoken-question benchmark evaluation (retrieval, ASR and answer metrics)."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from voicerag_cli.cli.console import err, out, print_json
from voicerag_cli.cli.context import STATE
from voicerag_cli.cli.options import Profile
from voicerag_cli.errors import InputError, ModelError

EVAL_EXTRA_HINT = "pip install 'voicerag[eval]' (matplotlib)"


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def eval_command(
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="rgb-en, rgb-zh, hotpot, cmrc2018 or jsonl.")],
    data: Annotated[Path, typer.Option("--data", help="The dataset file.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Run folder: results.jsonl, summary.json, plot.png.")],
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="Evaluate the first N questions.")] = None,
    modes: Annotated[
        str, typer.Option("--modes", help="Comma-separated: none, asr, e2e, oracle.")
    ] = "none,asr,e2e,oracle",
    corpus: Annotated[
        str, typer.Option("--corpus", help="per-question (each question's own candidates) or pooled (all passages).")
    ] = "per-question",
    k: Annotated[int | None, typer.Option("-k", help="Passages given to the generator (ask.k).")] = None,
    rounds: Annotated[int, typer.Option("--rounds", help="2 adds the seed's second retrieval round.")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Seed for voice/rate assignment.")] = 0,
    voices: Annotated[
        str | None,
        typer.Option(
            "--voices",
            help="Voices for synthesized questions: espeak-ng names (en-us) and/or Kokoro styles or blends "
            "(jm_kumo, jf_alpha:0.5+jm_kumo:0.5); default en-us,en-gb for English, jm_kumo,jf_gongitsune for Chinese.",
        ),
    ] = None,
    rates: Annotated[str, typer.Option("--rates", help="TTS rates in words/minute.")] = "150,175",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Discard results already in --out.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print summary.json to stdout instead of the table.")] = False,
    profile: Profile = None,
) -> None:
    """Evaluate retrieval, ASR and answers on spoken benchmark questions (resumable; table, JSON and plot)."""
    from voicerag_cli.eval.runner import CORPORA, MODES

    settings = STATE.settings({"ask.k": k}, profile=profile)
    mode_list = _csv(modes)
    unknown = [m for m in mode_list if m not in MODES]
    if unknown or not mode_list:
        raise typer.BadParameter(f"unknown mode(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(MODES)}")
    if corpus not in CORPORA:
        raise typer.BadParameter(f"--corpus must be one of {', '.join(CORPORA)}")
    if "asr" in mode_list and importlib.util.find_spec("jiwer") is None:
        raise ModelError(
            "eval mode asr scores transcripts with jiwer, which is not installed: pip install 'voicerag[eval]'"
        )
    if rounds not in (1, 2):
        raise typer.BadParameter("--rounds must be 1 or 2")
    if limit is not None and limit <= 0:
        raise typer.BadParameter("--limit must be positive")
    try:
        rate_list = [int(r) for r in _csv(rates)]
    except ValueError as exc:
        raise typer.BadParameter(f"--rates must be integers: {rates}") from exc

    from voicerag_cli.eval.datasets import load_dataset
    from voicerag_cli.eval.report import markdown_table, rich_tables, write_plot, write_summary
    from voicerag_cli.eval.runner import Corpora, EvalConfig, Evaluator, prepare_out_dir, run
    from voicerag_cli.eval.speech import DEFAULT_VOICES, QuestionAudio, voice_plan
    from voicerag_cli.eval.summary import aggregate, running_means
    from voicerag_cli.paths import cache_dir

    items = load_dataset(dataset, data, limit)
    language = items[0].language
    voice_list = _csv(voices) if voices else DEFAULT_VOICES.get(language, DEFAULT_VOICES["en"])
    registry = STATE.registry()
    config = EvalConfig(
        dataset=dataset,
        data=str(data.resolve()),
        modes=mode_list,
        corpus=corpus,
        k=settings.ask.k,
        rounds=rounds,
        seed=seed,
        voices=voice_list,
        rates=rate_list,
        models={
            role: registry.backend_name(role)
            for role in ("text_embedder", "speech_embedder", "asr", "generator", "tts")
        },
    )
    done = prepare_out_dir(out_dir, config, overwrite)
    question_audio = QuestionAudio(registry, cache_dir(settings.paths.cache_dir) / "eval-questions")
    evaluator = Evaluator(
        registry,
        config,
        Corpora(registry, items, corpus, settings.index.hnsw_m, settings.index.hnsw_ef_construction),
        question_audio,
        voice_plan([item.qid for item in items], voice_list, rate_list, seed),
    )
    active = evaluator.check_modes()
    for mode, reason in evaluator.skipped.items():
        err.print(f"[yellow]skipping mode {mode}:[/] {reason}", markup=True, highlight=False)
    if not active:
        raise InputError("no mode can run with the configured backends")

    from voicerag_cli.cli.progress import make_progress

    started = time.perf_counter()
    finished: list[dict] = []
    todo = sum(1 for item in items if item.qid not in done)
    with make_progress() as progress:
        task = progress.add_task("eval", total=todo, status="")

        def on_result(row: dict) -> None:
            finished.append(row)
            progress.update(task, advance=1, status=running_means(finished, active))

        rows = run(evaluator, items, out_dir, done, active, on_result)
    seconds = time.perf_counter() - started

    summary = aggregate(rows, active)
    title = f"voicerag eval · {dataset} · {len(rows)} questions · corpus {corpus} · k={settings.ask.k}"
    payload = {
        "title": title,
        "config": config.fingerprint(),
        "questions": len(rows),
        "modes": summary,
        "skipped_modes": evaluator.skipped,
        "seconds": round(seconds, 1),
        "resumed_from": len(done & {item.qid for item in items}),
    }
    write_summary(out_dir / "summary.json", payload)
    written = ["summary.json", "plot.png", "table.md", "results.jsonl"]
    try:
        write_plot(out_dir / "plot.png", summary, evaluator.ks, title)
    except ImportError:  # matplotlib is the one heavy eval dependency: the `eval` extra
        written.remove("plot.png")
        # escaped: rich would read "[eval]" as markup and print pip install 'voicerag'
        err.print(f"[yellow]note:[/] no plot.png: {escape(EVAL_EXTRA_HINT)} for the plot")
    (out_dir / "table.md").write_text(markdown_table(summary) + "\n", encoding="utf-8")
    if as_json:
        from voicerag_cli.eval.report import json_safe

        print_json(json_safe(payload))
        return
    for table in rich_tables(summary, title, out.width):
        out.print(table)
    err.print(f"[dim]{escape(str(out_dir))}/{', '.join(written)} · {seconds:.0f} s[/]")
