"""`vidstyle eval IN OUT...`: flicker (warping error) and style/content distances."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from vidstyle.cli.common import command_errors


@command_errors
def eval_command(
    input: Path = typer.Argument(..., help="The source video."),
    outputs: list[Path] = typer.Argument(
        ...,
        help="One or more stylized versions of it "
        "(compared side by side with one flow computation).",
    ),
    style: Path = typer.Option(
        None,
        "--style",
        "-s",
        help="Style image: also report the Gram style distance and the content distance.",
    ),
    size: int = typer.Option(384, "--size", help="Long side for style/content distances."),
    every: int = typer.Option(1, "--every", help="Score style/content on every k-th frame."),
    flow_size: int = typer.Option(
        None,
        "--flow-size",
        help="Long side for the warping error (default: the smallest of the input and outputs).",
    ),
    keep_cuts: bool = typer.Option(
        False,
        "--keep-cuts",
        help="Count frame pairs across scene "
        "cuts in the warping error (Lai et al. do; default: skip).",
    ),
    json_path: Path = typer.Option(None, "--json", help="Also write the report as JSON here."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Measure flicker (warping error, Lai et al. 2018) and style transfer of rendered videos."""
    from vidstyle.metrics.report import evaluate, format_report

    names = [p.name if [q.name for q in outputs].count(p.name) == 1 else str(p) for p in outputs]
    report = evaluate(
        input,
        dict(zip(names, outputs, strict=True)),
        style,
        size=size,
        every=every,
        flow_size=flow_size,
        skip_cuts=not keep_cuts,
        progress=not quiet,
    )
    typer.echo(format_report(report))
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=2))


__all__ = ["eval_command"]
