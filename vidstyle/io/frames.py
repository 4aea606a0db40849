"""The frame record passed between the readers, the pipeline and the writers."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np


@dataclass
class Frame:
    index: int  # 0-based position in the source, presentation order
    pts: int | None  # in time_base units (the source's own timestamps)
    time_base: Fraction
    #: (H, W, 3), upright, at the reader's (working) size: uint8 from 8-bit sources; float32
    #: in the working space (io/working_space.py) from deeper or float sources, when the reader
    #: was asked for depth
    rgb: np.ndarray
    #: the same picture at the output size, when the reader was asked for both (the network
    #: paints `rgb`, the result is scaled to this size and takes its detail from it)
    full: np.ndarray | None = None
    #: (H, W) alpha at the output size, in the source's own depth (uint8, uint16 or float32),
    #: when the source has alpha and the reader was asked for it: passed to the writer untouched
    alpha: np.ndarray | None = None
    #: the frame number in the source's file name (image sequences), else None
    number: int | None = None

    @property
    def deep(self) -> bool:
        """True when the picture is float (more than 8 bits, or scene-linear)."""
        return self.rgb.dtype != np.uint8

    @property
    def time(self) -> float:
        """Seconds (0.0 when the source has no timestamp for this frame)."""
        return float(self.pts * self.time_base) if self.pts is not None else 0.0


def fit_size(width: int, height: int, max_side: int | None, multiple: int = 2) -> tuple[int, int]:
    """The size to process at: same aspect, long side <= `max_side` (None/0: no limit), both
    sides rounded to `multiple` (to the nearest, but never above `max_side`, never below
    `multiple`). `multiple=1` keeps an unlimited size exactly."""
    if width <= 0 or height <= 0:
        raise ValueError(f"invalid size {width}x{height}")
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    scale = 1.0
    if max_side and max(width, height) > max_side:
        scale = max_side / max(width, height)

    def snap(v: float) -> int:
        n = max(multiple, int(v / multiple + 0.5) * multiple)  # halves round up
        if max_side and n > max_side:
            n = max(multiple, (max_side // multiple) * multiple)
        return int(n)

    return snap(width * scale), snap(height * scale)
