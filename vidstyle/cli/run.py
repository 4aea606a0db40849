"""`vidstyle run IN STYLE OUT` (also plain `vidstyle IN STYLE OUT`): the main job."""

from __future__ import annotations

from pathlib import Path

import typer

from vidstyle.cli.common import (
    MAX_SIDE_HELP,
    PRESET_HELP,
    START_NUMBER_HELP,
    STEPS_HELP,
    WORK_SIDE_HELP,
    WORKING_SPACE_HELP,
    command_errors,
    command_settings,
    sizes,
    steps_overrides,
)
from vidstyle.rates import parse_rate


@command_errors
def run_command(
    input: Path = typer.Argument(..., help="Video file, or an image sequence (shot.%04d.png)."),
    style: Path = typer.Argument(..., help="Style image (jpg, png, ...)."),
    output: Path = typer.Argument(..., help="Output video (.mp4/.mov/.mkv) or image sequence."),
    preset: str = typer.Option(None, "--preset", "-p", help=PRESET_HELP),
    config: Path = typer.Option(None, "--config", "-c", help="TOML settings file (see configs/)."),
    model: Path = typer.Option(
        None,
        "--model",
        "-m",
        help="Use this adapted model (from `vidstyle adapt`); skip adaptation.",
    ),
    max_side: int = typer.Option(None, "--max-side", help=MAX_SIDE_HELP),
    work_side: int = typer.Option(None, "--work-side", help=WORK_SIDE_HELP),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        "-y",
        help="Replace OUT if it exists (default: refuse, like ffmpeg -n).",
    ),
    strength: float = typer.Option(None, "--strength", help="0 = original, 1 = fully stylized."),
    preserve_color: bool = typer.Option(
        None,
        "--preserve-color/--style-color",
        help="Keep the footage's colours; take texture and luminance from the style.",
    ),
    temporal: str = typer.Option(
        None,
        "--temporal",
        help="carry (default: each frame painted, the previous stylized frame carried along "
        "the optical flow, stroke contrast kept), warm (the network itself is warm-started from "
        "the warped previous frame), loss-only (frame-parallel), off (per-frame).",
    ),
    tile: int = typer.Option(
        None,
        "--tile",
        help="Process in overlapping tiles of this size (for 4K on small GPUs); 0 = whole frames.",
    ),
    lanes: int = typer.Option(
        None,
        "--lanes",
        help="Warm mode: chains run side by side on segments of the video, batched through the "
        "network, seams cross-faded (default 0 = auto: 1; more measured slower on one GPU).",
    ),
    device: str = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:1 ..."),
    precision: str = typer.Option(None, "--precision", help="auto, fp32, bf16, fp16."),
    working_space: str = typer.Option(None, "--working-space", help=WORKING_SPACE_HELP),
    codec: str = typer.Option(
        None,
        "--codec",
        help="auto (default: follows the output and the source: libx264 for 8-bit; x265 (.mp4, "
        ".mkv) or ProRes (.mov) at the source's depth; alpha kept in ProRes 4444 (.mov), FFV1 "
        "(.mkv), VP9 (.webm)), libx264, libx265, prores_ks, ffv1, h264_nvenc ... (see "
        "`vidstyle info --encoders`).",
    ),
    crf: int = typer.Option(None, "--crf", help="Constant rate factor (x264/x265 quality)."),
    start_number: int = typer.Option(None, "--start-number", help=START_NUMBER_HELP),
    start: float = typer.Option(None, "--start", help="Start time in seconds."),
    end: float = typer.Option(None, "--end", help="End time in seconds."),
    no_audio: bool = typer.Option(False, "--no-audio", help="Drop the audio streams."),
    rate: str = typer.Option(
        None, "--rate", help="Frame rate of an image-sequence input: 24, 25, 30000/1001 ..."
    ),
    content: list[Path] = typer.Option(
        None,
        "--content",
        help="Extra training footage for adaptation (video, image or folder); repeatable.",
    ),
    steps: int = typer.Option(None, "--steps", min=0, help=STEPS_HELP),
    no_cache: bool = typer.Option(False, "--no-cache", help="Adapt even if a cached model exists."),
    preview: bool = typer.Option(
        False, "--preview", help="Also write OUT.preview.jpg: input and output frames side by side."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Stylize one video (the main job): decode, adapt/load the style network, render, encode."""
    from vidstyle.jobs import RunOptions, run_one

    settings = command_settings(
        preset,
        config,
        render=dict(
            **sizes(max_side, work_side),
            strength=strength,
            preserve_color=preserve_color,
            temporal=temporal,
            tile=tile,
            lanes=lanes,
            device=device,
            precision=precision,
            working_space=working_space,
        ),
        encode=dict(codec=codec, crf=crf, audio=False if no_audio else None),
        adapt=steps_overrides(steps),
    )
    result = run_one(
        RunOptions(
            input=input,
            style=style,
            output=output,
            settings=settings,
            model=model,
            start=start,
            end=end,
            content=list(content or []),
            use_cache=not no_cache,
            preview=preview,
            progress=not quiet,
            rate=parse_rate(rate),
            overwrite=overwrite,
            start_number=start_number,
        )
    )
    typer.echo(result.summary())


__all__ = ["run_command"]
