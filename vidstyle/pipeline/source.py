"""The decode and flow stages: the frames of any span of the source, each with its motion back
to the frame before.

A decode thread reads ahead into a bounded queue, and a small thread pool computes the optical
flow of coming frame pairs (flow depends only on the input, so it runs ahead of the network).
Flow and scene-cut detection work on 8-bit pictures at most `flow_max_side` px.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator

import numpy as np

from vidstyle.flow import ChainLink, link_to_previous, make_flow, shrink
from vidstyle.io import Frame, open_reader
from vidstyle.io.images import to_uint8
from vidstyle.pipeline.job import RenderPlan
from vidstyle.pipeline.span import Span
from vidstyle.pipeline.stages import Prefetch, StageClock, ordered_map

#: A frame with its flow link back to the frame before (None: the first of its span).
Pair = tuple[Frame, ChainLink | None]


class Source:
    """Decode (`frames`) and decode + flow (`pairs`) for one render."""

    def __init__(self, plan: RenderPlan, clock: StageClock):
        self.plan = plan
        self.clock = clock
        #: scene cuts the flow found, in the order the network stage took their frames
        self.cuts: list[int] = []

    def frames(self, span: Span) -> Prefetch[Frame]:
        """The span's frames from its warm-up start, decoded ahead in a thread; close() it."""
        plan, job = self.plan, self.plan.job
        reader = open_reader(
            str(job.source), rate=job.rate, size=plan.out_size, work_size=plan.size,
            start_index=span.warmup_start, end_index=span.end, deep=plan.deep,
            alpha=plan.info.has_alpha, space=plan.space,
        )  # fmt: skip
        return Prefetch(
            self.clock.timed("decode", reader), depth=plan.depth, name="decode", owns=reader
        )

    def pairs(self, span: Span, batch: int = 0) -> Generator[Pair, None, None]:
        """The span's frames from its warm-up start, each with the flow link to the frame before
        (None for the first). A consumer that takes frames `batch` at a time gets that many more
        flows started ahead, or it would wait for flows never started. close() it."""
        decoded = self.frames(span)
        try:
            yield from self._linked(iter(decoded), self.plan.flow_workers, batch)
        finally:
            decoded.close()

    def _linked(self, frames: Iterator[Frame], workers: int, batch: int) -> Iterator[Pair]:
        render = self.plan.render
        estimator = make_flow(render.flow, max_side=None)  # frames arrive pre-shrunk

        def shrunk() -> Iterator[tuple[Frame, np.ndarray, np.ndarray | None]]:
            previous = None
            for frame in frames:
                small = shrink(frame.rgb, render.flow_max_side)
                if small.dtype != np.uint8:  # deep frames: flow and cut detection in 8 bits
                    small = to_uint8(small)
                yield frame, small, previous
                previous = small

        def link(item: tuple[Frame, np.ndarray, np.ndarray | None]) -> ChainLink | None:
            _, small, previous = item
            if previous is None:
                return None
            start = time.perf_counter()
            found = link_to_previous(estimator, small, previous, render.scene_cut)
            self.clock.add("flow", time.perf_counter() - start)
            return found

        for (frame, _, _), found in ordered_map(link, shrunk(), workers, 2 * workers + batch):
            if found is not None and found.cut and frame.index not in self.cuts:
                self.cuts.append(frame.index)
            yield frame, found
