"""What a render is asked to do (RenderJob) and what it decides before the first frame
(RenderPlan): sizes, frames, depth, working space, and how the work is spread over threads,
chains and network calls.

The frame path's sizing rules live here (the warm lanes size their segments themselves), so
the stages (pipeline/source.py, the three schedules, pipeline/output.py) only read the plan.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

from vidstyle.config import RECURRENT_MODES, RenderSettings, Settings
from vidstyle.errors import MediaError
from vidstyle.io import VideoInfo, fit_size, probe
from vidstyle.io.working_space import WorkingSpace, working_space_for
from vidstyle.pipeline.span import Span


@dataclass
class RenderJob:
    """One render, as the CLI (vidstyle/jobs.py), batch mode and farm chunk tasks ask for it."""

    source: str | Path  # a video file or an image-sequence pattern
    output: str | Path  # a video file or an image-sequence pattern, written atomically
    settings: Settings
    #: the frames to write, and the warm-up frames run before them (None: the whole source)
    frames: Span | None = None
    rate: Fraction | None = None  # frame rate of an image-sequence source (videos carry theirs)
    #: image-sequence outputs are numbered like the source's files (plate.1001.exr ->
    #: out.1001.exr), or from 1 for a video source; this numbers source frame 0 instead
    start_number: int | None = None
    #: write the source's timestamps unchanged (farm chunks, assembled later); otherwise the
    #: first written frame starts at time 0, and audio and subtitles are trimmed to match
    keep_timestamps: bool = False
    audio: bool | None = None  # keep the audio (None: settings.encode.audio)
    #: farm chunks: deep sources' frames are written as working-space values, which the
    #: assembly reads back and converts once (a 16-bit intermediate can't hold scene-linear
    #: values above 1)
    intermediate: bool = False
    progress: bool = True  # a progress bar on stderr


@dataclass(frozen=True)
class RenderPlan:
    """What a render decides before its first frame, from the job, the source and the device."""

    job: RenderJob
    info: VideoInfo
    span: Span  # the job's frames, within the source
    size: tuple[int, int]  # the network paints at this size ...
    out_size: tuple[int, int]  # ... and frames are written at this one
    #: float32 pictures in the working space (sources deeper than 8 bits, float EXR)
    deep: bool
    space: WorkingSpace
    cuda: bool
    lanes: int  # warm chains side by side (pipeline/lanes.py)
    flow_workers: int  # flow threads per chain
    batch: int  # frames per network call
    depth: int  # frames each queue between two stages may hold
    frame_bytes: int  # what one frame in flight holds

    @property
    def render(self) -> RenderSettings:
        return self.job.settings.render


#: Warm chains side by side on a GPU when --lanes is not given. One: measured on an H200 at 1080p
#: (bench/results/gpu_h200), the host side (decode, flow, encode) is the limit, so more lanes only
#: add their warm-up frames and memory (1 lane 18.5 fps, 4 lanes 15.7, 8 lanes 14.5; RSS 2.3 GB
#: vs 6.7 and 7.9). A faster host may change that: --lanes N.
DEFAULT_GPU_LANES = 1
#: Bytes of float32 frames one network call may take in (frames, output and copies scale with it).
BATCH_BUDGET = 128 << 20
#: Bytes of frames each queue between two stages may hold.
QUEUE_BUDGET = 256 << 20
#: Flows that cost about half the draft network's time per frame on a CPU core, or more.
SLOW_FLOWS = frozenset({"dis", "dis-medium", "raft", "raft-small", "raft-large"})


def plan_render(job: RenderJob, cuda: bool) -> RenderPlan:
    """Probe the source once and decide everything the stages need (`cuda`: the network runs
    on a GPU)."""
    render = job.settings.render
    info = probe(job.source, rate=job.rate)
    out_size = work_size(info.display_width, info.display_height, render.output_max_side)
    size = work_size(info.display_width, info.display_height, render.max_side)
    if size[0] * size[1] > out_size[0] * out_size[1]:
        size = out_size  # never paint larger than the output
    # what a frame in flight holds: the working picture, and the full-size one when they differ
    frame_bytes = 3 * size[0] * size[1] + (3 * out_size[0] * out_size[1] if out_size != size else 0)
    deep = info.bit_depth > 8
    frame_bytes *= 4 if deep else 1  # float32 pictures
    span = _within_source(job, info.frame_count)
    lanes = lane_count(render, cuda, span.end - span.warmup_start)
    return RenderPlan(
        job=job,
        info=info,
        span=span,
        size=size,
        out_size=out_size,
        deep=deep,
        space=working_space_for(info.color_trc, info.color_primaries, mode=render.working_space),
        cuda=cuda,
        lanes=lanes,
        flow_workers=default_flow_workers(cuda, lanes),
        batch=frames_per_call(render, size),
        depth=max(2, min(8, QUEUE_BUDGET // frame_bytes)),
        frame_bytes=frame_bytes,
    )


def _within_source(job: RenderJob, frame_count: int) -> Span:
    """The job's frames, the end clamped to the source's (a farm's last chunk overshoots)."""
    span = job.frames or Span(0, frame_count)
    span = replace(span, end=min(span.end, frame_count))
    if span.start >= span.end:
        raise MediaError(
            f"frame range {span.start}-{span.end} is empty (the source has {frame_count} frames)",
            job.source,
        )
    return span


def work_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size frames are stylized at (render.max_side) or written at (render.output_max_side):
    the source's exactly (odd sizes too), or scaled down so the long side is `max_side` (even
    sizes, as encoders like them)."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    return fit_size(width, height, max_side)


def lane_count(render: RenderSettings, cuda: bool, frames: int) -> int:
    """How many warm chains run side by side (pipeline/lanes.py): --lanes, or on a GPU by
    default DEFAULT_GPU_LANES; fewer when the clip is too short for each lane's chain to be
    worth its warm-up (at least 4 x lane_overlap frames a lane)."""
    if render.temporal != "warm":  # carry batches frames instead (pipeline/carry.py)
        return 1
    lanes = render.lanes or (DEFAULT_GPU_LANES if cuda else 1)
    return max(1, min(lanes, frames // (4 * max(1, render.lane_overlap))))


def default_flow_workers(cuda: bool, lanes: int) -> int:
    """Flow threads per chain. With a GPU, flow is the CPU's main job: most cores go to it. On a
    CPU the network needs the cores: one flow thread on small machines."""
    cores = os.cpu_count() or 2
    if cuda:
        return max(1, (cores - 2) // max(1, lanes))
    return 1 if cores <= 4 else 2


def network_shares_cores_with_flow(render: RenderSettings, cuda: bool) -> bool:
    """On a CPU, a slow flow running beside a network that uses every core makes both stall (an
    intra-op thread preempted holds up the whole convolution): the network then gets the cores
    the flow threads leave. A cheap flow does not pay for that: the network keeps every core."""
    return not cuda and render.temporal in RECURRENT_MODES and render.flow in SLOW_FLOWS


def _float_frame_bytes(size: tuple[int, int]) -> int:
    return 4 * 3 * size[0] * size[1]


def frames_per_call(render: RenderSettings, size: tuple[int, int]) -> int:
    """--batch-size, fewer for large frames: 5 frames at 1080p, 1 at 4K (bounded memory)."""
    return max(1, min(render.batch_size, BATCH_BUDGET // _float_frame_bytes(size)))


def can_paint_ahead(cuda: bool, batch: int, size: tuple[int, int]) -> bool:
    """Carry mode paints the next batch while blending this one, which holds one more batch of
    frames: always on a GPU (device memory), on the CPU while that batch is small."""
    return cuda or batch * _float_frame_bytes(size) <= BATCH_BUDGET // 2
