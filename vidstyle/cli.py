"""The `vidstyle` command line.

`vidstyle IN STYLE OUT` is the main job; it is the `run` subcommand, which is implied when the
first argument is not a subcommand name. Every user error ends as one line on stderr naming the
file and the problem, with a non-zero exit status.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from vidstyle import __version__, notices
from vidstyle.cli_common import (
    MAX_SIDE_HELP,
    PRESET_HELP,
    START_NUMBER_HELP,
    STEPS_HELP,
    WORK_SIDE_HELP,
    WORKING_SPACE_HELP,
    parse_rate,
    show_warnings,
    steps_overrides,
)
from vidstyle.cli_common import user_errors as _user_errors
from vidstyle.cli_meta import meta_app
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

user_errors = _user_errors("unfinished outputs were removed, finished ones kept")


def _sizes(max_side: int | None, work_side: int | None) -> dict:
    """--max-side N: the output's long side, and the network's unless --work-side says
    otherwise; neither given: the preset's working size, the source's size out."""
    return dict(output_max_side=max_side, max_side=work_side if work_side is not None else max_side)


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"vidstyle: error: {message}", err=True)
    raise typer.Exit(code)


def _overrides(**sections: dict) -> dict:
    return {
        name: {k: v for k, v in table.items() if v is not None} for name, table in sections.items()
    }


def _settings(preset, config, *, render=None, encode=None, adapt=None):
    from vidstyle.config import load_settings

    return load_settings(
        preset, config, _overrides(render=render or {}, encode=encode or {}, adapt=adapt or {})
    )


@app.command("run")
@user_errors
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
        "network, seams cross-faded (default 0 = auto: 4 on a GPU, 1 on the CPU).",
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

    settings = _settings(
        preset,
        config,
        render=dict(
            **_sizes(max_side, work_side),
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


@app.command("adapt")
@user_errors
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

    settings = _settings(
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


@app.command("batch")
@user_errors
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

    settings = _settings(
        preset,
        config,
        render=dict(**_sizes(max_side, work_side), temporal=temporal, device=device),
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


@app.command("eval")
@user_errors
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


@app.command("info")
@user_errors
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
    import vidstyle.cli_common as common

    args = list(sys.argv[1:] if argv is None else argv)
    common.DEBUG = "--debug" in args
    args = [a for a in args if a != "--debug"]
    notices.reset()  # a new command: it says its own warnings
    show_warnings()
    app(args=_with_default_command(args), prog_name="vidstyle")


__all__ = ["app", "main"]
