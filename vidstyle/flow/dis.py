"""DIS optical flow (Kroeger et al. 2016, OpenCV): the default estimator, fast on a CPU, no weights.

Flow is computed on gray frames at a working resolution (long side <= `max_side`) and resized back
to the frame size with per-axis rescaled magnitudes: flow is smooth, so a 512-px working size keeps
almost all of its accuracy for warm starts while costing a fraction of full-resolution DIS.
"""

from __future__ import annotations

import threading
from typing import Any

import cv2
import numpy as np

from vidstyle.errors import ConfigError
from vidstyle.flow.base import check_pair, resize_flow, scaled_size

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
MIN_SIDE = 16  # DIS refuses images whose sides are both under 12 px


def to_gray(frame: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> gray uint8 (H, W); a gray frame passes through."""
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[..., 0]
    if frame.ndim == 2:
        gray = frame
    elif frame.ndim == 3 and frame.shape[2] == 3:
        gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    else:
        raise ValueError(f"expected an RGB (H, W, 3) or gray (H, W) frame, got shape {frame.shape}")
    if gray.dtype != np.uint8:
        raise ValueError(f"DIS flow needs uint8 frames, got {gray.dtype}")
    return np.ascontiguousarray(gray)


class DISFlow:
    """Dense Inverse Search flow A->B for RGB uint8 frames, float32 (H, W, 2) in frame pixels.

    Thread-safe: each thread gets its own cv2 DIS instance (they keep internal buffers and are not
    thread-safe), and OpenCV releases the GIL, so several pairs can run in a thread pool.
    """

    def __init__(self, preset: str = "medium", max_side: int | None = 512):
        if preset not in PRESETS:
            raise ConfigError(f"unknown DIS preset {preset!r} (choose from {', '.join(PRESETS)})")
        if max_side is not None and max_side < MIN_SIDE:
            raise ConfigError(f"DIS max_side must be at least {MIN_SIDE} px, got {max_side}")
        self.preset = preset
        self.max_side = max_side
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"DISFlow(preset={self.preset!r}, max_side={self.max_side})"

    # threading.local can't be pickled; a copy sent to another process makes its own instances.
    def __getstate__(self) -> dict[str, Any]:
        return {"preset": self.preset, "max_side": self.max_side}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)

    def _dis(self) -> cv2.DISOpticalFlow:
        dis = getattr(self._local, "dis", None)
        if dis is None:
            dis = self._local.dis = cv2.DISOpticalFlow_create(PRESETS[self.preset])
        return dis

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        check_pair(a, b)
        height, width = a.shape[:2]
        work = scaled_size(width, height, self.max_side)
        if min(work) < MIN_SIDE:  # OpenCV's DIS crashes on slivers (e.g. 128x8): enlarge them
            grow = MIN_SIDE / min(work)
            work = (max(MIN_SIDE, round(work[0] * grow)), max(MIN_SIDE, round(work[1] * grow)))
        gray_a, gray_b = to_gray(a), to_gray(b)
        if work != (width, height):
            shrink = work[0] * work[1] < width * height
            interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
            gray_a = cv2.resize(gray_a, work, interpolation=interp)
            gray_b = cv2.resize(gray_b, work, interpolation=interp)
        # Passing None (not a previous flow) so DIS never silently reuses an initial flow.
        flow = self._dis().calc(gray_a, gray_b, None)
        return resize_flow(flow, (width, height))
