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
from vidstyle.flow.occlusion import occlusion_tests, zero_border
from vidstyle.flow.scenecut import is_scene_cut


@dataclass
class ChainLink:
    """Flow from frame t back to t-1, where it can be trusted, and whether t starts a shot."""

    back: np.ndarray  # float32 (h, w, 2) at flow resolution: frame t(x) ~ frame t-1(x + back(x))
    mask: np.ndarray  # float32 (h, w) in {0, 1}: consistent and off motion boundaries
    cut: bool
    # float32 (h, w) in {0, 1}: forward-backward consistent, motion boundaries allowed (what the
    # carry blend uses, see link_to_previous); None = same as `mask`
    consistent: np.ndarray | None = None

    def at_size(
        self, width: int, height: int, *, boundaries: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """(flow, mask) scaled to a frame of `width` x `height` (flow magnitudes per axis).
        `boundaries=False`: the `consistent` mask, which keeps motion boundaries."""
        mask = self.mask if boundaries or self.consistent is None else self.consistent
        if mask.shape[:2] == (height, width):
            return self.back, mask
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)
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
    """Backward flow, its reliability masks (edge band cleared) and the scene-cut decision, at
    the size of the frames given (pass them through `shrink` first).

    Two masks from one test: `mask` (Ruder et al.: consistent and off motion boundaries) trains
    and feeds the warm network; `consistent` leaves motion boundaries in, for the carry blend.
    The boundary rule flags a band several px wide wherever the flow changes (DIS flow is
    smooth across object edges, and non-rigid motion has boundaries inside objects); with it the
    carry repaints that band from scratch every frame, a flickering halo around everything that
    moves (README, How it works: the warping error with and without it). Where the two flows
    agree there, carrying is right.
    """
    back, forward = bidirectional_flow(estimator, frame, previous)
    inconsistent, boundary = occlusion_tests(back, forward)
    band = max(1, max(back.shape[:2]) // 160)
    consistent = zero_border((~inconsistent).astype(np.float32), width=band)
    mask = consistent * ~boundary
    cut = detect_cuts and is_scene_cut(frame, previous, back, mask)
    if cut:
        mask[:] = 0
        consistent[:] = 0
    return ChainLink(back, mask, bool(cut), consistent)
