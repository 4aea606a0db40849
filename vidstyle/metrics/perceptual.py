"""Style and content distances in VGG19 feature space (Gatys et al.'s Gram statistics).

Every scored frame (every `every`-th frame, starting with the first), the input frame is resized
so its longer side is `size` px and the output frame to that same widthxheight; the style image
is resized so its longer side is `size` (cv2 INTER_AREA when shrinking, INTER_LINEAR when
enlarging). Images are RGB in [0, 1] through the frozen VGG19 of vidstyle.models.vgg.
- style distance of a frame = Σ over relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 of the mean
  squared difference between its Gram matrix and the style image's, G = F·Fᵀ / (C·H·W).
  "style_distance" is its mean over the output frames, "input_style_distance" over the input
  frames, "style_ratio" = style_distance / input_style_distance (below 1: closer to the style
  than the footage was).
- "content_distance" = mean over frames of MSE(relu4_2(output), relu4_2(input)) /
  mean(relu4_2(input)²) (the per-frame normalised content loss; 0 = same features).
- "colour_distance" = sliced Wasserstein distance between the scored output frames' CIE Lab
  pixels and the style image's (vidstyle.metrics.colour); "input_colour_distance" the same for
  the input frames (how far the footage's own palette was).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
import torch

from vidstyle.io.images import resize_to
from vidstyle.metrics.colour import ColourDistance
from vidstyle.models.losses import gram
from vidstyle.models.vgg import CONTENT_LAYER, STYLE_LAYERS, VGG19Features


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return resize_to(image, size, enlarge=cv2.INTER_LINEAR)


def _long_side(image: np.ndarray, side: int) -> tuple[int, int]:
    height, width = image.shape[:2]
    scale = side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


@functools.lru_cache(maxsize=2)
def _vgg(device: torch.device) -> VGG19Features:
    """One frozen VGG per device, shared by every meter (it is only ever run in inference)."""
    return VGG19Features((*STYLE_LAYERS, CONTENT_LAYER)).to(device)


def _device(device: str | torch.device | None) -> torch.device:
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class PerceptualDistance:
    """Streams (input, output) frame pairs; `result()` gives the distances (see the module doc)."""

    def __init__(
        self,
        style_image: np.ndarray,
        size: int = 384,
        device: str | torch.device | None = "cpu",
        every: int = 1,
        batch_size: int = 4,
    ):
        if every < 1 or batch_size < 1:
            raise ValueError("every and batch_size must be at least 1")
        self.size = size
        self.every = every
        self.batch_size = batch_size
        self.device = _device(device)
        self.vgg = _vgg(self.device)
        style = _resize(style_image, _long_side(style_image, size))
        feats = self._features(self._tensor([style]))
        self.style_grams = {layer: gram(feats[layer]) for layer in STYLE_LAYERS}
        self.colour = ColourDistance(style)
        self.input_colour = ColourDistance(style)
        self._seen = 0
        self._frames = 0
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._sums = {"style": 0.0, "input_style": 0.0, "content": 0.0}

    def _tensor(self, images: list[np.ndarray]) -> torch.Tensor:
        batch = torch.from_numpy(np.stack(images)).to(self.device)
        return batch.permute(0, 3, 1, 2).float() / 255.0

    def _features(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.inference_mode():
            return self.vgg(batch)

    def update(self, input_frame: np.ndarray, output_frame: np.ndarray) -> None:
        index = self._seen
        self._seen += 1
        if index % self.every:
            return
        size = _long_side(input_frame, self.size)
        pair = (_resize(input_frame, size), _resize(output_frame, size))
        self.input_colour.update(pair[0])
        self.colour.update(pair[1])
        if self._pending and self._pending[0][0].shape != pair[0].shape:
            self._flush()
        self._pending.append(pair)
        if len(self._pending) >= self.batch_size:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        count = len(self._pending)
        inputs = [p[0] for p in self._pending]
        outputs = [p[1] for p in self._pending]
        self._pending = []
        feats = self._features(self._tensor(inputs + outputs))  # inputs first, then outputs
        style = torch.zeros(2 * count, device=self.device)
        for layer in STYLE_LAYERS:
            diff = gram(feats[layer]) - self.style_grams[layer]
            style += diff.pow(2).mean(dim=(1, 2))
        content_in = feats[CONTENT_LAYER][:count].float()
        content_out = feats[CONTENT_LAYER][count:].float()
        energy = content_in.pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-8)
        content = (content_out - content_in).pow(2).mean(dim=(1, 2, 3)) / energy
        self._sums["input_style"] += float(style[:count].sum())
        self._sums["style"] += float(style[count:].sum())
        self._sums["content"] += float(content.sum())
        self._frames += count

    def result(self) -> dict:
        self._flush()
        n = self._frames
        if n == 0:
            nan = float("nan")
            style = input_style = content = nan
        else:
            style = self._sums["style"] / n
            input_style = self._sums["input_style"] / n
            content = self._sums["content"] / n
        ratio = style / input_style if n and input_style > 0 else float("nan")
        return {
            "style_distance": style,
            "input_style_distance": input_style,
            "style_ratio": ratio,
            "content_distance": content,
            "colour_distance": self.colour.result(),
            "input_colour_distance": self.input_colour.result(),
            "frames": n,
            "every": self.every,
            "size": self.size,
        }
