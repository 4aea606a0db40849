"""`vidstyle farm ...`: plan a job, run its tasks by hand or from a farm manager, or on Ray.

The main CLI (vidstyle.cli.root) registers this sub-app with `app.add_typer(farm_app,
name="farm")`. Both use vidstyle.cli.common for error handling and help texts, and
vidstyle.rates for --rate.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import typer

from vidstyle.cli.common import (
    MAX_SIDE_HELP,
    PRESET_HELP,
    QUIET_HELP,
    START_NUMBER_HELP,
    WORK_SIDE_HELP,
    WORKING_SPACE_HELP,
    command_settings,
    sizes,
    user_errors,
)
from vidstyle.errors import ConfigError
from vidstyle.rates import parse_rate

farm_app = typer.Typer(
    name="farm",
    help=(
        "Render farms and clusters: plan a job of frame-range tasks, run them by hand, from a "
        "farm manager (OpenCue, Deadline, Tractor, Flamenco) or on Ray. See docs/farm.md."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_user_errors = user_errors("finished chunks are kept")


def _progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def _load(job_file: Path):
    from vidstyle.farm.plan import Job

    return Job.load(job_file)


@farm_app.command("plan")
@_user_errors
def plan_command(
    input: Path = typer.Argument(
        ..., help="Video file, or an image sequence (shot.%04d.exr, 'frames/*.png') with --rate."
    ),
    style: Path = typer.Argument(..., help="Style image."),
    output: Path = typer.Argument(..., help="Final video (.mp4/.mov/.mkv) or image sequence."),
    job_file: Path = typer.Option(Path("job.json"), "--output", "-o", help="Job file to write."),
    chunk: int = typer.Option(40, "--chunk", "-n", help="Frames per chunk task."),
    overlap: int | None = typer.Option(
        None,
        "--overlap",
        "-k",
        help="Warm-up frames each chunk runs before its range [default: until the chain's start "
        "has faded to a quarter: 23 for carry, 8 for warm; at most half a chunk (20 of 40)].",
    ),
    chunk_format: str = typer.Option(
        "mkv",
        "--chunk-format",
        help="Chunk intermediates: mkv (lossless FFV1), png or exr (numbered image sequences).",
    ),
    seam: str = typer.Option(
        "blend",
        "--seam",
        help="blend: cross-fade the overlap frames across seams (default); cut: just join.",
    ),
    snap_cuts: bool = typer.Option(
        True,
        "--snap-cuts/--no-snap-cuts",
        help="Move chunk boundaries (by up to a quarter chunk) onto nearby hard cuts.",
    ),
    rate: str = typer.Option(None, "--rate", help="Frame rate of an image-sequence input."),
    preset: str = typer.Option(None, "--preset", "-p", help=PRESET_HELP),
    config: Path = typer.Option(None, "--config", "-c", help="TOML settings file."),
    model: Path = typer.Option(
        None, "--model", "-m", help="Use this adapted model (no adapt task)."
    ),
    max_side: int = typer.Option(None, "--max-side", help=MAX_SIDE_HELP),
    work_side: int = typer.Option(None, "--work-side", help=WORK_SIDE_HELP),
    strength: float = typer.Option(None, "--strength", help="0 = original, 1 = fully stylized."),
    temporal: str = typer.Option(None, "--temporal", help="warm, loss-only or off."),
    device: str = typer.Option(None, "--device", help="auto, cpu, cuda ... (on the farm nodes)."),
    precision: str = typer.Option(None, "--precision", help="auto, fp32, bf16, fp16."),
    codec: str = typer.Option(
        None, "--codec", help="Codec of the final output (default auto: follows it and the source)."
    ),
    crf: int = typer.Option(None, "--crf", help="Constant rate factor of the final output."),
    no_audio: bool = typer.Option(False, "--no-audio", help="Drop the audio streams."),
    start_number: int = typer.Option(None, "--start-number", help=START_NUMBER_HELP),
    working_space: str = typer.Option(None, "--working-space", help=WORKING_SPACE_HELP),
    work_dir: Path = typer.Option(
        None, "--work-dir", help="Model and chunks folder (default: JOB.vidstyle beside the job)."
    ),
    launcher: str = typer.Option(
        None,
        "--launcher",
        help="How task commands start vidstyle on the farm (default: this Python -m vidstyle), "
        "e.g. 'vidstyle' or 'rez env vidstyle -- vidstyle'.",
    ),
) -> None:
    """Write a job file: an adapt task, one task per frame-range chunk, an assemble task."""
    from vidstyle.farm.plan import plan_job

    settings = command_settings(
        preset,
        config,
        render=dict(
            **sizes(max_side, work_side),
            strength=strength,
            temporal=temporal,
            device=device,
            precision=precision,
            working_space=working_space,
        ),
        encode=dict(codec=codec, crf=crf, audio=False if no_audio else None),
    )
    job = plan_job(
        str(input),
        style,
        str(output),
        settings,
        job_path=job_file,
        chunk=chunk,
        overlap=overlap,
        chunk_format=chunk_format,
        seam=seam,
        snap_cuts=snap_cuts,
        rate=parse_rate(rate),
        model=model,
        work_dir=work_dir,
        launcher=shlex.split(launcher) if launcher else None,
        start_number=start_number,
    )
    lengths = [c.span.end - c.span.start for c in job.chunks]
    cuts = [c.span.start for c in job.chunks if c.at_cut]
    typer.echo(
        f"{job.path}: {job.frame_count} frames in {len(job.chunks)} chunks "
        f"({min(lengths)}-{max(lengths)} frames, overlap {job.overlap}, seams: {job.seam})"
        + (f", boundaries on cuts at {cuts}" if cuts else "")
        + f"; {len(job.tasks)} tasks"
    )
    typer.echo(f"run it: vidstyle farm run {shlex.quote(str(job.path))}   (or see docs/farm.md)")


@farm_app.command("adapt")
@_user_errors
def adapt_command(
    job_file: Path = typer.Argument(..., help="Job file from `vidstyle farm plan`."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """Adapt the job's style model (once; a no-op when it exists)."""
    from vidstyle.farm.tasks import run_adapt

    typer.echo(run_adapt(_load(job_file), progress=_progress(quiet)).summary())


@farm_app.command("task")
@_user_errors
def task_command(
    job_file: Path = typer.Argument(..., help="Job file from `vidstyle farm plan`."),
    index: int = typer.Option(None, "--index", "-i", help="Chunk number (0-based)."),
    frames: str = typer.Option(
        None,
        "--frames",
        "-f",
        help="Farm frame range instead of --index, e.g. 81-120 (OpenCue "
        "#FRAME_START#-#FRAME_END#, Deadline <STARTFRAME>-<ENDFRAME>): renders the chunks "
        "that start in it.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """Render one chunk (a no-op when it is already complete)."""
    from vidstyle.farm.plan import chunks_for_frames
    from vidstyle.farm.tasks import run_chunk

    job = _load(job_file)
    if (index is None) == (frames is None):
        raise ConfigError("give either --index or --frames")
    if frames is not None:
        indices = [c.index for c in chunks_for_frames(job, frames)]
        if not indices:
            typer.echo(f"frames {frames}: no chunk starts here; nothing to do")
    else:
        indices = [index]
    for i in indices:
        typer.echo(run_chunk(job, i, progress=_progress(quiet)).summary())


@farm_app.command("assemble")
@_user_errors
def assemble_command(
    job_file: Path = typer.Argument(..., help="Job file from `vidstyle farm plan`."),
    force: bool = typer.Option(False, "--force", help="Assemble even if the output is complete."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """Join the chunks into the output (source timestamps and audio), checking the frame count."""
    from vidstyle.farm.tasks import run_assemble

    typer.echo(run_assemble(_load(job_file), progress=_progress(quiet), force=force).summary())


@farm_app.command("run")
@_user_errors
def run_command(
    job_file: Path = typer.Argument(..., help="Job file from `vidstyle farm plan`."),
    address: str = typer.Option(
        None,
        "--address",
        help="Ray cluster to join (e.g. ray://head:10001 or auto); default: start a local one.",
    ),
    num_gpus_per_task: str = typer.Option(
        "auto",
        "--num-gpus-per-task",
        help="GPUs each adapt/chunk task asks for: auto (1 if the cluster has GPUs), or a number.",
    ),
    cpus_per_task: float = typer.Option(1.0, "--cpus-per-task", help="CPUs each task asks for."),
    num_cpus: int = typer.Option(
        None, "--num-cpus", help="CPUs of the local Ray instance (default: all)."
    ),
    max_retries: int = typer.Option(3, "--max-retries", help="Retries of a failed or killed task."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Run the whole job on Ray (pip install 'vidstyle[farm]'): adapt, chunks in parallel,
    assemble; failed tasks are retried, finished ones are not redone."""
    from vidstyle.farm.ray_runner import parse_gpus, run_on_ray

    result = run_on_ray(
        job_file,
        address=address,
        num_gpus_per_task=parse_gpus(num_gpus_per_task),
        cpus_per_task=cpus_per_task,
        num_cpus=num_cpus,
        max_retries=max_retries,
        progress=not quiet,
    )
    typer.echo(result.summary())


@farm_app.command("status")
@_user_errors
def status_command(
    job_file: Path = typer.Argument(..., help="Job file from `vidstyle farm plan`."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Which tasks are done, and each task's command line."""
    from vidstyle.farm.tasks import task_states

    states = task_states(_load(job_file))
    if as_json:
        typer.echo(json.dumps(states, indent=2))
        return
    for s in states:
        frames = f" frames {s['frames']}" if s["frames"] else ""
        typer.echo(f"{s['state']:<8} {s['id']:<12}{frames}\n         {s['shell']}")


@farm_app.command("seams")
@_user_errors
def seams_command(
    job_file: Path = typer.Argument(..., help="Job file of an assembled job."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Quality check: warping error of the frame pairs across each chunk seam vs the median
    of the other pairs (hard-cut pairs left out)."""
    from vidstyle.farm.seams import seam_report

    report = seam_report(_load(job_file))
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.table())
    if not report.ok:
        raise typer.Exit(1)


__all__ = ["farm_app"]
