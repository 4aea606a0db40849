"""A span of frames with its warm-up, and the cross-fade that joins two spans' chains.

Warm and carry modes run a chain: each stylized frame depends on the one before. A chain cut
into spans (warm lanes on one machine, chunks on a farm, a render of part of a shot) starts each
span's chain `warmup` frames early, so its first kept frame already has temporal context. Two
chains started at different frames do not converge, though: where one span's warm-up is also
written, the span before fades into it over those frames, so the seam does not jump.

Light on purpose (no torch): the farm's job plan holds its chunks as spans.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Span:
    """Source frames [start, end) (0-based), whose chain starts `warmup` frames earlier, at
    `warmup_start`: frames [warmup_start, start) are run for temporal context only (or, in a
    cross-fade, faded into from the span before)."""

    start: int
    end: int
    warmup: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.warmup <= self.start:
            raise ValueError(f"a span starting at {self.start} can't warm up {self.warmup} frames")

    @property
    def warmup_start(self) -> int:
        return self.start - self.warmup


def crossfade(earlier: np.ndarray, later: np.ndarray, span: Span, index: int) -> np.ndarray:
    """Frame `index` of `span`'s warm-up, where the span before's output (`earlier`) and this
    span's (`later`) overlap: this span's share rises linearly, 1/(K+1) .. K/(K+1) over its K
    warm-up frames, so its chain, cold at first, takes over gradually. uint8 pictures come back
    rounded to uint8; float (deep) ones stay float."""
    weight = (index - span.warmup_start + 1) / (span.warmup + 1)
    mixed = earlier.astype(np.float32) * (1 - weight) + later.astype(np.float32) * weight
    if later.dtype == np.uint8:
        return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return mixed
