"""The `vidstyle` command line: `vidstyle.cli.main` (the console script) and `vidstyle.cli.app`
(the typer app), one module per command group:

  root      the app: registers the commands below, --version, --debug, main() (the default
            `vidstyle IN STYLE OUT` form is `run`)
  run       `vidstyle run` (the main job)
  batch     `vidstyle batch`
  adapt     `vidstyle adapt`
  evaluate  `vidstyle eval`
  info      `vidstyle info`
  meta      `vidstyle meta ...` (the meta_app sub-app)
  common    what they all share (and `vidstyle farm ...`, vidstyle.farm.cli): the error wrapper,
            warnings on stderr, help texts, options -> settings

`app` and `main` are imported on first use, not here: the farm sub-app imports
vidstyle.cli.common, which must not import the app (which imports the farm sub-app).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vidstyle.cli.root import app, main


def __getattr__(name: str) -> Any:
    if name in ("app", "main"):
        from vidstyle.cli import root

        return getattr(root, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["app", "main"]
