"""The stylized frame at the output's size.

The network works at the preset's size (`render.max_side`); the deliverable is the source's
size unless the user asks for a smaller one. Bicubic resampling scales the paint up (OpenCV's
Lanczos costs several times as much for no visible gain on painted strokes).
Where the original is mixed in (`--strength` below 1) it was mixed at the working size, so its
share gets back the detail the working size lost, from the full-size source frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from vidstyle.io import Frame


def to_output(paint: np.ndarray, frame: Frame, strength: float = 1.0) -> np.ndarray:
    """`paint` (the finished frame at the working size) at the size of `frame.full`."""
    full = frame.full
    if full is None or full.shape == paint.shape:
        return paint
    size = (full.shape[1], full.shape[0])
    up = cv2.resize(paint, size, interpolation=cv2.INTER_CUBIC)
    if strength >= 1.0:
        return up
    base = cv2.resize(frame.rgb, size, interpolation=cv2.INTER_CUBIC)
    detail = full.astype(np.float32) - base.astype(np.float32)
    out = up.astype(np.float32) + (1.0 - strength) * detail
    if paint.dtype != np.uint8:  # deep: working values, kept as they are
        return out
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
