"""The `vidstyle` app: its commands and sub-apps, `--version`/`--debug`, and the console entry
point, where `vidstyle IN STYLE OUT` means `vidstyle run IN STYLE OUT`.

Every user error ends as one line on stderr naming the file and the problem, with a non-zero
exit status (vidstyle.cli.common).
"""

from __future__ import annotations

import sys

import typer

from vidstyle import __version__, notices
from vidstyle.cli import common
from vidstyle.cli.adapt import adapt_command
from vidstyle.cli.batch import batch_command
from vidstyle.cli.common import show_warnings
from vidstyle.cli.evaluate import eval_command
from vidstyle.cli.info import info_command
from vidstyle.cli.meta import meta_app
from vidstyle.cli.run import run_command
from vidstyle.farm.cli import farm_app

app = typer.Typer(
    name="vidstyle",
    help=(
        "Stylize videos in the look of any image, without flicker.\n\n"
        "Main job:  vidstyle IN.mp4 STYLE.jpg OUT.mp4 [options]  (same as `vidstyle run ...`)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# In this order in `vidstyle --help`.
app.command("run")(run_command)
app.command("adapt")(adapt_command)
app.command("batch")(batch_command)
app.command("eval")(eval_command)
app.command("info")(info_command)

app.add_typer(farm_app, name="farm")
app.add_typer(meta_app, name="meta")


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"vidstyle {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=version_callback,
        is_eager=True,
        help="Show the version and exit.",
    ),
    debug: bool = typer.Option(
        False,
        "--debug",
        help="Print the full traceback of an error (accepted anywhere on the command line; "
        "without it an error is one line, its traceback saved to a log file).",
    ),
) -> None:
    """Stylize videos in the look of any image, without flicker."""


def _with_default_command(argv: list[str]) -> list[str]:
    """`vidstyle IN STYLE OUT [options]` means `vidstyle run IN STYLE OUT [options]`."""
    if not argv or argv[0] in ("--help", "-h", "--version"):
        return argv
    commands = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    return argv if argv[0] in commands else ["run", *argv]


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    common.DEBUG = "--debug" in args
    args = [a for a in args if a != "--debug"]
    notices.reset()  # a new command: it says its own warnings
    show_warnings()
    app(args=_with_default_command(args), prog_name="vidstyle")


__all__ = ["app", "main"]
