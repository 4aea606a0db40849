"""The jobs users run: one video, a folder of videos, a standalone adaptation, a description.

This is the layer the CLI calls; it checks inputs up front (so a bad file fails in a second, not
after minutes of adaptation), gets a model (given, cached or adapted), and runs the one frame loop.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from vidstyle import notices
from vidstyle.adapt import Adapted, adapt
from vidstyle.config import Settings
from vidstyle.errors import ConfigError, MediaError, VidstyleError, file_of
from vidstyle.io import (
    VIDEO_SUFFIXES,
    check_writable,
    frame_timestamps,
    is_image_sequence,
    load_image,
    probe,
)
from vidstyle.io.paths import remove_stale
from vidstyle.io.patterns import list_sequence, parse_numbered
from vidstyle.models.device import Runtime, resolve_runtime
from vidstyle.models.store import ModelCard, file_sha256, load_card, load_model
from vidstyle.notices import unexpected_line
from vidstyle.pipeline.engine import RenderStats, render
from vidstyle.pipeline.job import RenderJob
from vidstyle.pipeline.preview import write_preview
from vidstyle.pipeline.span import Span
from vidstyle.pipeline.stylizer import Stylizer


@dataclass
class RunOptions:
    input: Path
    style: Path
    output: Path
    settings: Settings
    model: Path | None = None
    start: float | None = None
    end: float | None = None
    content: list[Path] = field(default_factory=list)
    use_cache: bool = True
    preview: bool = False
    progress: bool = True
    rate: Fraction | None = None  # frame rate of an image-sequence input
    overwrite: bool = False  # replace an existing output (else refuse: ffmpeg -n)
    start_number: int | None = None  # sequence outputs: number of source frame 0


@dataclass
class RunResult:
    output: Path
    stats: RenderStats
    model: Path | None
    adapted_seconds: float | None  # None when the model came from --model or the cache
    preview: Path | None = None

    def summary(self) -> str:
        s = self.stats
        how = (
            f"adapted in {self.adapted_seconds:.0f} s"
            if self.adapted_seconds is not None
            else "model reused"
        )
        painted = ""
        if s.work_size not in (s.size, (0, 0)):
            painted = f" (painted at {s.work_size[0]}x{s.work_size[1]})"
        line = (
            f"{self.output}: {s.frames} frames at {s.size[0]}x{s.size[1]}{painted} in "
            f"{s.seconds:.1f} s ({s.fps:.1f} fps); {how}"
        )
        if self.preview:
            line += f"; preview {self.preview}"
        return line


def get_model(
    style: Path,
    content: list[Path],
    settings: Settings,
    runtime: Runtime,
    *,
    model: Path | None = None,
    use_cache: bool = True,
    progress: bool = True,
    output: Path | None = None,
) -> Adapted:
    """The model to render with: the one given, else the cached or newly adapted one."""
    if model is not None:
        net, card = load_model(model)
        check_model_style(style, card, model)
        return Adapted(net, card, model, trained=False)
    return adapt(
        style, content, settings, runtime, output=output, use_cache=use_cache, progress=progress
    )


def check_model_style(style: Path, card: ModelCard, model: Path) -> None:
    """--model with a style image: say so when it is not the image the model was adapted to
    (the model's look is what the render gets, whatever the style argument says)."""
    wanted = card.style.get("sha256")
    if not wanted or not style.is_file():
        return
    if file_sha256(style) != wanted:
        adapted_to = card.style.get("name") or "another image"
        notices.warn(
            f"not the style image {model.name} was adapted to ({adapted_to}); the render "
            "has the model's style",
            style,
        )


def check_times(start: float | None, end: float | None) -> None:
    """--start/--end: finite, not negative, end after start."""
    for name, value in (("--start", start), ("--end", end)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"{name} must be 0 or more seconds, not {value:g}")
    if start is not None and end is not None and end <= start:
        raise ConfigError(f"--end ({end:g} s) must be after --start ({start:g} s)")


def frame_range_for_times(
    path: Path, start: float | None, end: float | None, rate: Fraction | None = None
) -> Span | None:
    """--start/--end seconds -> the frames whose presentation time lies in [start, end)
    (None: neither given, every frame)."""
    check_times(start, end)
    if start is None and end is None:
        return None
    info = probe(path, rate=rate)
    tb = float(info.time_base)
    times = [pts * tb - info.start_time for pts in frame_timestamps(path)]
    lo = (
        0
        if start is None
        else next((i for i, t in enumerate(times) if t >= start - 1e-6), len(times))
    )
    hi = (
        len(times)
        if end is None
        else next((i for i, t in enumerate(times) if t >= end - 1e-6), len(times))
    )
    if lo >= hi:
        wanted = " and ".join(
            f"{name} {value:g}"
            for name, value in (("--start", start), ("--end", end))
            if value is not None
        )
        raise MediaError(f"no frames for {wanted} (the video is {info.duration:.2f} s long)", path)
    return Span(lo, hi)


def same_file(a: Path, b: Path) -> bool:
    """True when both paths exist and are the same file (symlinks and hard links too)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def output_exists(output: Path) -> bool:
    """A file at `output`, or any frame of an output image sequence."""
    if is_image_sequence(output):
        return bool(list_sequence(output))
    return output.exists()


def preflight(
    input: Path,
    style: Path | None,
    output: Path | None,
    rate: Fraction | None = None,
    overwrite: bool = True,
) -> None:
    """Cheap checks of every path, so bad input fails before any expensive work."""
    probe(input, rate=rate)
    if style is not None:
        load_image(style)
    if output is not None:
        check_writable(output)
        if same_file(input, output):  # the finished output would be renamed over the source
            raise MediaError("output is the input file; choose another output name", output)
        if not overwrite and output_exists(output):
            raise MediaError("output already exists; pass -y (--overwrite) to replace it", output)


def preview_path(output: Path) -> Path:
    """OUT.preview.jpg beside a video; beside an image sequence, its name without the frame
    number (out/shot.%04d.png -> out/shot.preview.jpg), never a name with a pattern in it."""
    numbered = parse_numbered(output) if is_image_sequence(output) else None
    if numbered is None:
        return output.with_suffix(".preview.jpg")
    return numbered.directory / f"{numbered.prefix}preview.jpg"


def run_one(opts: RunOptions) -> RunResult:
    settings = opts.settings
    check_times(opts.start, opts.end)
    preflight(opts.input, opts.style, opts.output, opts.rate, overwrite=opts.overwrite)
    frames = frame_range_for_times(opts.input, opts.start, opts.end, opts.rate)
    runtime = resolve_runtime(settings.render.device, settings.render.precision)
    started = time.perf_counter()
    adapted = get_model(
        opts.style,
        [opts.input, *opts.content],
        settings,
        runtime,
        model=opts.model,
        use_cache=opts.use_cache,
        progress=opts.progress,
    )
    adapted_seconds = time.perf_counter() - started if adapted.trained else None
    stylizer = Stylizer(adapted.net, runtime, settings.render)
    job = RenderJob(
        opts.input,
        opts.output,
        settings,
        frames=frames,
        rate=opts.rate,
        start_number=opts.start_number,
        progress=opts.progress,
    )
    stats = render(job, stylizer)
    preview = None
    remove_stale(preview_path(opts.output))
    if opts.preview:  # the first rendered source frame is output frame 0
        first = frames.start if frames is not None else 0
        preview = write_preview(
            opts.input, opts.output, preview_path(opts.output), source_start=first
        )
    return RunResult(opts.output, stats, adapted.path, adapted_seconds, preview)


def adapt_model(
    style: Path,
    content: list[Path],
    settings: Settings,
    *,
    output: Path,
    use_cache: bool = True,
    progress: bool = True,
) -> Adapted:
    for source in content:
        if not source.exists() and not source.parent.is_dir():
            raise MediaError("content source not found", source)
    load_image(style)
    check_writable(output)
    runtime = resolve_runtime(settings.render.device, settings.render.precision)
    return adapt(
        style, content, settings, runtime, output=output, use_cache=use_cache, progress=progress
    )


# -- batch ---------------------------------------------------------------------------------


@dataclass
class BatchItem:
    input: str
    output: str
    status: str  # done | skipped | failed
    seconds: float = 0.0
    frames: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)  # e.g. a truncated source


@dataclass
class BatchSummary:
    items: list[BatchItem]
    report: Path
    model: str | None = None

    @property
    def failed(self) -> list[BatchItem]:
        return [i for i in self.items if i.status == "failed"]

    def table(self) -> str:
        lines = [f"{'status':<8} {'frames':>6} {'seconds':>8}  file"]
        for i in self.items:
            detail = f"  ({i.error})" if i.error else ""
            if i.warnings:
                said = "; ".join(w.removeprefix(f"{i.input}: ") for w in i.warnings)
                detail += f"  (warning: {said})"
            lines.append(f"{i.status:<8} {i.frames:>6} {i.seconds:>8.1f}  {i.input}{detail}")
        counts = {s: sum(i.status == s for i in self.items) for s in ("done", "skipped", "failed")}
        lines.append(
            f"{counts['done']} done, {counts['skipped']} skipped (already complete), "
            f"{counts['failed']} failed; report: {self.report}"
        )
        return "\n".join(lines)


def is_complete(output: Path, source_frames: int) -> bool:
    """Outputs are renamed into place only when finished, so an existing file with the
    expected frame count is a finished result (a stale one of another length is redone)."""
    try:
        return output.is_file() and probe(output).frame_count == source_frames
    except VidstyleError:
        return False


def run_batch(
    input_dir: Path,
    style: Path,
    output_dir: Path,
    settings: Settings,
    *,
    model: Path | None = None,
    suffix: str = ".mp4",
    overwrite: bool = False,
    report_path: Path | None = None,
    progress: bool = True,
) -> BatchSummary:
    if not input_dir.is_dir():
        raise MediaError("input folder not found", input_dir)
    videos = sorted(
        p
        for p in input_dir.iterdir()
        if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith(".")
    )
    if not videos:
        raise MediaError(
            f"no videos ({', '.join(sorted(VIDEO_SUFFIXES))}) in the folder", input_dir
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    report = report_path or output_dir / "vidstyle-report.json"
    load_image(style)
    items: list[BatchItem] = []
    todo: list[tuple[Path, Path, int]] = []
    claimed: dict[Path, Path] = {}  # output -> the input writing it (clip.mov and clip.mp4)
    for video in videos:
        out = output_dir / (video.stem + suffix)
        item = BatchItem(str(video), str(out), "pending")
        items.append(item)
        if out in claimed:
            item.status = "failed"
            item.error = f"same output name as {claimed[out].name}; rename one of them"
            continue
        claimed[out] = video
        try:
            with notices.capture() as said:
                frames = probe(video).frame_count
        except Exception as exc:  # the batch goes on past anything one file does
            item.status, item.error = "failed", _failure_text(exc, video)
            continue
        item.warnings = list(said)
        if same_file(video, out):  # would replace the source (and look "complete")
            item.status = "failed"
            item.error = "output would overwrite this input; use another output folder or --suffix"
            continue
        if not overwrite and is_complete(out, frames):
            item.status, item.frames = "skipped", frames
            continue
        todo.append((video, out, len(items) - 1))

    runtime = resolve_runtime(settings.render.device, settings.render.precision)
    adapted = None
    try:
        if todo:
            # One model for the whole batch, adapted on frames from all of its videos: one
            # adaptation instead of one per shot, and the same look across shots.
            adapted, todo = _batch_model(style, todo, items, settings, runtime, model, progress)
        if adapted is not None:
            stylizer = Stylizer(adapted.net, runtime, settings.render)
        for video, out, index in todo:
            item = items[index]
            started = time.perf_counter()
            item.status = "running"
            with notices.capture() as said:
                try:
                    stats = render(RenderJob(video, out, settings, progress=progress), stylizer)
                    item.status, item.frames = "done", stats.frames
                except Exception as exc:  # expected or not: recorded, and on to the next
                    item.status, item.error = "failed", _failure_text(exc, video)
            item.warnings += [w for w in said if w not in item.warnings]
            item.seconds = round(time.perf_counter() - started, 2)
            _write_report(report, items, adapted)
    except BaseException:  # Ctrl-C, or the model: the report says where the batch stopped
        for item in items:
            if item.status == "running":
                item.status, item.error = "failed", "interrupted"
        _write_report(report, items, adapted)
        raise
    _write_report(report, items, adapted)
    return BatchSummary(items, report, str(adapted.path) if adapted and adapted.path else None)


def _failure_text(exc: BaseException, video: Path) -> str:
    """A batch item's error: a VidstyleError's message, or an unexpected error's one line
    (its traceback saved to a log file)."""
    if isinstance(exc, VidstyleError):
        return exc.message if exc.path is None or same_path(exc.path, video) else str(exc)
    return unexpected_line(exc, video, hint=False).removeprefix(f"{video}: ")


def same_path(a: Path, b: Path) -> bool:
    return Path(a) == Path(b) or same_file(Path(a), Path(b))


def _batch_model(
    style: Path,
    todo: list[tuple[Path, Path, int]],
    items: list[BatchItem],
    settings: Settings,
    runtime: Runtime,
    model: Path | None,
    progress: bool,
) -> tuple[Adapted | None, list[tuple[Path, Path, int]]]:
    """The batch's model, adapted on all videos still to do; a video that breaks adaptation
    is marked failed and adaptation is tried again without it. A failure that names no video
    fails every item (the report says why)."""
    while todo:
        try:
            videos = [v for v, _, _ in todo]
            return get_model(style, videos, settings, runtime, model=model, progress=progress), todo
        except Exception as exc:
            named = file_of(exc)
            culprit = next((t for t in todo if named and same_path(Path(named), t[0])), None)
            if culprit is None:
                text = _failure_text(exc, style)
                for _, _, index in todo:
                    items[index].status, items[index].error = "failed", f"no model: {text}"
                return None, []
            items[culprit[2]].status = "failed"
            items[culprit[2]].error = _failure_text(exc, culprit[0])
            todo = [t for t in todo if t is not culprit]
    return None, []


def _write_report(path: Path, items: list[BatchItem], adapted: Adapted | None) -> None:
    data = {
        "model": str(adapted.path) if adapted and adapted.path else None,
        "items": [vars(i) for i in items],
    }
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


# -- info ----------------------------------------------------------------------------------


def describe(path: Path | None) -> dict:
    """What `vidstyle info` prints: a model's card, or what the probe sees in a media file."""
    if path is None:  # the meta-learned start this installation adapts new styles from
        from vidstyle.models.meta_start import read_card, shipped_path

        return {"file": str(shipped_path()), **read_card(shipped_path())}
    if path.suffix == ".safetensors":
        from vidstyle.models.meta_start import FORMAT as META_FORMAT
        from vidstyle.models.meta_start import read_card

        sidecar = path.with_suffix(".json")
        if sidecar.is_file() and f'"{META_FORMAT}"' in sidecar.read_text(errors="replace"):
            return {"file": str(path), **read_card(path)}
        card = load_card(path)
        return {"file": str(path), **card.to_dict()}
    return probe(path).to_dict()
