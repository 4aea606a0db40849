"""Warm mode with several chains side by side ("lanes"), batched through the network.

The warm start is a recurrence: frame t needs the stylized frame t-1, so one chain feeds the
network one frame at a time, which leaves a GPU mostly idle. Lanes break the recurrence the way
the farm does: the video is cut into segments, each segment's chain starts `overlap` frames
early (so its first kept frame already has temporal context) and its warm-up frames are
cross-faded with the end of the segment before it, so seams do not jump. `lanes` chains run in
lockstep, one segment each at a time, and every step is one batched network call.

Memory stays bounded whatever the video's length: outputs of segments that are ahead of the one
being written wait in memory, at most about `lanes` segments of frames, and segments are sized
from a byte budget.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from vidstyle.flow import ChainLink
from vidstyle.io import Frame
from vidstyle.pipeline.stages import StageClock
from vidstyle.pipeline.stylizer import Stylizer

#: Bytes of finished frames that may wait for earlier segments (sets the segment length).
PENDING_BUDGET = 2 << 30


@dataclass(frozen=True)
class Segment:
    """Frames [start, end) are this segment's; its chain starts at `warmup_start` <= start and
    frames [warmup_start, start) are cross-faded with the previous segment's last frames."""

    start: int
    end: int
    warmup_start: int

    @property
    def warmup(self) -> int:
        return self.start - self.warmup_start


def plan_segments(
    first: int, end: int, lanes: int, overlap: int, frame_bytes: int
) -> list[Segment]:
    """Equal segments over [first, end), as long as the memory budget allows (so the lanes stay
    in lockstep and each lane's chain is as long as possible), never shorter than 4 x overlap
    (warm-up frames are extra work). One lane: the whole range is one segment."""
    total = end - first
    if lanes <= 1:  # one chain: nothing waits, so no reason to cut it
        return [Segment(first, end, first)]
    by_memory = PENDING_BUDGET // ((lanes - 1) * frame_bytes)  # what lanes 2.. hold back
    length = max(4 * overlap, 1, min(math.ceil(total / max(1, lanes)), by_memory))
    segments = []
    for start in range(first, end, length):
        warm_from = max(first, start - overlap) if start > first else start
        segments.append(Segment(start, min(end, start + length), warm_from))
    return segments


class SeamMerger:
    """Collects each segment's outputs and releases finished frames in order.

    A frame in the overlap [warmup_start, start) of segment j is the mix of segment j-1's output
    (weight 1 - a) and segment j's (weight a), a rising from 1/(K+1) to K/(K+1) over the K
    warm-up frames: the newcomer's chain, cold at first, takes over gradually.
    """

    def __init__(self, segments: list[Segment]):
        self.segments = segments
        self._starts = [s.start for s in segments]
        self.next = segments[0].warmup_start if segments else 0
        self._pending: dict[int, list] = {}  # index -> [received, total weight, sum, frame]

    def _weight(self, seg: int, index: int) -> float:
        s = self.segments[seg]
        if index < s.start:  # this segment's warm-up
            return (index - s.warmup_start + 1) / (s.warmup + 1)
        if seg + 1 < len(self.segments):
            nxt = self.segments[seg + 1]
            if index >= nxt.warmup_start:
                return 1.0 - (index - nxt.warmup_start + 1) / (nxt.warmup + 1)
        return 1.0

    def _shares(self, index: int) -> int:
        """How many segments render frame `index` (2 inside an overlap)."""
        owner = bisect.bisect_right(self._starts, index) - 1
        nxt = owner + 1
        return 2 if nxt < len(self.segments) and index >= self.segments[nxt].warmup_start else 1

    def add(self, seg: int, frame: Frame, rgb: np.ndarray) -> list[tuple[np.ndarray, Frame]]:
        """Take segment `seg`'s output for `frame`; return the frames now ready, in order."""
        index = frame.index
        weight = self._weight(seg, index)
        entry = self._pending.get(index)
        if entry is None:
            entry = self._pending[index] = [0, 0.0, None, frame]
        contribution = rgb.astype(np.float32) * weight if weight != 1.0 else rgb
        entry[0] += 1
        entry[1] += weight
        entry[2] = contribution if entry[2] is None else entry[2] + contribution
        ready = []
        while self.next in self._pending:
            received, _, total, done_frame = self._pending[self.next]
            if received < self._shares(self.next):
                break
            del self._pending[self.next]
            if total.dtype != np.uint8 and not done_frame.deep:
                total = np.clip(np.rint(total), 0, 255).astype(np.uint8)
            ready.append((total, done_frame))
            self.next += 1
        return ready

    @property
    def waiting(self) -> int:
        return len(self._pending)


def lanes_loop(
    pairs_for: Callable[[Segment], Iterator[tuple[Frame, ChainLink | None]]],
    segments: list[Segment],
    lanes: int,
    stylizer: Stylizer,
    clock: StageClock,
    emit: Callable[[np.ndarray, Frame], None],
    on_cut: Callable[[int], None],
) -> int:
    """Run the segments' chains `lanes` at a time in lockstep; returns frames processed.

    `pairs_for(segment)` yields the segment's frames from its warm-up start with the flow link
    to the previous frame (None for its first frame). Lane l renders segments l, l + lanes, ...
    """
    streams = [_lane(pairs_for, segments, lane, lanes) for lane in range(min(lanes, len(segments)))]
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
            outputs = _step(stylizer, items, previous, on_cut)
            clock.add("network", time.perf_counter() - t0)
            processed += len(items)
            for lane, rgb in outputs.items():
                seg, frame, _ = items[lane]
                for ready_rgb, ready_frame in merger.add(seg, frame, rgb):
                    emit(ready_rgb, ready_frame)
    finally:
        for stream in streams:
            stream.close()
    return processed


def _lane(pairs_for, segments: list[Segment], lane: int, lanes: int):
    for seg in range(lane, len(segments), lanes):
        pairs = pairs_for(segments[seg])
        try:
            for frame, link in pairs:
                yield seg, frame, link
        finally:
            pairs.close()


def _step(
    stylizer: Stylizer,
    items: dict[int, tuple[int, Frame, ChainLink | None]],
    previous: list[torch.Tensor | None],
    on_cut: Callable[[int], None],
) -> dict[int, np.ndarray]:
    """One network call per kind of frame: cold (first of a chain, after a cut) and warm."""
    cold, warm = [], []
    for lane, (_, frame, link) in items.items():
        if link is not None and link.cut:
            on_cut(frame.index)
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
