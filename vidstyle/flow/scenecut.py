"""Hard-cut detection between consecutive frames, so warm starts and temporal losses reset at cuts.

Two signals must agree, because each alone fires on ordinary footage:
- colour change: max of the Bhattacharyya distances between the HSV huexsaturation (16x8 bins) and
  value (16 bins) histograms of 160-px thumbnails. The value histogram catches cuts in gray
  footage; fast pans and handheld shake change it by < 0.16 on our clips, cuts by > 0.26.
- no motion explains the change: the fraction of reliable pixels (forward-backward check) of the
  flow between the frames is < 0.3. Cuts give < 0.14; motion of any speed DIS can follow gives
  > 0.45; pans too fast for DIS (a fifth of the frame per frame) fall low, but keep their colours.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vidstyle.flow.base import check_pair, resize_flow, scaled_size
from vidstyle.flow.dis import DISFlow
from vidstyle.flow.occlusion import reliability_mask

THUMB_SIDE = 160
HIST_THRESHOLD = 0.2
RELIABLE_THRESHOLD = 0.3

_thumb_flow = DISFlow("medium", max_side=None)  # thread-safe: one cv2 instance per thread


@dataclass(frozen=True)
class SceneCutScore:
    hist_distance: float  # 0 = same colour distribution, 1 = disjoint
    reliable_fraction: float  # fraction of pixels whose flow passes the forward-backward check

    @property
    def is_cut(self) -> bool:
        return self.hist_distance > HIST_THRESHOLD and self.reliable_fraction < RELIABLE_THRESHOLD


def _thumb(frame: np.ndarray) -> np.ndarray:
    height, width = frame.shape[:2]
    size = scaled_size(width, height, THUMB_SIDE)
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    return cv2.resize(np.ascontiguousarray(frame), size, interpolation=cv2.INTER_AREA)


def _hists(thumb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    hsv = cv2.cvtColor(thumb, cv2.COLOR_RGB2HSV)
    hs = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256])
    v = cv2.calcHist([hsv], [2], None, [16], [0, 256])
    return hs / max(hs.sum(), 1.0), v / max(v.sum(), 1.0)


def scene_cut_score(
    a: np.ndarray,
    b: np.ndarray,
    flow_ab: np.ndarray | None = None,
    mask: np.ndarray | None = None,
) -> SceneCutScore:
    """Both signals for frames A -> B (RGB uint8). `mask` (a reliability mask of the flow between
    them, any direction) is used as it is; else `flow_ab` (frame size) saves the forward flow; else
    both flows are computed with DIS on the thumbnails (cheap at that size)."""
    check_pair(a, b)
    ta, tb = _thumb(a), _thumb(b)
    (hs_a, v_a), (hs_b, v_b) = _hists(ta), _hists(tb)
    dist = max(
        cv2.compareHist(hs_a, hs_b, cv2.HISTCMP_BHATTACHARYYA),
        cv2.compareHist(v_a, v_b, cv2.HISTCMP_BHATTACHARYYA),
    )
    if mask is not None:
        reliable = float(np.mean(mask))
    else:
        size = (ta.shape[1], ta.shape[0])
        fwd = resize_flow(flow_ab, size) if flow_ab is not None else _thumb_flow(ta, tb)
        reliable = float(reliability_mask(fwd, _thumb_flow(tb, ta)).mean())
    return SceneCutScore(hist_distance=float(dist), reliable_fraction=reliable)


def is_scene_cut(
    a: np.ndarray,
    b: np.ndarray,
    flow_ab: np.ndarray | None = None,
    mask: np.ndarray | None = None,
) -> bool:
    """True at a hard cut between consecutive frames A and B (see the module doc for the rule)."""
    return scene_cut_score(a, b, flow_ab, mask).is_cut
