"""What the main CLI and the farm sub-app share: how a command ends on an error, warnings on
stderr, the frame-rate parser, and help texts.

Its own module so that vidstyle.cli can import the farm sub-app and both import this.

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
from fractions import Fraction
from pathlib import Path

import typer

from vidstyle.errors import ConfigError, VidstyleError
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


#: How close a decimal must be to N x 1000/1001 to stand for it (23.98 is 0.004 away).
_NTSC_TOLERANCE = 0.005


def parse_rate(text: str | None, option: str = "--rate") -> Fraction | None:
    """'24', '23.976', '30000/1001' -> an exact Fraction. Decimals that round an NTSC rate
    (N x 1000/1001: 23.976, 23.98, 29.97, 47.952, 59.94, 119.88) become that exact fraction,
    so every command times frames the same way."""
    if text is None:
        return None
    text = str(text).strip()
    try:
        rate = Fraction(text)
    except (ValueError, ZeroDivisionError):
        what = f"{option} must be a number like 24, 23.976 or 30000/1001, not {text!r}"
        raise ConfigError(what) from None
    if rate <= 0:
        raise ConfigError(f"{option} must be positive, not {text!r}")
    if "." in text:
        nominal = round(float(rate) * 1.001)
        ntsc = Fraction(nominal * 1000, 1001)
        if abs(float(rate - ntsc)) < _NTSC_TOLERANCE and abs(float(rate) - nominal) > 0.01:
            return ntsc
        return rate.limit_denominator(1001)
    return rate
