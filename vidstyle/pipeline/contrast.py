"""`--temporal carry`'s blend: a carried (warped) stylized frame mixed into a fresh paint
without washing the strokes out.

Mixing two brush-stroke textures pixel by pixel, w·A + (1 - w)·B, keeps their colours but not
their strokes: where A and B are not aligned the strokes partly cancel, local contrast drops by up
to √(w² + (1 - w)²), and a chain that blends every frame washes out. Texture advection in
graphics meets the same problem and answers it by restoring the blend's local variance (Neyret
2003, "Advected textures"; Yu et al. 2011, "Lagrangian texture advection"; Heitz & Neyret 2018):
keep the blend's local mean, scale its detail so its local standard deviation matches the fresh
paint's. The gain is a smooth field (local statistics over a Gaussian window), so it does not
flicker.

Two more bands get their own treatment in `carry_blend`: the finest one (1 px) is renewed faster
than the rest, so repeated warps do not soften the strokes, and the coarsest (tone over a wide
window) follows the fresh paint, so fades and lighting changes that the flow does not explain
are not held back by the carry.

One interface, two backends, chosen by the type of the pictures: torch tensors (N, 3, H, W)
on whatever device they live (a CUDA render's frames stay on the GPU), or float32 numpy
(H, W, 3) arrays, blurred with OpenCV (a CPU render: cv2.GaussianBlur beats torch's depthwise
convolutions on the CPU several times over; bench/carry_blend.py times both). Both compute the
same formula on the same coarse grid, and tests hold them to each other.
"""

from __future__ import annotations

import functools
from typing import TypeVar

import cv2
import numpy as np
import torch
from torch.nn import functional as F

#: A picture either backend takes: torch (N, 3, H, W) or numpy float32 (H, W, 3).
Picture = TypeVar("Picture", torch.Tensor, np.ndarray)

DETAIL_SIGMA = 1.0  # px: the band `detail` applies to is what a Gaussian of this sigma removes


def carry_blend(
    paint: Picture,
    carried: Picture,
    mask: Picture,
    carry: float,
    sigma: float,
    detail: float | None = None,
    tone_sigma: float = 0.0,
) -> Picture:
    """Keep `carry` of the carried frame where the flow is reliable (`mask`: (N, 1, H, W) with
    tensors, (H, W) with arrays), repaint the rest, then restore the strokes' contrast over
    `sigma` px (module doc). Values in [0, 1]; the inputs are left as they are.

    `detail`: the share kept of the finest band (what a 1 px Gaussian removes) instead of
    `carry`. Every warp resamples the carried frame and softens its finest strokes a little; a
    chain that keeps much of it goes soft over a shot, and renewing that band faster keeps it
    crisp (and flickers less).
    `tone_sigma`: then move the result's local mean over this window to the fresh paint's, so
    the tone follows fades and lighting at once, as a per-frame render would."""
    if isinstance(paint, torch.Tensor):
        return _carry_blend_torch(paint, carried, mask, carry, sigma, detail, tone_sigma)
    return _carry_blend_cv(paint, carried, mask, carry, sigma, detail, tone_sigma)


def restore_contrast(
    blend: Picture, reference: Picture, sigma: float, max_gain: float = 2.5
) -> Picture:
    """`blend` with its local detail rescaled to `reference`'s local standard deviation.

    Local statistics over a Gaussian window of `sigma` px, averaged over the colour channels (one
    gain per pixel, so hues do not shift). The gain only restores: it is clamped to
    [1, max_gain], so a blend that kept its contrast is returned unchanged."""
    if isinstance(blend, torch.Tensor):
        return _restore_torch(blend, reference, sigma, max_gain)
    return _restore_cv(blend, reference, sigma, max_gain)


# -- shared by both backends ----------------------------------------------------------------


def _stats_scale(sigma: float) -> int:
    """Local statistics over a wide window are smooth: compute them on a grid this many times
    coarser (sigma 8 -> 4x: 16x fewer pixels to blur), then interpolate them back."""
    return max(1, int(sigma // 2))


def _grid_size(h: int, w: int, f: int) -> tuple[int, int]:
    return max(1, -(-h // f)), max(1, -(-w // f))


# -- torch: (N, C, H, W) on any device ------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _kernel(sigma: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    radius = max(1, round(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return (k / k.sum()).to(device=device, dtype=dtype)


def _blur_torch(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur, reflect-padded (replicate for tiny images)."""
    k = _kernel(float(sigma), image.device, image.dtype)
    radius = k.numel() // 2
    c = image.shape[1]
    mode = "reflect" if min(image.shape[-2:]) > radius else "replicate"
    x = F.pad(image, (radius, radius, radius, radius), mode=mode)
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _coarse_mean_torch(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian local mean over `sigma` px, left on the coarse grid of `_stats_scale(sigma)`
    (area-averaged first, so nothing aliases)."""
    f = _stats_scale(sigma)
    small = _grid_size(*image.shape[-2:], f)
    return _blur_torch(F.interpolate(image, size=small, mode="area"), sigma / f)


def _smooth_torch(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """The coarse mean interpolated back to the image's size: a cheap wide Gaussian low-pass."""
    out = _coarse_mean_torch(image, sigma)
    if out.shape[-2:] == image.shape[-2:]:
        return out
    return F.interpolate(out, size=image.shape[-2:], mode="bilinear", align_corners=False)


def _restore_torch(
    blend: torch.Tensor, reference: torch.Tensor, sigma: float, max_gain: float
) -> torch.Tensor:
    h, w = blend.shape[-2:]
    f = _stats_scale(sigma)
    local_mean = functools.partial(_coarse_mean_torch, sigma=sigma)
    mean_b, mean_r = local_mean(blend), local_mean(reference)
    var_b = (local_mean(blend * blend) - mean_b * mean_b).mean(1, True)
    var_r = (local_mean(reference * reference) - mean_r * mean_r).mean(1, True)
    gain = ((var_r.clamp_min(0) + 1e-5) / (var_b.clamp_min(0) + 1e-5)).sqrt()
    gain = gain.clamp(1.0, max_gain)
    if f > 1:
        mean_b = F.interpolate(mean_b, size=(h, w), mode="bilinear", align_corners=False)
        gain = F.interpolate(gain, size=(h, w), mode="bilinear", align_corners=False)
    return (mean_b + (blend - mean_b) * gain).clamp(0.0, 1.0)


def _carry_blend_torch(
    paint: torch.Tensor,
    carried: torch.Tensor,
    mask: torch.Tensor,
    carry: float,
    sigma: float,
    detail: float | None,
    tone_sigma: float,
) -> torch.Tensor:
    paint, carried = paint.float(), carried.float()
    diff = carried - paint
    weight = mask.float()
    if detail is None or detail == carry:
        blend = paint + diff * (carry * weight)
    else:
        coarse = _blur_torch(diff, DETAIL_SIGMA)
        blend = paint + (diff * detail + coarse * (carry - detail)) * weight
    out = _restore_torch(blend, paint, sigma, 2.5) if sigma else blend
    if tone_sigma:
        out = (out + _smooth_torch(paint - out, tone_sigma)).clamp(0.0, 1.0)
    return out


# -- OpenCV: float32 (H, W, C) on the CPU, in place where it saves a frame ------------------


def _blur_cv(image: np.ndarray, sigma: float) -> np.ndarray:
    """`_blur_torch` with OpenCV (same kernel support, reflect)."""
    radius = max(1, round(3 * sigma))
    return cv2.GaussianBlur(image, (2 * radius + 1,) * 2, sigma, borderType=cv2.BORDER_REFLECT_101)


def _coarse_mean_cv(image: np.ndarray, sigma: float) -> np.ndarray:
    """`_coarse_mean_torch` with OpenCV (same grid and kernel support)."""
    f = _stats_scale(sigma)
    if f > 1:
        h, w = _grid_size(*image.shape[:2], f)
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return _blur_cv(image, sigma / f)


def _smooth_cv(image: np.ndarray, sigma: float) -> np.ndarray:
    """`_smooth_torch` with OpenCV."""
    h, w = image.shape[:2]
    out = _coarse_mean_cv(image, sigma)
    if out.shape[:2] != (h, w):
        out = cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)
    return out.reshape(image.shape)


def _restore_cv(
    blend: np.ndarray,
    reference: np.ndarray,
    sigma: float,
    max_gain: float,
    inplace: bool = False,
) -> np.ndarray:
    """`inplace` overwrites `blend` (one 4K frame less to hold)."""
    h, w = blend.shape[:2]
    f = _stats_scale(sigma)
    local_mean = functools.partial(_coarse_mean_cv, sigma=sigma)
    mean_b, mean_r = local_mean(blend), local_mean(reference)
    # variance averaged over the channels: sum the per-channel maps, divide once
    var_b = (local_mean(blend * blend) - mean_b * mean_b).sum(axis=2)
    var_r = (local_mean(reference * reference) - mean_r * mean_r).sum(axis=2)
    gain = np.sqrt((np.maximum(var_r / 3, 0) + 1e-5) / (np.maximum(var_b / 3, 0) + 1e-5))
    np.clip(gain, 1.0, max_gain, out=gain)
    if f > 1:
        mean_b = cv2.resize(mean_b, (w, h), interpolation=cv2.INTER_LINEAR)
        gain = cv2.resize(gain, (w, h), interpolation=cv2.INTER_LINEAR)
    out = np.subtract(blend, mean_b, out=blend if inplace else None)
    out *= gain[..., None]
    out += mean_b
    return np.clip(out, 0.0, 1.0, out=out)


def _carry_blend_cv(
    paint: np.ndarray,
    carried: np.ndarray,
    mask: np.ndarray,
    carry: float,
    sigma: float,
    detail: float | None,
    tone_sigma: float,
) -> np.ndarray:
    diff = carried - paint
    if detail is None or detail == carry:
        diff *= carry
    else:
        coarse = _blur_cv(diff, DETAIL_SIGMA)
        diff *= detail
        coarse *= carry - detail
        diff += coarse
    diff *= mask.astype(np.float32, copy=False)[..., None]
    diff += paint
    out = _restore_cv(diff, paint, sigma, 2.5, inplace=True) if sigma else diff
    if tone_sigma:
        out += _smooth_cv(paint - out, tone_sigma)
        np.clip(out, 0.0, 1.0, out=out)
    return out
