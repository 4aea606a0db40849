"""The one frame path: decode -> flow -> network -> finish -> upscale -> encode.

The CLI (vidstyle/jobs.py), batch mode and farm chunk tasks describe what they want as a
RenderJob (source, output, frame span, numbering, options; pipeline/job.py) and call
`render(job, stylizer)`. What it decides before the first frame (sizes, depth, working space,
threads, batch) is a RenderPlan, which every stage reads. The stages, in the order every frame
meets them, and what each hands to the next:

  decode    Source.frames(span)         source.py    Frame: picture at the work size (uint8,
                                                     or float32 working values when deep), the
                                                     full-size one, alpha, number, pts
  flow      Source.pairs(span)          source.py    (Frame, ChainLink | None): motion back to
                                                     the frame before, reliability, scene cut
  network   Stylizer.network            stylizer.py  the raw paint, a tensor on the device
            (warm mode: + warm_inputs)
  finish    Stylizer.carry, .finish,    stylizer.py  the finished picture at the work size:
            .download                   contrast.py  carry blend (contrast, tone), colour,
                                                     strength
  upscale   to_output (Output's thread) upscale.py   the picture at the output size
  encode    Output.put -> the writer    output.py    frames written, alpha and numbers kept

Decode, flow and encode run in their own threads behind bounded queues (memory does not grow
with the length of the video); the network and finish run on the calling thread (the GPU
stream). What differs between temporal modes is only the schedule, the order in which frames
meet the network; every schedule is `run(plan, source, stylizer, out, clock) -> frames
processed`:
- carry (carry.py): frames painted in batches; the previous stylized frame, warped, is blended
  in after: one chain over the whole span;
- warm (lanes.py): frame t is stylized from (frame t, the previous stylized frame warped by the
  flow, the flow's reliability mask), a recurrence; on a GPU several chains run side by side on
  segments of the span, batched (one lane is one chain);
- loss-only / off (batches.py): frames are independent, so they are batched.
Chains restart at scene cuts.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import cv2
import torch

from vidstyle import notices
from vidstyle.errors import attach_file
from vidstyle.pipeline import batches, carry, lanes
from vidstyle.pipeline.job import RenderJob, RenderPlan, network_shares_cores_with_flow, plan_render
from vidstyle.pipeline.output import Output
from vidstyle.pipeline.source import Source
from vidstyle.pipeline.stages import StageClock
from vidstyle.pipeline.stylizer import Stylizer

#: Stylize a plan's frames from `source` into `out`; returns the frames through the network.
Schedule = Callable[[RenderPlan, Source, Stylizer, Output, StageClock], int]
SCHEDULES: dict[str, Schedule] = {"carry": carry.run, "warm": lanes.run}  # else batches.run


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


def render(job: RenderJob, stylizer: Stylizer) -> RenderStats:
    """Stylize `job.source` into `job.output` (written atomically). Returns timings and counts,
    and the warnings said about the source. Any exception leaving it carries the source's name
    (errors.file_of) for the one-line report."""
    try:
        with notices.capture() as said:
            stats = _render(job, stylizer)
    except Exception as exc:
        attach_file(exc, job.source)
        raise
    stats.warnings = list(said)
    return stats


def _render(job: RenderJob, stylizer: Stylizer) -> RenderStats:
    plan = plan_render(job, stylizer.runtime.is_cuda)
    schedule = SCHEDULES.get(plan.render.temporal, batches.run)
    clock = StageClock()
    source = Source(plan, clock)
    with _cores_shared_with_flow(plan), Output(plan, clock) as out:
        started = time.perf_counter()
        processed = schedule(plan, source, stylizer, out, clock)
    return RenderStats(
        frames=out.written,
        processed=processed,
        seconds=time.perf_counter() - started,
        scene_cuts=source.cuts,
        stage_seconds=dict(clock.busy),
        size=plan.out_size,
        work_size=plan.size,
    )


@contextlib.contextmanager
def _cores_shared_with_flow(plan: RenderPlan) -> Iterator[None]:
    """Flow runs in the render's own worker threads, so OpenCV's internal pool on top of them
    would oversubscribe the cores: one OpenCV thread. Where a slow flow shares a CPU with the
    network, the network gets the cores the flow threads leave (see
    job.network_shares_cores_with_flow)."""
    cv2_threads, torch_threads = cv2.getNumThreads(), torch.get_num_threads()
    cv2.setNumThreads(1)
    if network_shares_cores_with_flow(plan.render, plan.cuda):
        torch.set_num_threads(max(1, torch_threads - plan.flow_workers))
    try:
        yield
    finally:
        cv2.setNumThreads(cv2_threads)
        torch.set_num_threads(torch_threads)
