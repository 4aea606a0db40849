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


# sRGB (D65) -> XYZ, rows X, Y, Z; white point of D65 for the Lab normalisation (OpenCV's).
_RGB_TO_XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_WHITE = (0.950456, 1.0, 1.088754)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """Differentiable sRGB [0, 1] -> CIE Lab (L 0..100), channels last dim: (..., 3) -> (..., 3).

    Same formulas as OpenCV's float conversion, so a loss on it measures what
    vidstyle.metrics.colour scores. Both branches of each piecewise function are clamped to
    their own domain: torch.where back-propagates through the unused one too.
    """
    c = rgb.float()  # not clamped: a clamp passes no gradient to pixels at exactly 0 or 1
    linear = torch.where(c <= 0.04045, c / 12.92, ((c.clamp_min(0.04045) + 0.055) / 1.055).pow(2.4))
    matrix = torch.tensor(_RGB_TO_XYZ, device=rgb.device)
    xyz = (linear @ matrix.T) / torch.tensor(_WHITE, device=rgb.device)
    f = torch.where(xyz > 0.008856, xyz.clamp_min(0.008856).pow(1 / 3), 7.787 * xyz + 16 / 116)
    fx, fy, fz = f.unbind(-1)
    return torch.stack((116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)), -1)


class ColourTarget:
    """The style image's colour distribution, as a differentiable loss on an output's.

    Sliced Wasserstein-1 in Lab, the figure `vidstyle eval` reports as colour: pixels are
    projected on fixed random unit directions of Lab space and matched quantile by quantile.
    The Gram loss can be met by a picture in two flat colours; this term asks for the palette.
    Both sides are random pixel samples (`samples` per call, 4x that for the style, once):
    sorting on a CPU is slow (~170 ms for a 2x128x128 batch, ~10 ms for 4,096 pixels), and
    128 quantiles are estimated well from a few thousand pixels.
    """

    def __init__(
        self, style: torch.Tensor, projections: int = 32, quantiles: int = 128, samples: int = 4096
    ):
        """`style`: (1, 3, H, W) RGB in [0, 1]."""
        generator = torch.Generator().manual_seed(0)
        directions = torch.randn(3, projections, generator=generator)
        self.directions = (directions / directions.norm(dim=0, keepdim=True)).to(style.device)
        self.levels = (torch.arange(quantiles, device=style.device) + 0.5) / quantiles
        self.samples = samples
        with torch.no_grad():
            self.target = self._quantiles(style, 4 * samples, generator)

    def _quantiles(
        self, images: torch.Tensor, samples: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        pixels = images.permute(0, 2, 3, 1).reshape(-1, 3)
        if len(pixels) > samples:
            pick = torch.randint(len(pixels), (samples,), generator=generator)
            pixels = pixels[pick.to(pixels.device)]
        projected = rgb_to_lab(pixels) @ self.directions
        ordered, _ = torch.sort(projected.T.contiguous(), dim=1)  # (projections, pixels)
        index = (self.levels * ordered.shape[1]).long().clamp_max(ordered.shape[1] - 1)
        return ordered[:, index]

    def loss(self, images: torch.Tensor) -> torch.Tensor:
        """Sliced W1 (Lab units) of the pooled pixels of `images` (N, 3, H, W) to the style."""
        return (self._quantiles(images, self.samples) - self.target).abs().mean()
