"""`--temporal carry`'s blend: it must hold flickering strokes still without washing them out."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
import torch

from vidstyle.pipeline.contrast import carry_blend, restore_contrast

SIZE = (48, 64)  # H, W


def strokes(rng: np.random.Generator) -> np.ndarray:
    """A stroke-like texture: smoothed noise around mid grey, float32 (H, W, 3)."""
    noise = rng.normal(0, 1, (*SIZE, 3)).astype(np.float32)
    return np.clip(0.5 + 0.6 * cv2.GaussianBlur(noise, (0, 0), 1.5), 0, 1)


def detail_std(image: np.ndarray) -> float:
    """Standard deviation of what a 3 px Gaussian window does not explain (the strokes)."""
    return float((image - cv2.GaussianBlur(image, (0, 0), 3.0)).std())


def to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None]


@pytest.mark.parametrize("sigma", [3.0, 8.0])  # full-resolution and coarse-grid statistics
def test_restore_brings_a_washed_out_blend_back_to_the_reference_contrast(sigma):
    rng = np.random.default_rng(0)
    a, b = strokes(rng), strokes(rng)
    blend = 0.5 * a + 0.5 * b  # two unaligned stroke patterns: contrast drops ~30%
    assert detail_std(blend) < 0.8 * detail_std(a)
    restored = restore_contrast(blend, a, sigma=sigma)
    assert detail_std(restored) == pytest.approx(detail_std(a), rel=0.15)

    # the colours, seen at a scale wider than the window, are the blend's
    def wide(image: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(image, (0, 0), 2 * sigma)

    assert np.abs(wide(restored) - wide(blend)).mean() < 0.01


def test_restore_leaves_a_blend_that_kept_its_contrast_unchanged():
    a = strokes(np.random.default_rng(1))
    np.testing.assert_allclose(restore_contrast(a, a, sigma=3.0), a, atol=1e-5)


def test_torch_and_opencv_restores_agree():
    rng = np.random.default_rng(2)
    a, b = strokes(rng), strokes(rng)
    blend = 0.7 * a + 0.3 * b
    expected = restore_contrast(blend, a, sigma=3.0)
    got = restore_contrast(to_tensor(blend), to_tensor(a), sigma=3.0)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(got, expected, atol=2e-3)


@pytest.mark.parametrize(("detail", "tone_sigma"), [(None, 0.0), (0.5, 0.0), (0.5, 4.0)])
def test_torch_and_opencv_carry_blends_agree(detail, tone_sigma):
    rng = np.random.default_rng(5)
    paint, carried = strokes(rng), strokes(rng)
    mask = (rng.random(SIZE) > 0.3).astype(np.float32)
    expected = carry_blend(paint, carried, mask, 0.7, 8.0, detail, tone_sigma)
    got = carry_blend(
        to_tensor(paint),
        to_tensor(carried),
        torch.from_numpy(mask)[None, None],
        0.7,
        8.0,
        detail,
        tone_sigma,
    )
    np.testing.assert_allclose(got[0].permute(1, 2, 0).numpy(), expected, atol=2e-3)


@pytest.mark.parametrize("backend", ["opencv", "torch"])
def test_carry_keeps_its_share_of_colour_and_the_detail_share_of_the_finest_strokes(backend):
    """carried = paint + a colour offset + a 1 px checkerboard: the blend (no contrast restore)
    keeps `carry` of the offset and `detail` of the checkerboard."""
    paint = np.full((*SIZE, 3), 0.5, np.float32)
    ys, xs = np.indices(SIZE)
    checker = np.where((xs + ys) % 2 == 0, 0.1, -0.1).astype(np.float32)[..., None]
    carried = paint + 0.2 + checker
    mask = np.ones(SIZE, np.float32)
    if backend == "torch":
        out = (
            carry_blend(
                to_tensor(paint),
                to_tensor(carried),
                torch.from_numpy(mask)[None, None],
                0.9,
                0,
                0.5,
            )[0]
            .permute(1, 2, 0)
            .numpy()
        )
    else:
        out = carry_blend(paint, carried, mask, 0.9, 0, 0.5)
    inner = out[4:-4, 4:-4] - 0.5
    offset = inner.mean()
    fine = (inner - offset) / checker[4:-4, 4:-4]
    assert offset == pytest.approx(0.9 * 0.2, abs=1e-3)
    assert np.abs(fine - 0.5).max() < 0.01


@pytest.mark.parametrize("sigma", [3.0, 8.0])
def test_carry_chain_holds_flickering_strokes_still_and_keeps_their_contrast(sigma):
    """A static shot painted with strokes that partly change every frame (what a per-frame
    network does): carrying the previous output cuts the frame-to-frame change to a small
    fraction, and the restore keeps the strokes as contrasted as each painted frame."""
    rng = np.random.default_rng(3)
    base = strokes(rng)
    paints = [np.clip(0.6 * base + 0.4 * strokes(rng), 0, 1) for _ in range(24)]
    mask = torch.ones(1, 1, *SIZE)

    def chain(sigma: float) -> list[np.ndarray]:
        previous, outs = None, []
        for paint in paints:
            p = to_tensor(paint)
            out = p if previous is None else carry_blend(p, previous, mask, 0.75, sigma)
            outs.append(out[0].permute(1, 2, 0).numpy())
            previous = out
        return outs

    def flicker(frames: list[np.ndarray]) -> float:
        return float(np.mean([np.mean((b - a) ** 2) for a, b in itertools.pairwise(frames[8:])]))

    carried, plain = chain(sigma), chain(0.0)
    assert flicker(carried) < 0.33 * flicker(paints)
    painted_detail = np.mean([detail_std(p) for p in paints])
    assert np.mean([detail_std(f) for f in carried[8:]]) > 0.9 * painted_detail
    assert np.mean([detail_std(f) for f in plain[8:]]) < 0.88 * painted_detail  # what it fixes


def test_carried_tone_follows_a_fade_at_once():
    """A static shot fading to black: the flow stays reliable, so only `tone_sigma` lets the
    carried frame darken with the paint instead of trailing it by ~1/(1 - carry) frames."""
    rng = np.random.default_rng(6)
    base = strokes(rng)
    paints = [base * (1 - t / 12) for t in range(13)]
    mask = np.ones(SIZE, np.float32)

    def chain(tone_sigma: float) -> list[float]:
        previous, means = None, []
        for paint in paints:
            out = (
                paint
                if previous is None
                else carry_blend(paint, previous, mask, 0.94, 8.0, 0.85, tone_sigma)
            )
            means.append(float(out.mean()))
            previous = out
        return means

    target = [float(p.mean()) for p in paints]
    follows, trails = chain(16.0), chain(0.0)
    # (the last frames are nearly black: clipping at 0 lifts the mean of any stroke texture)
    assert max(abs(a - b) for a, b in zip(follows[:10], target[:10], strict=True)) < 0.01
    assert trails[9] - target[9] > 0.1  # what it fixes: three quarters into the fade


def test_carry_blend_keeps_the_paint_where_the_flow_is_unreliable():
    rng = np.random.default_rng(4)
    paint, carried = to_tensor(strokes(rng)), to_tensor(strokes(rng))
    out = carry_blend(paint, carried, torch.zeros(1, 1, *SIZE), 0.75, 3.0)
    torch.testing.assert_close(out, paint, atol=1e-5, rtol=0)
