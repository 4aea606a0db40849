"""What the warm-start chain needs between two consecutive frames, computed in one place.

The frame loop, the adaptation data and the benchmarks all use this, so training and inference
see exactly the same flow, mask and scene-cut decisions. Everything is computed, and kept, at
the flow working resolution (long side <= `max_side`): at 4K a full-size flow field is 66 MB
per direction, the small one under 3 MB, and it is only scaled up when a frame is warped.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vidstyle.flow.base import FlowEstimator, bidirectional_flow, resize_flow, scaled_size
from vidstyle.flow.occlusion import reliability_mask, zero_border
from vidstyle.flow.scenecut import is_scene_cut


@dataclass
class ChainLink:
    """Flow from frame t back to t-1, where it can be trusted, and whether t starts a shot."""

    back: np.ndarray  # float32 (h, w, 2) at flow resolution: frame t(x) ~ frame t-1(x + back(x))
    mask: np.ndarray  # float32 (h, w) in {0, 1}
    cut: bool

    def at_size(self, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """(flow, mask) scaled to a frame of `width` x `height` (flow magnitudes per axis)."""
        if self.mask.shape[:2] == (height, width):
            return self.back, self.mask
        mask = cv2.resize(self.mask, (width, height), interpolation=cv2.INTER_LINEAR)
        return resize_flow(self.back, (width, height)), mask


def shrink(frame: np.ndarray, max_side: int | None) -> np.ndarray:
    """The frame at flow working resolution (long side <= max_side)."""
    height, width = frame.shape[:2]
    size = scaled_size(width, height, max_side)
    if size == (width, height):
        return frame
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def link_to_previous(
    estimator: FlowEstimator,
    frame: np.ndarray,
    previous: np.ndarray,
    detect_cuts: bool = True,
) -> ChainLink:
    """Backward flow, its reliability mask (edge band cleared) and the scene-cut decision, at the
    size of the frames given (pass them through `shrink` first)."""
    back, forward = bidirectional_flow(estimator, frame, previous)
    mask = zero_border(reliability_mask(back, forward), width=max(1, max(back.shape[:2]) // 160))
    cut = detect_cuts and is_scene_cut(frame, previous, back, mask)
    if cut:
        mask[:] = 0
    return ChainLink(back, mask, bool(cut))
