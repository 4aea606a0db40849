"""Overlapping tiles for frames too large to process whole (4K on an 8 GB GPU, or in 24 GB RAM).

A 32-channel fp32 activation of a 4K frame is ~1 GB, so the network runs on tiles. Tiles overlap
and are blended with linear ramps across the overlap. Because the network's normalisation is
folded into its convolutions (no per-tile statistics), overlapping tiles already agree except
near their borders, and the ramps hide what remains: no seams.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets covering [0, length) with tiles of `tile` overlapping by >= `overlap`."""
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def _ramp(length: int, overlap: int, at_start: bool, at_end: bool, device, dtype) -> torch.Tensor:
    w = torch.ones(length, device=device, dtype=dtype)
    ramp = torch.linspace(0.0, 1.0, overlap + 2, device=device, dtype=dtype)[1:-1]
    if not at_start and overlap:
        w[:overlap] = ramp
    if not at_end and overlap:
        w[-overlap:] = ramp.flip(0)
    return w


def tiled(
    fn: Callable[..., torch.Tensor],
    inputs: list[torch.Tensor | None],
    tile: int,
    overlap: int,
    out_channels: int = 3,
) -> torch.Tensor:
    """Apply `fn(*crops)` tile by tile over (N, C, H, W) inputs and blend the results."""
    ref = next(t for t in inputs if t is not None)
    n, _, h, w = ref.shape
    if h <= tile and w <= tile:
        return fn(*inputs)
    out = torch.zeros(n, out_channels, h, w, device=ref.device, dtype=torch.float32)
    weight = torch.zeros(1, 1, h, w, device=ref.device, dtype=torch.float32)
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    for y in ys:
        th = min(tile, h)
        wy = _ramp(th, overlap, y == 0, y + th >= h, ref.device, torch.float32)
        for x in xs:
            tw = min(tile, w)
            wx = _ramp(tw, overlap, x == 0, x + tw >= w, ref.device, torch.float32)
            crops = [None if t is None else t[..., y : y + th, x : x + tw] for t in inputs]
            blend = (wy[:, None] * wx[None, :])[None, None]
            out[..., y : y + th, x : x + tw] += fn(*crops).float() * blend
            weight[..., y : y + th, x : x + tw] += blend
    return out / weight
