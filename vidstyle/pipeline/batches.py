"""`--temporal loss-only` and `off`: frames are independent (no flow, no chain), so they go
through the network in batches."""

from __future__ import annotations

import time

from vidstyle.pipeline.job import RenderPlan
from vidstyle.pipeline.output import Output
from vidstyle.pipeline.source import Source
from vidstyle.pipeline.stages import StageClock, batched
from vidstyle.pipeline.stylizer import Stylizer


def run(
    plan: RenderPlan, source: Source, stylizer: Stylizer, out: Output, clock: StageClock
) -> int:
    """Stylize the plan's frames `plan.batch` at a time; returns the number of frames processed."""
    decoded = source.frames(plan.span)
    processed = 0
    try:
        for batch in batched(iter(decoded), plan.batch):
            t0 = time.perf_counter()
            x = stylizer.upload([frame.rgb for frame in batch])
            # (one expression: the batch's network output is freed at once)
            pictures = stylizer.download(stylizer.finish(stylizer.network(x), x), batch[0].deep)
            clock.add("network", time.perf_counter() - t0)
            processed += len(batch)
            for picture, frame in zip(pictures, batch, strict=True):
                out.put(picture, frame)
    finally:
        decoded.close()
    return processed
