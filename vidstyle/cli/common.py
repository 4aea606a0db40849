"""What every command shares (the main app's, `vidstyle meta` and the farm sub-app's): how a
command ends on an error, warnings on stderr, help texts, and how options become settings.

Importing it does not import the app (vidstyle.cli.root), so the farm sub-app (vidstyle.farm.cli)
can import this while the app imports the farm sub-app.

Every failure is one line on stderr, `vidstyle: error: FILE: what went wrong`, and a non-zero
exit status: user errors (VidstyleError) as they are; anything unexpected (a bug, an odd
file, the system) with where its full traceback was written (a log file under the cache
folder); `--debug` anywhere on the command line (or VIDSTYLE_DEBUG=1) prints the traceback too.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import typer

from vidstyle.errors import VidstyleError
from vidstyle.notices import unexpected_line

PRESET_HELP = "Settings preset from configs/: draft (CPU-friendly), balanced, best (GPU)."
QUIET_HELP = "No progress bars (default: shown when stderr is a terminal)."
MAX_SIDE_HELP = (
    "Long side of the output in pixels, for a smaller deliverable (the network works at this "
    "size too); default: the source's size."
)
WORK_SIDE_HELP = (
    "Long side the network paints at (default: the preset's: 384 draft, 512 balanced, 0 = "
    "source size); the result is scaled to the output size."
)
WORKING_SPACE_HELP = (
    "auto (default): HDR (PQ/HLG) and scene-linear EXR are stylized in a display-referred working "
    "space, highlights rolled off and restored after, invertibly; off: code values as they are."
)
START_NUMBER_HELP = (
    "Image-sequence output: number of the source's first frame (default: the input sequence's "
    "own numbers, e.g. 1001; 1 for a video input)."
)
STEPS_HELP = (
    "Adaptation steps (default: the preset's for this device: a few dozen on a CPU from the "
    "meta-learned start). 0 = the start's predicted network as is, instantly."
)


def steps_overrides(steps: int | None) -> dict:
    """--steps N: the step count on every device, from whichever start the preset uses."""
    if steps is None:
        return {}
    return {"steps": steps, "cpu_steps": steps, **({"random_steps": steps} if steps > 0 else {})}


#: --debug: print tracebacks (set by vidstyle.cli.main; also VIDSTYLE_DEBUG=1)
DEBUG = False


def debugging() -> bool:
    return DEBUG or os.environ.get("VIDSTYLE_DEBUG", "") not in ("", "0")


def print_error(message: str) -> None:
    print(f"vidstyle: error: {message}", file=sys.stderr)


class _WarningLines(logging.Handler):
    """`vidstyle: warning: ...` on whatever sys.stderr is when the warning is given."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(f"vidstyle: warning: {record.getMessage()}", file=sys.stderr)
        except Exception:  # never let a warning end the job
            self.handleError(record)


def show_warnings() -> None:
    """Route vidstyle's warnings (vidstyle.notices) to stderr, once per process."""
    logger = logging.getLogger("vidstyle")
    if not any(isinstance(h, _WarningLines) for h in logger.handlers):
        logger.addHandler(_WarningLines())
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _subject(args: tuple, kwargs: dict) -> Path | None:
    """The file a command works on (its first path argument), for the error line."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, Path):
            return value
    return None


def user_errors(interrupted: str) -> Callable[[Callable], Callable]:
    """A VidstyleError becomes one line on stderr and its exit status; any other exception one
    line naming the file and where its traceback was saved, exit status 1; Ctrl-C becomes 130
    with `interrupted` said (what the interruption left behind)."""

    def decorate(command: Callable) -> Callable:
        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            try:
                return command(*args, **kwargs)
            except VidstyleError as exc:
                if debugging():
                    traceback.print_exc()
                print_error(str(exc))
                raise typer.Exit(exc.exit_code) from None
            except KeyboardInterrupt:
                print_error(f"interrupted; {interrupted}")
                raise typer.Exit(130) from None
            except (typer.Exit, typer.Abort, SystemExit):
                raise
            except Exception as exc:
                if debugging():
                    traceback.print_exc()
                where = _subject(args, kwargs)
                print_error(unexpected_line(exc, where, hint=not debugging()))
                raise typer.Exit(1) from None

        return wrapper

    return decorate


#: How the main app's commands (run, adapt, batch, eval, info) end on an error.
command_errors = user_errors("unfinished outputs were removed, finished ones kept")


def sizes(max_side: int | None, work_side: int | None) -> dict:
    """--max-side N: the output's long side, and the network's unless --work-side says
    otherwise; neither given: the preset's working size, the source's size out."""
    return dict(output_max_side=max_side, max_side=work_side if work_side is not None else max_side)


def _overrides(**sections: dict) -> dict:
    return {
        name: {k: v for k, v in table.items() if v is not None} for name, table in sections.items()
    }


def command_settings(preset, config, *, render=None, encode=None, adapt=None):
    """The preset and config file, with the options the user gave (None: not given) on top."""
    from vidstyle.config import load_settings

    return load_settings(
        preset, config, _overrides(render=render or {}, encode=encode or {}, adapt=adapt or {})
    )
