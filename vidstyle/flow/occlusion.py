"""Which pixels a flow can be trusted at: the forward-backward check of Sundaram et al. 2010,
with the constants Ruder et al. 2016 and Lai et al. 2018 use.

With w = flow A->B and ŵ = flow B->A sampled bilinearly (border clamped) at x + w(x), x is occluded
if |w + ŵ|² > 0.01·(|w|² + |ŵ|²) + 0.5 (the flows disagree), or on a motion boundary
|∇u|² + |∇v|² > 0.01·|w|² + 0.002 (forward differences, 0 on the last row/column, as in Lai et al.'s
code). With `check_bounds` (the default), x is also unreliable when x + w(x) falls outside the
frame, i.e. outside [0, W-1] x [0, H-1] where bilinear sampling has both neighbours: clamped
sampling would only copy the border there. Lai et al.'s warping error does not use that rule.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from vidstyle.flow.warp import sample_coords, warp, warp_torch


def _forward_diff_sq(channel: np.ndarray) -> np.ndarray:
    """(∂c/∂x)² + (∂c/∂y)² with forward differences, zero where the neighbour is missing."""
    out = np.zeros_like(channel)
    out[:, :-1] = (channel[:, :-1] - channel[:, 1:]) ** 2
    out[:-1, :] += (channel[:-1, :] - channel[1:, :]) ** 2
    return out


def occlusion_tests(
    flow_ab: np.ndarray, flow_ba: np.ndarray, *, check_bounds: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The two halves of the test (module doc), as boolean (H, W) maps: `inconsistent` (the
    flows disagree, or x + w(x) leaves the frame with `check_bounds`) and `boundary` (motion
    boundary). One pass for callers that need both masks (vidstyle.flow.chain)."""
    w = flow_ab.astype(np.float32, copy=False)
    w_hat = warp(flow_ba.astype(np.float32, copy=False), w)
    # Per-channel arithmetic: numpy reductions over a last axis of length 2 are much slower.
    u, v = w[..., 0], w[..., 1]
    u_hat, v_hat = w_hat[..., 0], w_hat[..., 1]
    w_sq = u * u + v * v
    sum_u, sum_v = u + u_hat, v + v_hat
    inconsistent = (
        sum_u * sum_u + sum_v * sum_v > 0.01 * (w_sq + u_hat * u_hat + v_hat * v_hat) + 0.5
    )
    if check_bounds:
        height, width = w.shape[:2]
        x, y = sample_coords(w)
        inconsistent |= (x < 0) | (x > width - 1) | (y < 0) | (y > height - 1)
    boundary = _forward_diff_sq(u) + _forward_diff_sq(v) > 0.01 * w_sq + 0.002
    return inconsistent, boundary


def reliability_mask(
    flow_ab: np.ndarray, flow_ba: np.ndarray, *, check_bounds: bool = True
) -> np.ndarray:
    """float32 (H, W) in {0, 1}: 1 where the flow from A is trustworthy (see the module doc)."""
    inconsistent, boundary = occlusion_tests(flow_ab, flow_ba, check_bounds=check_bounds)
    return (~(inconsistent | boundary)).astype(np.float32)


def reliability_mask_torch(
    flow_ab: torch.Tensor, flow_ba: torch.Tensor, *, check_bounds: bool = True
) -> torch.Tensor:
    """Torch twin of `reliability_mask`: flows (N, 2, H, W) -> mask (N, 1, H, W) in {0, 1}."""
    dtype = torch.float64 if flow_ab.dtype == torch.float64 else torch.float32
    w = flow_ab.to(dtype)
    w_hat = warp_torch(flow_ba.to(dtype), w)
    w_sq = w.pow(2).sum(1, keepdim=True)
    disagree = (w + w_hat).pow(2).sum(1, keepdim=True) > 0.01 * (
        w_sq + w_hat.pow(2).sum(1, keepdim=True)
    ) + 0.5
    dx = F.pad(w[..., :, :-1] - w[..., :, 1:], (0, 1, 0, 0))
    dy = F.pad(w[..., :-1, :] - w[..., 1:, :], (0, 0, 0, 1))
    grad_sq = (dx.pow(2) + dy.pow(2)).sum(1, keepdim=True)
    occluded = disagree | (grad_sq > 0.01 * w_sq + 0.002)
    if check_bounds:
        height, width = w.shape[-2:]
        xs = torch.arange(width, device=w.device, dtype=dtype).view(1, 1, 1, width)
        ys = torch.arange(height, device=w.device, dtype=dtype).view(1, 1, height, 1)
        x = xs + w[:, 0:1]
        y = ys + w[:, 1:2]
        occluded = occluded | (x < 0) | (x > width - 1) | (y < 0) | (y > height - 1)
    return (~occluded).to(flow_ab.dtype if flow_ab.is_floating_point() else torch.float32)


def zero_border(mask: np.ndarray, width: int = 4) -> np.ndarray:
    """Mark a band along the frame edge unreliable (in place; returns the mask).

    Flow is least trustworthy at the frame edge (content enters and leaves there), and whatever
    the network paints against its padding there would otherwise be carried and reinforced frame
    after frame into a visible line along the edge.
    """
    if width > 0:
        mask[:width] = 0
        mask[-width:] = 0
        mask[:, :width] = 0
        mask[:, -width:] = 0
    return mask
