"""Backward warping: out(x) = image(x + flow(x)), bilinear, coordinates clamped at the border.

To bring frame B into A's place, warp B with the flow A->B. The numpy (cv2.remap) and torch
(grid_sample) versions agree to float precision, so CPU and GPU paths give the same pictures.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
import torch
from torch.nn import functional as F

_grid_lock = threading.Lock()
_np_grids: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
_torch_grids: dict[tuple[int, int, str, torch.dtype], torch.Tensor] = {}
_MAX_GRIDS = 8  # a handful of frame sizes per process; drop the oldest beyond that


def _remember(cache: dict, key: object, value: object) -> None:
    with _grid_lock:
        if len(cache) >= _MAX_GRIDS:
            cache.pop(next(iter(cache)))
        cache[key] = value


def _np_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    grid = _np_grids.get((height, width))
    if grid is None:
        gx, gy = np.meshgrid(
            np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
        )
        grid = (gx, gy)
        _remember(_np_grids, (height, width), grid)
    return grid


def sample_coords(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The absolute sampling coordinates x + flow(x), y + flow(y) as float32 maps."""
    gx, gy = _np_grid(*flow.shape[:2])
    return gx + flow[..., 0], gy + flow[..., 1]


def warp(image: np.ndarray, flow: np.ndarray, mode: str = "bilinear") -> np.ndarray:
    """Sample `image` at x + flow(x) for every pixel x (bilinear or bicubic, border replicated).

    `image`: (H, W) or (H, W, C), C <= 4, uint8 or float; returns the same shape and dtype (uint8 is
    interpolated exactly and rounded). float64 is computed in float32: cv2 quantises float64 remaps.
    """
    if image.shape[:2] != flow.shape[:2] or flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(
            f"warp needs an image and a (H, W, 2) flow of one size: {image.shape}, {flow.shape}"
        )
    dtype = image.dtype
    src = image.astype(np.float32) if dtype == np.float64 else image
    map_x, map_y = sample_coords(flow.astype(np.float32, copy=False))
    out = cv2.remap(
        np.ascontiguousarray(src),
        map_x,
        map_y,
        interpolation=cv2.INTER_CUBIC if mode == "bicubic" else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    if out.ndim == 2 and image.ndim == 3:  # cv2 drops a trailing channel axis of size 1
        out = out[..., None]
    return out.astype(dtype, copy=False)


def _torch_grid(height: int, width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    key = (height, width, str(device), dtype)
    grid = _torch_grids.get(key)
    if grid is None:
        ys = torch.arange(height, device=device, dtype=dtype)
        xs = torch.arange(width, device=device, dtype=dtype)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        grid = torch.stack((gx, gy)).unsqueeze(0)  # (1, 2, H, W) pixel coordinates
        _remember(_torch_grids, key, grid)
    return grid


def warp_torch(image: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """grid_sample twin of `warp`: image (N, C, H, W), flow (N or 1, 2, H, W) -> (N, C, H, W).

    `mode="bicubic"` is for frames that are warped again and again (the warm-start chain):
    bilinear sampling at sub-pixel offsets low-passes the image a little every time, which adds
    up to visible blur over a long shot; bicubic keeps it sharp (it may overshoot [0, 1] slightly).

    Coordinates are computed in float32 (float64 if the image is): half precision can't address
    pixels of a large frame (fp16 spacing is 2 px above 2048).
    """
    if image.shape[-2:] != flow.shape[-2:] or flow.ndim != 4 or flow.shape[1] != 2:
        raise ValueError(
            f"warp_torch needs (N, C, H, W) and (N, 2, H, W) of one size: "
            f"{tuple(image.shape)}, {tuple(flow.shape)}"
        )
    height, width = image.shape[-2:]
    dtype = torch.float64 if image.dtype == torch.float64 else torch.float32
    coords = _torch_grid(height, width, flow.device, dtype) + flow.to(dtype)
    # align_corners=True: -1 and 1 are the centres of the first and last pixels, as in cv2.remap;
    # padding "border" clamps the coordinates, like BORDER_REPLICATE.
    gx = coords[:, 0] * (2.0 / max(width - 1, 1)) - 1.0
    gy = coords[:, 1] * (2.0 / max(height - 1, 1)) - 1.0
    grid = torch.stack((gx, gy), dim=-1)
    if grid.shape[0] != image.shape[0]:
        grid = grid.expand(image.shape[0], -1, -1, -1)
    out = F.grid_sample(image.to(dtype), grid, mode=mode, padding_mode="border", align_corners=True)
    return out.to(image.dtype)
