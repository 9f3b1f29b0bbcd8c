"""The `voicerag` Typer app: global options, command registration, error -> exit code mapping."""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer

from voicerag_cli import __version__
from voicerag_cli.cli import ask_cmd, chat_cmd, config_cmd, eval_cmd, index_cmd, models_cmd
from voicerag_cli.cli.context import STATE

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
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    STATE.config_file = config
    STATE.data_dir = data_dir
    STATE.debug = debug or os.environ.get("VOICERAG_DEBUG", "") not in {"", "0"}


app.command("index")(index_cmd.index)
app.command("ask")(ask_cmd.ask)
app.command("chat")(chat_cmd.chat)
app.command("eval")(eval_cmd.eval_command)
app.command("models")(models_cmd.models)
app.add_typer(config_cmd.app, name="config")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: map every failure to a one-line message and an exit code."""
    import click

    from voicerag_cli.errors import ExitCode, VoiceragError

    try:
        app(args=argv, prog_name="voicerag", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
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
        error_line(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)")
        sys.exit(ExitCode.INTERNAL)


if __name__ == "__main__":
    main()
