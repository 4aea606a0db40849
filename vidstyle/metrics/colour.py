"""Colour fidelity: how far the output's colours are from the style image's, in CIE Lab.

Gram losses can be met by a picture whose palette is wrong (a colourful style rendered in two
flat colours); this figure catches that. Distance = sliced Wasserstein-1 between the two sets of
Lab pixels: both are projected on `projections` fixed random unit directions of Lab space, and
the mean absolute difference of matched quantiles (the 1-D Wasserstein distance) is averaged
over directions. Units are Lab's (ΔE-like: L in 0..100); 0 = the same colour distribution.
Pixels are sampled (at most `samples` per image) so memory and time stay bounded on any video.
"""

from __future__ import annotations

import cv2
import numpy as np

QUANTILES = 256


def lab_pixels(rgb: np.ndarray, samples: int, rng: np.random.Generator) -> np.ndarray:
    """(N, 3) float32 Lab values of up to `samples` pixels of an RGB uint8 image."""
    flat = rgb.reshape(-1, 3)
    if len(flat) > samples:
        flat = flat[rng.choice(len(flat), samples, replace=False)]
    lab = cv2.cvtColor(flat.reshape(-1, 1, 3).astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    return lab.reshape(-1, 3)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, projections: int = 64, seed: int = 0) -> float:
    """Sliced W1 between two point sets (N, 3) and (M, 3); sizes may differ."""
    directions = np.random.default_rng(seed).normal(size=(3, projections))
    directions /= np.linalg.norm(directions, axis=0, keepdims=True)
    q = (np.arange(QUANTILES) + 0.5) / QUANTILES
    qa = np.quantile(a @ directions, q, axis=0)
    qb = np.quantile(b @ directions, q, axis=0)
    return float(np.abs(qa - qb).mean())


class ColourDistance:
    """Streams frames; `result()` is the sliced Wasserstein distance of their pooled Lab
    pixels to the style image's. The pool is a uniform reservoir sample over all frames
    (`samples` per frame, at most `capacity` in all), so a long video costs no more memory."""

    def __init__(
        self, style_image: np.ndarray, samples: int = 2048, capacity: int = 131072, seed: int = 0
    ):
        self.samples = samples
        self.rng = np.random.default_rng(seed)
        self.style = lab_pixels(style_image, capacity, self.rng)
        self.pool = np.empty((capacity, 3), np.float32)
        self.seen = 0

    def update(self, frame: np.ndarray) -> None:
        pixels = lab_pixels(frame, self.samples, self.rng)
        free = max(0, min(len(pixels), len(self.pool) - self.seen))
        self.pool[self.seen : self.seen + free] = pixels[:free]
        rest = pixels[free:]
        if len(rest):  # Algorithm R, vectorised: item n replaces a random slot w.p. capacity/n
            index = self.seen + free + np.arange(len(rest))
            slots = (self.rng.random(len(rest)) * (index + 1)).astype(np.int64)
            hit = slots < len(self.pool)
            self.pool[slots[hit]] = rest[hit]
        self.seen += len(pixels)

    def result(self) -> float:
        if not self.seen:
            return float("nan")
        return sliced_wasserstein(self.pool[: min(self.seen, len(self.pool))], self.style)
