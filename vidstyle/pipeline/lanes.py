"""`--temporal warm` with several chains side by side ("lanes"), batched through the network.

The warm start is a recurrence: frame t needs the stylized frame t-1, so one chain feeds the
network one frame at a time, which leaves a GPU mostly idle. Lanes break the recurrence the way
the farm does: the render's span is cut into segments (pipeline/span.py), each segment's chain
starts `overlap` frames early (so its first kept frame already has temporal context) and its
warm-up frames are cross-faded with the end of the segment before it, so seams do not jump.
`lanes` chains run in lockstep, one segment each at a time, and every step is one batched
network call. One lane is one chain over the whole span.

Memory stays bounded whatever the video's length: outputs of segments that are ahead of the one
being written wait in memory, at most about `lanes` segments of frames, and segments are sized
from a byte budget.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Generator

import numpy as np
import torch

from vidstyle.flow import ChainLink
from vidstyle.io import Frame
from vidstyle.pipeline.job import RenderPlan
from vidstyle.pipeline.output import Output
from vidstyle.pipeline.source import Source
from vidstyle.pipeline.span import Span, crossfade
from vidstyle.pipeline.stages import StageClock
from vidstyle.pipeline.stylizer import Stylizer

#: Bytes of finished frames that may wait for earlier segments (sets the segment length).
PENDING_BUDGET = 2 << 30


def plan_segments(span: Span, lanes: int, overlap: int, frame_bytes: int) -> list[Span]:
    """Equal segments over the span's frames from its warm-up start, as long as the memory
    budget allows (so the lanes stay in lockstep and each lane's chain is as long as possible),
    never shorter than 4 x overlap (warm-up frames are extra work). One lane: the whole range is
    one segment."""
    first, end = span.warmup_start, span.end
    total = end - first
    if lanes <= 1:  # one chain: nothing waits, so no reason to cut it
        return [Span(first, end)]
    by_memory = PENDING_BUDGET // ((lanes - 1) * frame_bytes)  # what lanes 2.. hold back
    length = max(4 * overlap, 1, min(math.ceil(total / max(1, lanes)), by_memory))
    segments = []
    for start in range(first, end, length):
        warmup = min(overlap, start - first)
        segments.append(Span(start, min(end, start + length), warmup))
    return segments


class SeamMerger:
    """Collects each segment's outputs and releases finished frames in order.

    A frame in the warm-up [warmup_start, start) of segment j is rendered twice: segment j-1's
    output is cross-faded into segment j's there (span.crossfade), so the newcomer's chain,
    cold at first, takes over gradually.
    """

    def __init__(self, segments: list[Span]):
        self.segments = segments
        self._starts = [s.start for s in segments]
        self.next = segments[0].warmup_start if segments else 0
        #: index -> (the frame, {segment: its output}) for frames not released yet
        self._pending: dict[int, tuple[Frame, dict[int, np.ndarray]]] = {}

    def _renderers(self, index: int) -> tuple[int, ...]:
        """The segments that render frame `index`: its own, and the next one in its warm-up."""
        owner = bisect.bisect_right(self._starts, index) - 1
        nxt = owner + 1
        if nxt < len(self.segments) and index >= self.segments[nxt].warmup_start:
            return owner, nxt
        return (owner,)

    def add(self, seg: int, frame: Frame, rgb: np.ndarray) -> list[tuple[np.ndarray, Frame]]:
        """Take segment `seg`'s output for `frame`; return the frames now ready, in order."""
        self._pending.setdefault(frame.index, (frame, {}))[1][seg] = rgb
        ready = []
        while self.next in self._pending:
            done_frame, outputs = self._pending[self.next]
            renderers = self._renderers(self.next)
            if len(outputs) < len(renderers):
                break
            del self._pending[self.next]
            if len(renderers) == 2:
                earlier, later = renderers
                picture = crossfade(
                    outputs[earlier], outputs[later], self.segments[later], self.next
                )
            else:
                picture = outputs[renderers[0]]
            ready.append((picture, done_frame))
            self.next += 1
        return ready

    @property
    def waiting(self) -> int:
        return len(self._pending)


def run(
    plan: RenderPlan, source: Source, stylizer: Stylizer, out: Output, clock: StageClock
) -> int:
    """Run the segments' chains `plan.lanes` at a time in lockstep (lane l renders segments l,
    l + lanes, ...); returns the number of frames processed, warm-up frames included."""
    segments = plan_segments(plan.span, plan.lanes, plan.render.lane_overlap, plan.frame_bytes)
    lanes = plan.lanes
    streams = [_lane(source, segments, lane, lanes) for lane in range(min(lanes, len(segments)))]
    previous: list[torch.Tensor | None] = [None] * len(streams)
    merger = SeamMerger(segments)
    processed = 0
    try:
        active = list(range(len(streams)))
        while active:
            items = {}
            for lane in list(active):
                item = next(streams[lane], None)
                if item is None:
                    active.remove(lane)
                else:
                    items[lane] = item
            if not items:
                break
            t0 = time.perf_counter()
            outputs = _step(stylizer, items, previous)
            clock.add("network", time.perf_counter() - t0)
            processed += len(items)
            for lane, rgb in outputs.items():
                seg, frame, _ = items[lane]
                for ready_rgb, ready_frame in merger.add(seg, frame, rgb):
                    out.put(ready_rgb, ready_frame)
    finally:
        for stream in streams:
            stream.close()
    return processed


def _lane(
    source: Source, segments: list[Span], lane: int, lanes: int
) -> Generator[tuple[int, Frame, ChainLink | None], None, None]:
    """Lane `lane`'s segments one after the other: (segment, frame, flow link)."""
    for seg in range(lane, len(segments), lanes):
        pairs = source.pairs(segments[seg])
        try:
            for frame, link in pairs:
                yield seg, frame, link
        finally:
            pairs.close()


def _step(
    stylizer: Stylizer,
    items: dict[int, tuple[int, Frame, ChainLink | None]],
    previous: list[torch.Tensor | None],
) -> dict[int, np.ndarray]:
    """One network call per kind of frame: cold (first of a chain, after a cut) and warm."""
    cold, warm = [], []
    for lane, (_, _, link) in items.items():
        if link is None or link.cut or previous[lane] is None:
            cold.append(lane)
        else:
            warm.append(lane)
    outputs: dict[int, np.ndarray] = {}
    for group in (cold, warm):
        if not group:
            continue
        x = stylizer.upload([items[lane][1].rgb for lane in group])
        if group is warm:
            inputs = [stylizer.warm_inputs(previous[lane], items[lane][2]) for lane in group]
            carried = torch.cat([w for w, _ in inputs]).to(x.device)
            masks = torch.cat([m for _, m in inputs]).to(x.device)
            raw = stylizer.network(x, carried, masks)
        else:
            raw = stylizer.network(x)
        for i, lane in enumerate(group):
            previous[lane] = raw[i : i + 1]
        finished = stylizer.download(stylizer.finish(raw, x), deep=items[group[0]][1].deep)
        for lane, rgb in zip(group, finished, strict=True):
            outputs[lane] = rgb
    return outputs
