"""The one frame loop: decode -> optical flow -> style network -> encode.

The CLI, batch mode and farm chunk tasks all call `render()`. Stages overlap: a decode thread
reads ahead, a thread pool computes optical flow for coming frame pairs (flow depends only on the
input, so it runs ahead of the network), the network runs on the calling thread (the GPU stream),
and an encode thread writes finished frames. Every queue is bounded, so memory does not grow with
the length of the video.

Temporal modes:
- warm: frame t is stylized from (frame t, previous stylized frame warped by flow t->t-1, flow
  reliability mask); the chain restarts at scene cuts. Sequential by nature, so on a GPU
  several chains run side by side on segments of the video, batched (pipeline/lanes.py; one
  lane is one chain over the whole range).
- carry: the same chain, but the network paints frame t on its own and the previous stylized
  frame, warped, is blended in after it with its stroke contrast restored (models/contrast.py).
- loss-only / off: frames are independent, so they are batched through the network.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from vidstyle import notices
from vidstyle.config import RECURRENT_MODES, RenderSettings, Settings
from vidstyle.errors import MediaError, attach_file
from vidstyle.flow import ChainLink, link_to_previous, make_flow, shrink
from vidstyle.io import (
    Frame,
    fit_size,
    frame_timestamps,
    is_image_sequence,
    open_reader,
    open_writer,
    probe,
    writer_options,
)
from vidstyle.io.images import to_uint8
from vidstyle.io.working_space import working_space_for
from vidstyle.pipeline.carry import carry_loop
from vidstyle.pipeline.lanes import Segment, lanes_loop, plan_segments
from vidstyle.pipeline.stages import BackgroundSink, Prefetch, StageClock, batched, ordered_map
from vidstyle.pipeline.stylizer import Stylizer
from vidstyle.pipeline.upscale import to_output

#: Warm chains side by side on a GPU when --lanes is not given (one chain leaves it mostly idle).
DEFAULT_GPU_LANES = 4


@dataclass
class RenderStats:
    frames: int = 0  # frames written
    processed: int = 0  # frames through the network (warm-up frames included)
    seconds: float = 0.0
    scene_cuts: list[int] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    size: tuple[int, int] = (0, 0)  # of the output
    work_size: tuple[int, int] = (0, 0)  # the network painted at this size
    warnings: list[str] = field(default_factory=list)  # what was off with the source, per line

    @property
    def fps(self) -> float:
        return self.processed / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        stage_fps = {
            k: round(self.processed / v, 1) if v else None for k, v in self.stage_seconds.items()
        }
        return {
            "frames": self.frames,
            "processed": self.processed,
            "seconds": round(self.seconds, 2),
            "fps": round(self.fps, 2),
            "scene_cuts": self.scene_cuts,
            "stage_fps": stage_fps,
            # share of the wall time each stage was busy: network near 1.0 = the device is the
            # bottleneck (on CUDA the network stage includes waiting for the GPU's results)
            "busy_share": {
                k: round(v / self.seconds, 2) if self.seconds else None
                for k, v in self.stage_seconds.items()
            },
            "width": self.size[0],
            "height": self.size[1],
            "work_width": self.work_size[0],
            "work_height": self.work_size[1],
            "warnings": self.warnings,
        }


@dataclass
class RenderRange:
    """Which frames to render: [start, end) are written, `warmup` frames before start are only
    run through the warm-start chain so the first written frame already has temporal context."""

    start: int = 0
    end: int | None = None
    warmup: int = 0


def _flow_pairs(
    frames: Iterator[Frame], settings: Settings, clock: StageClock, workers: int, ahead: int = 0
) -> Iterator[tuple[Frame, ChainLink | None]]:
    """Attach to each frame the flow back to its predecessor, computed ahead in a thread pool
    (at most `ahead` pairs in flight; default two per worker). A consumer that takes frames in
    batches needs a batch more, or it waits for flows that were never started."""
    estimator = make_flow(settings.render.flow, max_side=None)  # frames arrive pre-shrunk
    detect_cuts = settings.render.scene_cut
    flow_side = settings.render.flow_max_side

    def pairs() -> Iterator[tuple[Frame, np.ndarray, np.ndarray | None]]:
        previous = None
        for frame in frames:
            small = shrink(frame.rgb, flow_side)
            if small.dtype != np.uint8:  # deep frames: flow and cut detection work in 8 bits
                small = to_uint8(small)
            yield frame, small, previous
            previous = small

    def compute(pair: tuple[Frame, np.ndarray, np.ndarray | None]) -> ChainLink | None:
        _, small, previous = pair
        if previous is None:
            return None
        start = time.perf_counter()
        link = link_to_previous(estimator, small, previous, detect_cuts)
        clock.add("flow", time.perf_counter() - start)
        return link

    for (frame, _, _), flow in ordered_map(compute, pairs(), workers, ahead or 2 * workers):
        yield frame, flow


#: Flows that cost about half the draft network's time or more per frame on a CPU core.
SLOW_FLOWS = frozenset({"dis", "dis-medium", "raft", "raft-small", "raft-large"})


def default_flow_workers(cuda: bool, lanes: int) -> int:
    """Flow threads per chain. With a GPU, flow is the CPU's main job: most cores go to it. On a
    CPU the network needs the cores: one flow thread on small machines."""
    cores = os.cpu_count() or 2
    if cuda:
        return max(1, (cores - 2) // max(1, lanes))
    return 1 if cores <= 4 else 2


def _network_shares_cores_with_flow(render_cfg: RenderSettings, cuda: bool) -> bool:
    """On a CPU, a slow flow running beside a network that uses every core makes both stall
    (an intra-op thread preempted holds up the whole convolution): the network then gets the
    cores the flow threads leave. Measured on 2 cores, draft network at 384x216: DIS medium
    20.8 fps with 2 torch threads -> 26.7 fps with 1; DIS fast 30.7 fps with 2 -> 22.9 with 1
    (cheap flow: the network keeps every core)."""
    return not cuda and render_cfg.temporal in RECURRENT_MODES and render_cfg.flow in SLOW_FLOWS


def lane_count(render_cfg: RenderSettings, cuda: bool, frames: int) -> int:
    """How many warm chains run side by side (pipeline/lanes.py): --lanes, or on a GPU by
    default DEFAULT_GPU_LANES; fewer when the clip is too short for each lane's chain to be
    worth its warm-up (at least 4 x lane_overlap frames a lane)."""
    if render_cfg.temporal != "warm":  # carry batches frames instead (pipeline/carry.py)
        return 1
    lanes = render_cfg.lanes or (DEFAULT_GPU_LANES if cuda else 1)
    return max(1, min(lanes, frames // (4 * max(1, render_cfg.lane_overlap))))


#: Bytes of float32 frames one network call may take in (frames, output and copies scale with it).
BATCH_BUDGET = 128 << 20


def _float_frame_bytes(size: tuple[int, int]) -> int:
    return 4 * 3 * size[0] * size[1]


def frames_per_call(render_cfg: RenderSettings, size: tuple[int, int]) -> int:
    """--batch-size, fewer for large frames: 5 frames at 1080p, 1 at 4K (bounded memory)."""
    return max(1, min(render_cfg.batch_size, BATCH_BUDGET // _float_frame_bytes(size)))


def can_paint_ahead(cuda: bool, batch: int, size: tuple[int, int]) -> bool:
    """Carry mode paints the next batch while blending this one, which holds one more batch of
    frames: always on a GPU (device memory), on the CPU while that batch is small."""
    return cuda or batch * _float_frame_bytes(size) <= BATCH_BUDGET // 2


def work_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size frames are stylized at (render.max_side) or written at (render.output_max_side):
    the source's exactly (odd sizes too), or scaled down so the long side is `max_side` (even
    sizes, as encoders like them)."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    return fit_size(width, height, max_side)


def render(
    source: str | Path,
    output: str | Path,
    stylizer: Stylizer,
    settings: Settings,
    *,
    frames: RenderRange | None = None,
    keep_timestamps: bool = False,
    audio: bool | None = None,
    progress: bool = True,
    flow_workers: int | None = None,
    rate: Fraction | None = None,
    start_number: int | None = None,
    intermediate: bool = False,
) -> RenderStats:
    """Stylize `source` into `output` (written atomically). Returns timings and counts.

    `intermediate` (farm chunks): deep sources' frames are written as working-space values,
    which the assembly reads back and converts once (a 16-bit intermediate can't hold
    scene-linear values above 1).

    An image-sequence output is numbered like the source's files (plate.1001.exr ->
    out.1001.exr), or from 1 for a video source; `start_number` numbers source frame 0 instead.

    `keep_timestamps` writes source timestamps unchanged (farm chunks, assembled later);
    otherwise the first written frame starts at time 0 and audio is trimmed to match.
    `rate` is the frame rate of an image-sequence source (videos carry their own).
    Any exception leaving it carries the source's name (errors.file_of) for the one-line report.
    """
    try:
        with notices.capture() as said:
            stats = _render(
                source, output, stylizer, settings, frames=frames,
                keep_timestamps=keep_timestamps, audio=audio, progress=progress,
                flow_workers=flow_workers, rate=rate, start_number=start_number,
                intermediate=intermediate,
            )  # fmt: skip
    except Exception as exc:
        attach_file(exc, source)
        raise
    stats.warnings = list(said)
    return stats


def _render(
    source: str | Path,
    output: str | Path,
    stylizer: Stylizer,
    settings: Settings,
    *,
    frames: RenderRange | None,
    keep_timestamps: bool,
    audio: bool | None,
    progress: bool,
    flow_workers: int | None,
    rate: Fraction | None,
    start_number: int | None,
    intermediate: bool,
) -> RenderStats:
    frames = frames or RenderRange()
    render_cfg, encode = settings.render, settings.encode
    clock = StageClock()
    stats = RenderStats()
    info = probe(source, rate=rate)
    out_size = work_size(info.display_width, info.display_height, render_cfg.output_max_side)
    size = work_size(info.display_width, info.display_height, render_cfg.max_side)
    if size[0] * size[1] > out_size[0] * out_size[1]:
        size = out_size  # never paint larger than the output
    stats.size, stats.work_size = out_size, size
    # what a frame in flight holds: the working picture, and the full-size one when they differ
    frame_bytes = 3 * size[0] * size[1] + (3 * out_size[0] * out_size[1] if out_size != size else 0)
    frame_bytes *= 4 if info.bit_depth > 8 else 1  # float32 pictures from deep sources
    end = info.frame_count if frames.end is None else min(frames.end, info.frame_count)
    if frames.start >= end:
        raise MediaError(
            f"frame range {frames.start}-{end} is empty (the source has {info.frame_count} frames)",
            source,
        )
    first = max(0, frames.start - frames.warmup)
    lanes = lane_count(render_cfg, stylizer.runtime.is_cuda, end - first)
    flow_workers = flow_workers or default_flow_workers(stylizer.runtime.is_cuda, lanes)

    # Deep sources (>8 bits, float) travel as float32 in the working space; alpha beside them.
    deep = info.bit_depth > 8
    space = working_space_for(info.color_trc, info.color_primaries, mode=render_cfg.working_space)
    writer_kw = writer_options(out_size, info, encode)
    writer_kw["space"] = None if intermediate else space
    sequence_out = is_image_sequence(str(output))

    def number_of(frame: Frame) -> int:
        if start_number is not None:
            return start_number + frame.index
        return frame.number if frame.number is not None else frame.index + 1

    keep_audio = encode.audio if audio is None else audio
    timestamps = None
    if not keep_timestamps:
        timestamps = _first_kept_time(source, frames.start, end, info)
        writer_kw["time_offset"] = timestamps[0]
    if not keep_timestamps and not info.is_image_sequence:  # audio and subtitles, trimmed
        writer_kw["audio_from"] = Path(source)
        writer_kw["audio_window"] = (timestamps[1], timestamps[2])
        writer_kw["audio"] = keep_audio
    writer = open_writer(str(output), **writer_kw)

    bar = tqdm(
        total=end - frames.start,
        desc="stylizing",
        unit="frame",
        disable=not progress,
        leave=False,
        dynamic_ncols=True,
    )
    started = time.perf_counter()

    def encode_one(item: tuple[np.ndarray, Frame]) -> None:
        t0 = time.perf_counter()
        rgb, frame = item
        if frame.full is not None:
            rgb = to_output(rgb, frame, render_cfg.strength)
            t1 = time.perf_counter()
            clock.add("upscale", t1 - t0)
            t0 = t1
        if sequence_out:
            writer.write(rgb, frame.pts, alpha=frame.alpha, number=number_of(frame))
        else:
            writer.write(rgb, frame.pts, alpha=frame.alpha)
        clock.add("encode", time.perf_counter() - t0)
        bar.update(1)

    # Queues hold at most ~256 MB of frames each (8 frames at 1080p, 2 at 4K).
    depth = max(2, min(8, (256 << 20) // frame_bytes))

    def decode(start: int, stop: int) -> Prefetch[Frame]:
        reader = open_reader(
            str(source), rate=rate, size=out_size, work_size=size, start_index=start,
            end_index=stop, deep=deep, alpha=info.has_alpha, space=space,
        )  # fmt: skip
        return Prefetch(clock.timed("decode", reader), depth=depth, name="decode", owns=reader)

    def pairs_for(segment: Segment, ahead: int = 0) -> Iterator[tuple[Frame, ChainLink | None]]:
        decoded = decode(segment.warmup_start, segment.end)
        try:
            yield from _flow_pairs(iter(decoded), settings, clock, flow_workers, ahead)
        finally:
            decoded.close()

    def emit(rgb: np.ndarray, frame: Frame) -> None:
        _emit(sink, [rgb], [frame], frames.start, stats)

    def on_cut(index: int) -> None:
        if index not in stats.scene_cuts:
            stats.scene_cuts.append(index)

    decoded = None
    sink = BackgroundSink(encode_one, depth=depth, name="encode")
    # Flow runs in this loop's own worker threads; OpenCV's internal pool on top of them
    # oversubscribed the cores (2 cores: 26.1 -> 40.8 pairs/s busy-time with one cv2 thread).
    cv2_threads, torch_threads = cv2.getNumThreads(), torch.get_num_threads()
    cv2.setNumThreads(1)
    if _network_shares_cores_with_flow(render_cfg, stylizer.runtime.is_cuda):
        torch.set_num_threads(max(1, torch_threads - flow_workers))
    try:
        if render_cfg.temporal == "carry":
            batch = frames_per_call(render_cfg, size)
            pairs = pairs_for(Segment(first, end, first), ahead=2 * flow_workers + batch)
            try:
                ahead = can_paint_ahead(stylizer.runtime.is_cuda, batch, size)
                stats.processed = carry_loop(
                    pairs, stylizer, batch, clock, emit, on_cut, paint_ahead=ahead
                )
            finally:
                pairs.close()
        elif render_cfg.temporal == "warm":  # one lane: a single segment, one chain
            segments = plan_segments(first, end, lanes, render_cfg.lane_overlap, frame_bytes)
            stats.processed = lanes_loop(pairs_for, segments, lanes, stylizer, clock, emit, on_cut)
        else:
            decoded = decode(first, end)
            batch = frames_per_call(render_cfg, size)
            _parallel_loop(decoded, stylizer, batch, clock, stats, sink, frames.start)
        sink.close()
        writer.close()
    except BaseException:
        if decoded is not None:
            decoded.close()
        with contextlib.suppress(BaseException):
            sink.close()
        writer.abort()
        raise
    finally:
        cv2.setNumThreads(cv2_threads)
        torch.set_num_threads(torch_threads)
        bar.close()
        if decoded is not None:
            decoded.close()
    stats.seconds = time.perf_counter() - started
    stats.stage_seconds = dict(clock.busy)
    return stats


def _first_kept_time(source, start: int, end: int, info) -> tuple[int, float | None, float | None]:
    """(pts offset, audio window start s, audio window end s) for a render that starts at 0."""
    if start == 0 and end >= info.frame_count:
        return 0, None, None
    pts = frame_timestamps(source)
    tb = float(info.time_base)
    offset = pts[start]
    window_end = pts[end] * tb if end < len(pts) else None
    return offset, offset * tb, window_end


def _emit(
    sink: BackgroundSink,
    outputs: list[np.ndarray],
    batch: list[Frame],
    keep_from: int,
    stats: RenderStats,
) -> None:
    for rgb, frame in zip(outputs, batch, strict=True):
        if frame.index >= keep_from:
            sink.put((rgb, frame))
            stats.frames += 1


def _parallel_loop(
    decoded,
    stylizer: Stylizer,
    batch_size: int,
    clock: StageClock,
    stats: RenderStats,
    sink: BackgroundSink,
    keep_from: int,
) -> None:
    for batch in batched(iter(decoded), batch_size):
        t0 = time.perf_counter()
        x = stylizer.upload([f.rgb for f in batch])
        out = stylizer.download(stylizer.finish(stylizer.network(x), x), deep=batch[0].deep)
        clock.add("network", time.perf_counter() - t0)
        stats.processed += len(batch)
        _emit(sink, out, batch, keep_from, stats)
