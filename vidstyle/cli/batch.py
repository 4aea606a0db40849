"""`vidstyle batch IN_DIR STYLE OUT_DIR`: every video in a folder, one adaptation for all."""

from __future__ import annotations

from pathlib import Path

import typer

from vidstyle.cli.common import PRESET_HELP, command_errors, command_settings, sizes


@command_errors
def batch_command(
    input_dir: Path = typer.Argument(..., help="Folder of videos."),
    style: Path = typer.Argument(..., help="Style image."),
    output_dir: Path = typer.Argument(..., help="Folder for the results (created if missing)."),
    preset: str = typer.Option(None, "--preset", "-p", help=PRESET_HELP),
    config: Path = typer.Option(None, "--config", "-c", help="TOML settings file."),
    model: Path = typer.Option(None, "--model", "-m", help="Use this adapted model for all."),
    max_side: int = typer.Option(
        None, "--max-side", help="Long side of the outputs (default: each source's size)."
    ),
    work_side: int = typer.Option(
        None, "--work-side", help="Long side the network paints at (default: the preset's)."
    ),
    temporal: str = typer.Option(None, "--temporal", help="warm, carry, loss-only or off."),
    device: str = typer.Option(None, "--device", help="auto, cpu, cuda ..."),
    codec: str = typer.Option(
        None, "--codec", help="Output codec (default auto: follows the output and the source)."
    ),
    suffix: str = typer.Option(".mp4", "--suffix", help="Output container extension."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo outputs that already exist."),
    report: Path = typer.Option(
        None, "--report", help="JSON report path (default OUTPUT_DIR/vidstyle-report.json)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Stylize every video in a folder with one style: one adaptation for the whole batch,
    finished outputs skipped, bad files reported and passed over."""
    from vidstyle.jobs import run_batch

    settings = command_settings(
        preset,
        config,
        render=dict(**sizes(max_side, work_side), temporal=temporal, device=device),
        encode=dict(codec=codec),
    )
    summary = run_batch(
        input_dir,
        style,
        output_dir,
        settings,
        model=model,
        suffix=suffix,
        overwrite=overwrite,
        report_path=report,
        progress=not quiet,
    )
    typer.echo(summary.table())
    if summary.failed:
        raise typer.Exit(1)


__all__ = ["batch_command"]
