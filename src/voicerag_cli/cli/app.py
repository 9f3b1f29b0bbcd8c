"""The `voicerag` Typer app: global options, command registration, error -> exit code mapping."""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.main

from voicerag_cli import __version__
from voicerag_cli.cli import ask_cmd, chat_cmd, config_cmd, eval_cmd, index_cmd, models_cmd, voices_cmd
from voicerag_cli.cli.context import STATE
from voicerag_cli.cli.options import Profile

if TYPE_CHECKING:
    from voicerag_cli.errors import StorageError

app = typer.Typer(
    name="voicerag",
    help="Answer spoken questions from your own documents, offline.",
    no_args_is_help=True,
    add_completion=False,  # scripts are shipped pre-generated in completions/
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"voicerag {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Config TOML file (default: the user config dir).", show_default=False),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Where indexes live (overrides paths.data_dir / VOICERAG_DATA_DIR).",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    profile: Profile = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    STATE.config_file = config
    STATE.data_dir = data_dir
    STATE.debug = debug or os.environ.get("VOICERAG_DEBUG", "") not in {"", "0"}
    STATE.profile = profile


app.command("index")(index_cmd.index)
app.command("ask")(ask_cmd.ask)
app.command("chat")(chat_cmd.chat)
app.command("eval")(eval_cmd.eval_command)
app.command("models")(models_cmd.models)
app.command("voices")(voices_cmd.voices)
app.add_typer(config_cmd.app, name="config")


COMPLETE_VAR = "_VOICERAG_COMPLETE"
COMPLETION_SHELLS = ("bash", "zsh", "fish")


def _prepare_completion() -> None:
    """Shell completion (the scripts in completions/ call back with _VOICERAG_COMPLETE set).

    The app is built with add_completion=False (no --install-completion option), which leaves
    Typer's completion classes unregistered; register them only when a shell asks. Typer spells
    the instructions `complete_bash`/`source_bash`; click's `bash_complete`/`bash_source` are
    accepted too.
    """
    instruction = os.environ.get(COMPLETE_VAR)
    if not instruction:
        return
    first, _, second = instruction.partition("_")
    if first in COMPLETION_SHELLS and second in {"source", "complete"}:
        os.environ[COMPLETE_VAR] = f"{second}_{first}"
    from typer.completion import completion_init

    completion_init()


def _usage_error_types() -> tuple[type[Exception], ...]:
    """Click's usage errors: Typer >= 0.22 raises its vendored copy of click's exceptions
    (subclasses of typer.TyperException), older Typer raises click's own."""
    found: list[type[Exception]] = []
    try:
        import click

        found.append(click.ClickException)
    except ImportError:  # click is no dependency of the vendoring Typer
        pass
    vendored = getattr(typer, "TyperException", None)
    if vendored is not None:
        found.append(vendored)
    return tuple(found)


def _command() -> typer.main.TyperGroup:
    """The click command tree, with flags' help shown without a `<bool>` type: a flag takes no value."""
    command = typer.main.get_command(app)
    assert isinstance(command, typer.main.TyperGroup)  # an app of several commands is a group
    stack = [command]
    while stack:
        current = stack.pop()
        for param in current.params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        current.get_help_option = _untyped_help(current.get_help_option)  # type: ignore[method-assign]
        stack.extend(getattr(current, "commands", {}).values())
    return command


def _untyped_help(make: Any) -> Any:
    """--help is created per context, outside `params`: strip its type when it is made."""

    def get_help_option(ctx: Any) -> Any:
        option = make(ctx)
        if option is not None and option.metavar is None:
            option.metavar = ""
        return option

    return get_help_option


# Warnings a user can do nothing about, as (category, message pattern, module pattern): numpy's
# floating-point warnings on odd input (a damaged file's 3e38 samples), raised from whichever of
# our modules did the arithmetic; our own messages say what went wrong. Every other warning
# (ours, and any a library starts to raise) still reaches stderr; deprecations stay hidden by
# Python's own default. pypdf's read warnings are filtered where a PDF is read (index.documents).
QUIET_WARNINGS: tuple[tuple[type[Warning], str, str], ...] = (
    (RuntimeWarning, r"(overflow|invalid value|divide by zero|underflow) encountered", ""),
)


def _quiet_libraries(argv: list[str] | None) -> None:
    """Filter QUIET_WARNINGS; --debug / VOICERAG_DEBUG keeps them (and C-library output,
    audio/io.quiet_stderr)."""
    import warnings

    args = sys.argv[1:] if argv is None else argv
    if "--debug" in args:
        os.environ["VOICERAG_DEBUG"] = "1"
    if os.environ.get("VOICERAG_DEBUG", "") not in {"", "0"}:
        return
    for category, message, module in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)


def _single_threaded_blas() -> None:
    """One OpenBLAS thread per product, unless the user chose otherwise (set before numpy loads:
    nothing at start-up imports it, tests/test_startup.py). On a small machine with other work on
    it, a multi-threaded product waits for a descheduled worker: embedding one question took
    520 ms instead of 12 ms, indexing 183 chunks 103 s instead of 13-16 s. The text embedder runs
    its batches in parallel threads instead (numpy_sentence_embedder.py)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: map every failure to a one-line message and an exit code."""
    from voicerag_cli.errors import ExitCode, VoiceragError

    _prepare_completion()
    _single_threaded_blas()
    _quiet_libraries(argv)
    try:
        # Without standalone mode, typer.Exit (and Ctrl-C, as Exit(130)) comes back as a return value.
        code = _command().main(args=argv, prog_name="voicerag", standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except _usage_error_types() as exc:
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            sys.stderr.write(f"Error: {exc}\n")
        sys.exit(getattr(exc, "exit_code", ExitCode.USAGE))
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("voicerag: interrupted\n")
        sys.exit(ExitCode.INTERRUPTED)
    except VoiceragError as exc:
        from voicerag_cli.cli.console import error_line

        if STATE.debug:
            traceback.print_exc()
        error_line(str(exc))
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        # Reader of our stdout went away (e.g. `| head`): not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(ExitCode.OK)
    except Exception as exc:  # a bug: keep the message short unless asked for details
        from voicerag_cli.cli.console import error_line

        if STATE.debug:
            traceback.print_exc()
        storage = _os_failure(exc)
        if storage is not None:  # the file system refused, where no command said what it was doing
            error_line(str(storage))
            sys.exit(storage.exit_code)
        error_line(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)")
        sys.exit(ExitCode.INTERNAL)
    if isinstance(code, int) and not isinstance(code, bool) and code != ExitCode.OK:
        if code == ExitCode.INTERRUPTED:
            sys.stderr.write("voicerag: interrupted\n")
        sys.exit(code)
    if argv is None and STATE.exit_when_done:  # the console script, not a caller's own process
        _exit_now()


def _os_failure(exc: BaseException) -> StorageError | None:
    """An OSError of the file system (no space, an I/O error, permission, read-only, a name too
    long) as a StorageError naming its path; None for anything else (a bug)."""
    from voicerag_cli.errors import DISK_ERRNOS, REFUSED_ERRNOS, StorageError

    if not isinstance(exc, OSError) or exc.errno not in DISK_ERRNOS | REFUSED_ERRNOS:
        return None
    where = exc.filename if exc.filename is not None else "a file"
    return StorageError(f"cannot access {where}: {exc.strerror or exc}")


def _exit_now() -> None:
    """End a finished command without the interpreter's teardown, which frees every model
    object one by one and runs a full garbage collection: 0.1-0.2 s after the answer is shown."""
    from voicerag_cli.errors import ExitCode

    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader went away: nothing more to say
        pass
    except OSError:
        os._exit(ExitCode.INTERNAL)
    os._exit(ExitCode.OK)


if __name__ == "__main__":
    main()
