"""`vidstyle adapt STYLE --content ... -o MODEL`: adapt a style network once, to reuse."""

from __future__ import annotations

from pathlib import Path

import typer

from vidstyle.cli.common import (
    PRESET_HELP,
    STEPS_HELP,
    command_errors,
    command_settings,
    steps_overrides,
)


@command_errors
def adapt_command(
    style: Path = typer.Argument(..., help="Style image."),
    output: Path = typer.Option(..., "--output", "-o", help="Model file to write (.safetensors)."),
    content: list[Path] = typer.Option(
        ...,
        "--content",
        help="Footage to adapt on (video, image sequence, image or folder); repeatable.",
    ),
    preset: str = typer.Option(None, "--preset", "-p", help=PRESET_HELP),
    config: Path = typer.Option(None, "--config", "-c", help="TOML settings file."),
    max_side: int = typer.Option(
        None, "--work-side", "--max-side", help="Long side the model will work at."
    ),
    temporal: str = typer.Option(
        None, "--temporal", help="Train for warm, carry (= off), loss-only or off."
    ),
    steps: int = typer.Option(None, "--steps", min=0, help=STEPS_HELP),
    device: str = typer.Option(None, "--device", help="auto, cpu, cuda ..."),
    precision: str = typer.Option(None, "--precision", help="auto, fp32, bf16, fp16."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Train even if a cached model exists."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Adapt a style network once (to a style image and footage), to reuse with --model."""
    from vidstyle.jobs import adapt_model

    settings = command_settings(
        preset,
        config,
        render=dict(max_side=max_side, temporal=temporal, device=device, precision=precision),
        adapt=steps_overrides(steps),
    )
    adapted = adapt_model(
        style, list(content), settings, output=output, use_cache=not no_cache, progress=not quiet
    )
    how = "adapted" if adapted.trained else "taken from the cache"
    typer.echo(f"{output}: model {how} (works at {adapted.card.work_side} px)")


__all__ = ["adapt_command"]
