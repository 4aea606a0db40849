"""The flow-estimator interface and the helpers every estimator shares.

Flow convention (notes/CONVENTIONS.md): float32 (H, W, 2) in pixels, channel 0 = dx, channel 1 = dy;
flow "from A to B" means A(x) ~= B(x + flow(x)).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from vidstyle.errors import ModelError


class FlowError(ModelError):
    """A flow estimator can't be built (e.g. its weights file is missing); names the file."""


@runtime_checkable
class FlowEstimator(Protocol):
    """Anything that maps two RGB uint8 (H, W, 3) frames to the float32 (H, W, 2) flow A->B."""

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray: ...


def check_pair(a: np.ndarray, b: np.ndarray) -> None:
    """Both frames must be images of one size: a flow between different sizes has no meaning."""
    if a.ndim not in (2, 3) or a.shape[:2] != b.shape[:2]:
        raise ValueError(f"flow needs two frames of one size, got {a.shape} and {b.shape}")


def scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(w, h) with the long side at most `max_side`, aspect kept; unchanged when already small."""
    long_side = max(width, height)
    if max_side is None or long_side <= max_side:
        return width, height
    scale = max_side / long_side
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a (h, w, 2) flow field to `size` = (W, H), rescaling each axis's magnitudes.

    A displacement of d pixels at width w is d·W/w pixels at width W (per axis: x by W/w, y by H/h),
    so the vectors must be scaled, not only the field resampled.
    """
    h, w = flow.shape[:2]
    width, height = size
    if (w, h) == (width, height):
        return flow.astype(np.float32, copy=False)
    out = cv2.resize(
        flow.astype(np.float32, copy=False), (width, height), interpolation=cv2.INTER_LINEAR
    )
    out[..., 0] *= width / w
    out[..., 1] *= height / h
    return out


def resize_flow_torch(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Torch twin of `resize_flow`: (N, 2, h, w) -> (N, 2, H, W) with `size` = (W, H)."""
    h, w = flow.shape[-2:]
    width, height = size
    if (w, h) == (width, height):
        return flow
    out = F.interpolate(flow, size=(height, width), mode="bilinear", align_corners=False)
    scale = torch.tensor([width / w, height / h], device=flow.device, dtype=out.dtype)
    return out * scale.view(1, 2, 1, 1)


def bidirectional_flow(
    estimator: FlowEstimator, a: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(flow a->b, flow b->a): the pair the forward-backward occlusion check needs."""
    return estimator(a, b), estimator(b, a)
