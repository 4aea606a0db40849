"""What the main CLI and the farm sub-app share: how a user error ends a command, and help texts.

Its own module so that vidstyle.cli can import the farm sub-app and both import this.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

import typer

from vidstyle.errors import VidstyleError

PRESET_HELP = "Settings preset from configs/: draft (CPU-friendly), balanced, best (GPU)."
QUIET_HELP = "No progress bars (default: shown when stderr is a terminal)."


def print_error(message: str) -> None:
    print(f"vidstyle: error: {message}", file=sys.stderr)


def user_errors(interrupted: str) -> Callable[[Callable], Callable]:
    """A VidstyleError becomes one line on stderr and its exit status; Ctrl-C becomes 130 with
    `interrupted` said (what the interruption left behind)."""

    def decorate(command: Callable) -> Callable:
        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            try:
                return command(*args, **kwargs)
            except VidstyleError as exc:
                print_error(str(exc))
                raise typer.Exit(exc.exit_code) from None
            except KeyboardInterrupt:
                print_error(f"interrupted; {interrupted}")
                raise typer.Exit(130) from None

        return wrapper

    return decorate
