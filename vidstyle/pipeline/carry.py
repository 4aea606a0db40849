"""`--temporal carry`: frames painted in batches, the previous output carried along the flow.

The network's paint of frame t does not depend on the output for frame t-1, so frames go
through the network in batches, as in the frame-parallel modes. Only the blend is sequential,
and it is cheap (a warp, a three-band blend and a contrast restore: ~4 ms per 384x216 frame on
one CPU core, see models/contrast.py). So this mode needs no lanes and has no seams: one chain
over the whole range on any device, restarted at scene cuts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np
import torch

from vidstyle.flow import ChainLink
from vidstyle.io import Frame
from vidstyle.pipeline.stages import StageClock, batched, ordered_map
from vidstyle.pipeline.stylizer import Stylizer


def carry_loop(
    pairs: Iterator[tuple[Frame, ChainLink | None]],
    stylizer: Stylizer,
    batch_size: int,
    clock: StageClock,
    emit: Callable[[np.ndarray, Frame], None],
    on_cut: Callable[[int], None],
    paint_ahead: bool = True,
) -> int:
    """Stylize `pairs` (each frame with its flow link to the one before, None for the first)
    in order; returns the number of frames processed. `paint_ahead`: a worker thread paints the
    next batch while this one blends (one more batch of frames in memory)."""
    previous: torch.Tensor | None = None
    processed = 0

    def paint(batch: list[tuple[Frame, ChainLink | None]]) -> tuple[torch.Tensor, torch.Tensor]:
        t0 = time.perf_counter()
        x = stylizer.upload([frame.rgb for frame, _ in batch])
        painted = stylizer.network(x)
        clock.add("network", time.perf_counter() - t0)
        return x, painted

    # The paint does not depend on the chain: a worker paints the next batch while this thread
    # blends, finishes and hands over the current one (2 CPU cores: 0.99x -> 1.18x the naive loop).
    batches = batched(pairs, max(1, batch_size))
    for batch, (x, painted) in ordered_map(paint, batches, 1, ahead=2 if paint_ahead else 1):
        t1 = time.perf_counter()
        outputs = []
        for i, (frame, link) in enumerate(batch):
            out = painted[i : i + 1]
            if link is not None and link.cut:
                on_cut(frame.index)
            elif link is not None and previous is not None:
                out = stylizer.carry(out, previous, link)
            outputs.append(out)
            previous = out
        t2 = time.perf_counter()
        rgbs = stylizer.download(stylizer.finish(torch.cat(outputs), x), deep=batch[0][0].deep)
        clock.add("carry", t2 - t1)
        clock.add("finish", time.perf_counter() - t2)
        processed += len(batch)
        for rgb, (frame, _) in zip(rgbs, batch, strict=True):
            emit(rgb, frame)
    return processed
