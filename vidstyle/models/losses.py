"""Perceptual losses (Gatys/Johnson) and the flow-based temporal loss (Ruder/ReCoNet)."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix G = F·Fᵀ / (C·H·W), batched: (N, C, H, W) -> (N, C, C).

    Computed in float32 even under autocast: the sum over H·W overflows/loses precision in fp16.
    """
    n, c, h, w = features.shape
    flat = features.float().reshape(n, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def style_loss(
    features: dict[str, torch.Tensor], target_grams: dict[str, torch.Tensor]
) -> torch.Tensor:
    """Σ over layers of MSE between the Gram of each output and the style's Gram."""
    total = torch.zeros((), device=next(iter(features.values())).device)
    for layer, target in target_grams.items():
        g = gram(features[layer])
        total = total + F.mse_loss(g, target.expand_as(g))
    return total


def content_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE between feature maps, normalised by the target's energy (scale-free across layers)."""
    output, target = output.float(), target.float()
    return F.mse_loss(output, target) / target.pow(2).mean().clamp_min(1e-8)


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of neighbouring pixels: discourages high-frequency noise."""
    dx = (image[..., :, 1:] - image[..., :, :-1]).abs().mean()
    dy = (image[..., 1:, :] - image[..., :-1, :]).abs().mean()
    return dx + dy


_LUMA = (0.2126, 0.7152, 0.0722)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """Rec.709 luma of an RGB batch (N, 3, H, W) -> (N, 1, H, W)."""
    weights = torch.tensor(_LUMA, device=image.device, dtype=image.dtype).view(1, 3, 1, 1)
    return (image * weights).sum(1, keepdim=True)


def temporal_loss(
    output: torch.Tensor,
    warped_previous_output: torch.Tensor,
    mask: torch.Tensor,
    frame: torch.Tensor | None = None,
    warped_previous_frame: torch.Tensor | None = None,
) -> torch.Tensor:
    """Masked squared difference between the output and the previous output warped into place.

    With the input frames given, the change the footage itself makes (lighting, exposure) is
    allowed through, as in ReCoNet's luminance-aware output loss:
    ((O_t - W(O_{t-1})) - Y(I_t - W(I_{t-1})))².
    """
    diff = output.float() - warped_previous_output.float()
    if frame is not None and warped_previous_frame is not None:
        diff = diff - luminance(frame.float() - warped_previous_frame.float())
    weighted = mask.float() * diff.pow(2)
    return weighted.sum() / (mask.float().sum() * output.shape[1]).clamp_min(1.0)
