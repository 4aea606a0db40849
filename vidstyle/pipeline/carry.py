"""`--temporal carry`: frames painted in batches, the previous output carried along the flow.

The network's paint of frame t does not depend on the output for frame t-1, so frames go
through the network in batches, as in the frame-parallel modes. Only the blend is sequential
(a warp and the blend of pipeline/contrast.py, cheap next to the network), so this mode needs
no lanes and has no seams: one chain over the whole range on any device, restarted at scene
cuts.
"""

from __future__ import annotations

import time

import torch

from vidstyle.pipeline.job import RenderPlan, can_paint_ahead
from vidstyle.pipeline.output import Output
from vidstyle.pipeline.source import Pair, Source
from vidstyle.pipeline.stages import StageClock, batched, ordered_map
from vidstyle.pipeline.stylizer import Stylizer


def run(
    plan: RenderPlan, source: Source, stylizer: Stylizer, out: Output, clock: StageClock
) -> int:
    """Stylize the plan's frames in order, one chain; returns the number of frames processed.

    The paint does not depend on the chain: unless memory is short, a worker thread paints the
    next batch while this thread blends, finishes and hands over the current one."""
    paint_ahead = can_paint_ahead(plan.cuda, plan.batch, plan.size)
    previous: torch.Tensor | None = None
    processed = 0

    def paint(batch: list[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
        t0 = time.perf_counter()
        x = stylizer.upload([frame.rgb for frame, _ in batch])
        painted = stylizer.network(x)
        clock.add("network", time.perf_counter() - t0)
        return x, painted

    pairs = source.pairs(plan.span, batch=plan.batch)
    try:
        batches = batched(pairs, max(1, plan.batch))
        for batch, (x, painted) in ordered_map(paint, batches, 1, ahead=2 if paint_ahead else 1):
            t1 = time.perf_counter()
            outputs = []
            for i, (_, link) in enumerate(batch):
                output = painted[i : i + 1]
                if link is not None and not link.cut and previous is not None:
                    output = stylizer.carry(output, previous, link)
                outputs.append(output)
                previous = output
            t2 = time.perf_counter()
            # (one expression: the finished batch on the device is freed at once)
            pictures = stylizer.download(stylizer.finish(torch.cat(outputs), x), batch[0][0].deep)
            clock.add("carry", t2 - t1)
            clock.add("finish", time.perf_counter() - t2)
            processed += len(batch)
            for picture, (frame, _) in zip(pictures, batch, strict=True):
                out.put(picture, frame)
    finally:
        pairs.close()
    return processed
