"""Entry point: wires the subcommands and turns expected errors into one line on stderr and a documented status.

Exit statuses: 0 ok; 2 bad input; 74 environment failure (disk full, read-only, I/O); 128 + N for signal N
(130 SIGINT, 143 SIGTERM, 129 SIGHUP); ``run`` also 1 (run failed) and 3 (out of memory). See :mod:`lorabench.errors`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from lorabench.cli.calibrate import calibrate_command
from lorabench.cli.catalog import catalog_command
from lorabench.cli.cost import cost_command
from lorabench.cli.data import data_command
from lorabench.cli.demo import demo_command
from lorabench.cli.estimate import estimate_command
from lorabench.cli.fit import fit_command
from lorabench.cli.infer import infer_command
from lorabench.cli.models import models_command
from lorabench.cli.report import report_command
from lorabench.cli.run import run_command
from lorabench.cli.serve import serve_command
from lorabench.cli.sweep import sweep_command
from lorabench.errors import EXIT_ENVIRONMENT, LorabenchError, is_environment_failure
from lorabench.interrupts import signals_handled

__all__ = ["app", "main"]

app = typer.Typer(
    name="lorabench",
    help="Predict, measure and price LoRA / QLoRA / DoRA / rsLoRA fine-tuning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},  # inherited by every subcommand
)


def _show_version(value: bool) -> None:
    if value:
        from lorabench import __version__

        typer.echo(f"lorabench {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Predict, measure and price LoRA / QLoRA / DoRA / rsLoRA fine-tuning."""


def _flags_without_metavar() -> None:
    """Show boolean flags as flags in help (``--json``), not as ``--json <bool>``.

    Typer's rich help prints every option's type, a flag's too; a flag takes no value, so its type column
    stays empty. A no-op where Typer's classes differ.
    """
    option_class: Any = getattr(getattr(typer, "core", None), "TyperOption", None)
    original = getattr(option_class, "display_type_rich", None)
    if option_class is None or original is None or getattr(original, "_lorabench", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        if getattr(self, "is_flag", False) and getattr(self, "metavar", None) is None:
            return None
        result: str | None = original(self, ctx)
        return result

    display_type_rich._lorabench = True  # type: ignore[attr-defined]
    option_class.display_type_rich = display_type_rich


app.command("demo")(demo_command)
app.command("estimate")(estimate_command)
app.command("fit")(fit_command)
app.command("models")(models_command)
app.command("run")(run_command)
app.command("sweep")(sweep_command)
app.command("cost")(cost_command)
app.command("data")(data_command)
app.command("catalog")(catalog_command)
app.command("calibrate")(calibrate_command)
app.command("report")(report_command)
app.command("infer")(infer_command)
app.command("serve")(serve_command)

EXIT_USAGE = 2


def _fail(message: str, status: int = EXIT_USAGE) -> int:
    first = " ".join(message.strip().split()) or "invalid input"
    try:
        sys.stderr.write(f"lorabench: error: {first}\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr itself is gone or full: the status still says it
        pass
    return status


def _environment_message(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else "cannot write the output: "
    return f"{where}{exc.strerror or exc} (free space, or write somewhere writable, and rerun)"


def _flush_stdout() -> None:
    """Flush stdout now, so a full or closed stream is an error here and not a traceback at interpreter exit."""
    try:
        sys.stdout.flush()
    except OSError as exc:
        _silence_stdout()
        if exc.filename is None:
            exc.filename = "standard output"
        raise


def _silence_stdout() -> None:
    # What is still buffered cannot be written; point the descriptor at /dev/null so the exit flush is quiet.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; expected errors print one line on stderr and return 2 (no traceback).

    Args:
        argv: Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns:
        The process exit status.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # bitsandbytes warns at import that an optional hub kernel is missing; it falls back to its own.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    args = list(sys.argv[1:] if argv is None else argv)
    _flags_without_metavar()
    try:
        with signals_handled():
            result = app(args=args, prog_name="lorabench", standalone_mode=False)
            _flush_stdout()
    except LorabenchError as exc:
        return _fail(str(exc), exc.exit_status)
    except OSError as exc:
        if not is_environment_failure(exc):
            raise
        _silence_stdout()
        return _fail(_environment_message(exc), EXIT_ENVIRONMENT)
    except (typer.Abort, KeyboardInterrupt):
        return _fail("interrupted by SIGINT", 130)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except Exception as exc:
        # typer raises click-style exceptions (its own vendored click in recent releases, click's in
        # older ones); both carry format_message(), and usage errors a ctx naming the command.
        if type(exc).__name__ == "NoArgsIsHelpError":  # help was already printed
            return 0
        format_message = getattr(exc, "format_message", None)
        if not callable(format_message):
            raise
        ctx = getattr(exc, "ctx", None)
        where = f"{ctx.command_path}: " if ctx is not None else ""
        return _fail(where + str(format_message()))
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
