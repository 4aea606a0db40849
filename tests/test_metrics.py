"""Quality metrics: warping error (Lai et al.) and VGG style/content distances, on tiny inputs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vidstyle.errors import MediaError
from vidstyle.metrics import PerceptualDistance, WarpingError


def texture(height: int, width: int, seed: int, cell: int = 6) -> np.ndarray:
    """Smooth random RGB uint8 texture with independent channels: structure DIS can track."""
    rng = np.random.default_rng(seed)
    small = rng.random((height // cell + 3, width // cell + 3, 3)).astype(np.float32)
    big = cv2.resize(small, (width + 3 * cell, height + 3 * cell), interpolation=cv2.INTER_CUBIC)
    t = big[cell : cell + height, cell : cell + width]
    return np.clip((t - t.min()) / (t.max() - t.min()) * 255, 0, 255).astype(np.uint8)


def panning_clip(frames: int = 8, step: int = 2) -> list[np.ndarray]:
    big = texture(64 + 2 * frames, 96 + step * frames, seed=11)
    return [big[i : i + 48, step * i : step * i + 64] for i in range(frames)]


class FixedFlow:
    """Flow stub: the forward flow on the first call of each pair, the backward on the second."""

    def __init__(self, forward: np.ndarray, backward: np.ndarray):
        self.flows = (forward, backward)
        self.calls = 0

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        flow = self.flows[self.calls % 2]
        self.calls += 1
        return flow


def gray_frame(values: list[list[float]]) -> np.ndarray:
    """RGB uint8 frame whose 3 channels all hold `values` (in [0, 1], multiples of 1/255)."""
    v = np.round(np.array(values) * 255).astype(np.uint8)
    return np.repeat(v[..., None], 3, axis=2)


def test_static_video_has_zero_warping_error():
    frame = texture(48, 64, seed=1)
    meter = WarpingError()
    assert meter.update(frame, frame) is None  # no pair yet
    for _ in range(3):
        assert meter.update(frame, frame) == pytest.approx(0.0, abs=1e-9)
    result = meter.result()
    assert result.pairs == 3 and result.mean == pytest.approx(0.0, abs=1e-9)
    assert result.size == (64, 48)


def test_warping_error_equals_hand_computed_value():
    """2x4 frames, forward flow +1 px in x; the backward flow disagrees at the last two columns,
    so M = [1, 1, 0, 0] per row.

    O_1 rows [0, .4, .8, 1] warped by +1 (clamped) -> [.4, .8, 1, 1]; O_0 rows [.2, .8, .6, 0]:
    squared differences [.04, 0, .16, 1] -> masked [.04, 0] per row and channel.
    E = (2 rows * 3 channels * .04) / (2 rows * 2 columns * 3 channels) = 0.02.
    """
    height, width = 2, 4
    forward = np.zeros((height, width, 2), np.float32)
    forward[..., 0] = 1.0
    backward = -forward.copy()
    backward[:, 3, 0] = 2.0  # sampled at x + 1 by columns 2 and 3 (clamped): |1 + 2|² = 9 > 0.55
    inp = gray_frame([[0.5] * 4] * 2)  # content irrelevant: the stub supplies the flow
    out0 = gray_frame([[0.2, 0.8, 0.6, 0.0]] * 2)
    out1 = gray_frame([[0.0, 0.4, 0.8, 1.0]] * 2)
    meter = WarpingError(flow=FixedFlow(forward, backward))
    meter.update(inp, out0)
    assert meter.update(inp, out1) == pytest.approx(0.02, abs=1e-6)
    assert meter.result().reliable_fraction == pytest.approx(0.5)


def test_flickering_output_scores_worse_than_stable_one_and_floor_is_shared():
    clip = panning_clip()
    stable = [255 - f for f in clip]  # a consistent per-pixel colour transform of the input
    rng = np.random.default_rng(0)
    flicker = [
        np.clip(f.astype(int) + rng.integers(-40, 40), 0, 255).astype(np.uint8) for f in stable
    ]

    class Counting:
        def __init__(self):
            from vidstyle.flow import DISFlow

            self.dis, self.calls = DISFlow(max_side=None), 0

        def __call__(self, a, b):
            self.calls += 1
            return self.dis(a, b)

    flow = Counting()
    results = WarpingError.multi(clip, {"stable": stable, "flicker": flicker}, flow=flow)
    assert flow.calls == 2 * (len(clip) - 1)  # one flow pass for all outputs and the input
    assert set(results) == {"stable", "flicker", "input"}
    assert results["flicker"].mean > 5 * results["stable"].mean
    assert results["input"].mean < 0.01 and results["stable"].pairs == len(clip) - 1
    # the single-output meter gives the same number
    single = WarpingError()
    for i, o in zip(clip, flicker, strict=True):
        single.update(i, o)
    assert single.result().mean == pytest.approx(results["flicker"].mean, rel=1e-6)


def test_output_of_another_size_is_compared_at_the_input_size():
    clip = panning_clip(frames=4)
    bigger = [cv2.resize(f, (128, 96), interpolation=cv2.INTER_LINEAR) for f in clip]
    results = WarpingError.multi(clip, {"big": bigger})
    assert results["big"].size == (64, 48)
    assert results["big"].mean < 4 * results["input"].mean + 1e-3
    half = WarpingError.multi(clip, {"big": bigger}, size=(32, 24))
    assert half["big"].size == (32, 24)


def test_frame_count_mismatch_is_a_media_error():
    clip = panning_clip(frames=4)
    with pytest.raises(MediaError, match="short"):
        WarpingError.multi(clip, {"short": clip[:3]})
    with pytest.raises(MediaError, match="long"):
        WarpingError.multi(clip[:3], {"long": clip})


def test_scene_cuts_are_reported_and_can_be_left_out():
    shot_a = panning_clip(frames=4)
    shot_b = [255 - f[::-1] for f in panning_clip(frames=4)]  # another "shot"
    clip = shot_a + shot_b
    kept = WarpingError.multi(clip, {})["input"]
    assert kept.cuts == [4] and kept.pairs == 7
    skipped = WarpingError.multi(clip, {}, skip_cuts=True)["input"]
    assert skipped.cuts == [4] and skipped.pairs == 6
    assert skipped.mean < kept.mean


@pytest.fixture(scope="module")
def style_image() -> np.ndarray:
    return texture(60, 80, seed=21, cell=3)


def test_style_distance_of_style_itself_is_zero_and_a_stylized_output_scores_lower(style_image):
    itself = PerceptualDistance(style_image, size=64)
    itself.update(style_image, style_image)
    same = itself.result()

    meter = PerceptualDistance(style_image, size=64)
    frame = texture(48, 64, seed=22, cell=10)
    meter.update(frame, style_image)  # the most "stylized" output there is: the style itself
    result = meter.result()

    assert result["input_style_distance"] > 0
    assert same["style_distance"] < 1e-6 * result["input_style_distance"]  # ~0
    assert same["content_distance"] == pytest.approx(0.0, abs=1e-9)
    assert result["style_ratio"] < 0.01
    assert result["content_distance"] > 0.1


def test_every_k_frames_are_scored_and_content_distance_of_a_frame_to_itself_is_0(style_image):
    meter = PerceptualDistance(style_image, size=32, every=3, batch_size=2)
    frame = texture(24, 32, seed=23)
    for _ in range(7):  # frames 0, 3, 6
        meter.update(frame, frame)
    result = meter.result()
    assert result["frames"] == 3 and result["every"] == 3
    assert result["content_distance"] == pytest.approx(0.0, abs=1e-9)


def test_eval_scores_a_smaller_render_at_its_own_size(tmp_path):
    """A 384 px render of a 1080p shot only holds 384 px of detail: its flicker is compared
    with the input's own floor at 384 px, not after upscaling."""
    from tests.synth import make_clip
    from vidstyle.metrics.report import evaluate

    source = make_clip(tmp_path / "in.mp4", size=(64, 48), frames=6, audio=False)
    small = make_clip(tmp_path / "small.mp4", size=(32, 24), frames=6, audio=False)
    report = evaluate(source, {"small": small}, progress=False)
    assert report["flow_size"] == [32, 24]
    assert evaluate(source, {"small": small}, flow_size=64, progress=False)["flow_size"] == [64, 48]
