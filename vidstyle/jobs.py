"""The jobs users run: one video, a folder of videos, a standalone adaptation, a description.

This is the layer the CLI calls; it checks inputs up front (so a bad file fails in a second, not
after minutes of adaptation), gets a model (given, cached or adapted), and runs the one frame loop.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from vidstyle.adapt import Adapted, adapt
from vidstyle.config import Settings
from vidstyle.errors import MediaError, VidstyleError
from vidstyle.io import (
    VIDEO_SUFFIXES,
    check_writable,
    frame_timestamps,
    is_image_sequence,
    load_image,
    probe,
)
from vidstyle.io.patterns import parse_numbered
from vidstyle.models.device import Runtime, resolve_runtime
from vidstyle.models.store import load_card, load_model
from vidstyle.pipeline.engine import RenderRange, RenderStats, render
from vidstyle.pipeline.preview import write_preview
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
        line = (
            f"{self.output}: {s.frames} frames at {s.size[0]}x{s.size[1]} in "
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
        return Adapted(net, card, model, trained=False)
    return adapt(
        style, content, settings, runtime, output=output, use_cache=use_cache, progress=progress
    )


def frame_range_for_times(
    path: Path, start: float | None, end: float | None, rate: Fraction | None = None
) -> RenderRange:
    """--start/--end seconds -> the frames whose presentation time lies in [start, end)."""
    if start is None and end is None:
        return RenderRange()
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
    return RenderRange(start=lo, end=hi)


def same_file(a: Path, b: Path) -> bool:
    """True when both paths exist and are the same file (symlinks and hard links too)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def preflight(
    input: Path, style: Path | None, output: Path | None, rate: Fraction | None = None
) -> None:
    """Cheap checks of every path, so bad input fails before any expensive work."""
    probe(input, rate=rate)
    if style is not None:
        load_image(style)
    if output is not None:
        check_writable(output)
        if same_file(input, output):  # the finished output would be renamed over the source
            raise MediaError("output is the input file; choose another output name", output)


def preview_path(output: Path) -> Path:
    """OUT.preview.jpg beside a video; beside an image sequence, its name without the frame
    number (out/shot.%04d.png -> out/shot.preview.jpg), never a name with a pattern in it."""
    numbered = parse_numbered(output) if is_image_sequence(output) else None
    if numbered is None:
        return output.with_suffix(".preview.jpg")
    return numbered.directory / f"{numbered.prefix}preview.jpg"


def run_one(opts: RunOptions) -> RunResult:
    settings = opts.settings
    preflight(opts.input, None if opts.model else opts.style, opts.output, opts.rate)
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
    stats = render(
        opts.input,
        opts.output,
        stylizer,
        settings,
        frames=frames,
        progress=opts.progress,
        rate=opts.rate,
    )
    preview = None
    if opts.preview:  # source frame `frames.start` is output frame 0
        preview = write_preview(
            opts.input, opts.output, preview_path(opts.output), source_start=frames.start
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
    if model is None:
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
            frames = probe(video).frame_count
        except VidstyleError as exc:
            item.status, item.error = "failed", exc.message
            continue
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
    if todo:
        # One model for the whole batch, adapted on frames from all of its videos: one
        # adaptation instead of one per shot, and the same look across shots.
        adapted = get_model(
            style, [v for v, _, _ in todo], settings, runtime, model=model, progress=progress
        )
        stylizer = Stylizer(adapted.net, runtime, settings.render)
    for video, out, index in todo:
        item = items[index]
        started = time.perf_counter()
        try:
            stats = render(video, out, stylizer, settings, progress=progress)
            item.status, item.frames = "done", stats.frames
        except VidstyleError as exc:
            item.status, item.error = "failed", exc.message
        item.seconds = round(time.perf_counter() - started, 2)
        _write_report(report, items, adapted)
    _write_report(report, items, adapted)
    return BatchSummary(items, report, str(adapted.path) if adapted and adapted.path else None)


def _write_report(path: Path, items: list[BatchItem], adapted: Adapted | None) -> None:
    data = {
        "model": str(adapted.path) if adapted and adapted.path else None,
        "items": [vars(i) for i in items],
    }
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


# -- info ----------------------------------------------------------------------------------


def describe(path: Path) -> dict:
    """What `vidstyle info` prints: a model's card, or what the probe sees in a media file."""
    if path.suffix == ".safetensors":
        card = load_card(path)
        return {"file": str(path), **card.to_dict()}
    return probe(path).to_dict()
