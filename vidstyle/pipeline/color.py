"""Post-processing of stylized frames on the device: strength blend and colour preservation."""

from __future__ import annotations

import torch

# BT.709 luma and the matching chroma scale factors (the HD matrix; frames are RGB here).
_KR, _KB = 0.2126, 0.0722
_KG = 1.0 - _KR - _KB


def _to_ycbcr(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    y = _KR * r + _KG * g + _KB * b
    return y, (b - y) / (2 * (1 - _KB)), (r - y) / (2 * (1 - _KR))


def _to_rgb(y: torch.Tensor, cb: torch.Tensor, cr: torch.Tensor) -> torch.Tensor:
    r = y + 2 * (1 - _KR) * cr
    b = y + 2 * (1 - _KB) * cb
    g = (y - _KR * r - _KB * b) / _KG
    return torch.cat([r, g, b], dim=1)


def preserve_color(stylized: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Luminance from the stylized frame, chroma from the original (Gatys et al. 2016).

    Users who want the painting's brushwork but their footage's colours (skin tones, grading)
    ask for this more than for anything else after flicker.
    """
    y, _, _ = _to_ycbcr(stylized)
    _, cb, cr = _to_ycbcr(original)
    return _to_rgb(y, cb, cr).clamp_(0.0, 1.0)


def finish(
    stylized: torch.Tensor, original: torch.Tensor, strength: float, keep_color: bool
) -> torch.Tensor:
    """Apply --preserve-color, then --strength (a mix with the original, like layer opacity)."""
    out = preserve_color(stylized, original) if keep_color else stylized
    if strength < 1.0:
        out = torch.lerp(original, out, strength)
    return out
