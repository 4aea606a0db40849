"""`vidstyle info [PATH]`: what vidstyle sees in a file or model; the encoders usable here."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from vidstyle.cli.common import command_errors


@command_errors
def info_command(
    path: Path = typer.Argument(
        None, help="A video, image sequence or model file (none: the meta-learned start)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    encoders: bool = typer.Option(False, "--encoders", help="List the video encoders usable here."),
) -> None:
    """Show what vidstyle sees in a file (streams, timing, colour, rotation) or a model; with no
    file, the card of the meta-learned start new styles are adapted from."""
    from vidstyle.jobs import describe

    if encoders:
        from vidstyle.io import available_encoders

        typer.echo("\n".join(available_encoders()))
        return
    data = describe(path)  # no path: the meta-learned start's card
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
    else:
        rows = _flatten(data)
        width = max(len(k) for k in rows)
        for key, value in rows.items():
            typer.echo(f"{key:<{width}}  {'-' if value == '' else value}")


def _flatten(data: dict, prefix: str = "") -> dict:
    """Nested cards (model and meta-start JSON) as `training.steps  242` rows."""
    rows: dict = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            rows |= _flatten(value, f"{prefix}{key}.")
        else:
            rows[f"{prefix}{key}"] = value
    return rows


__all__ = ["info_command"]
