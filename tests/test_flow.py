"""Optical flow: estimators, warping, occlusion mask and scene cuts, on tiny synthetic frames."""

from __future__ import annotations

import itertools
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vidstyle.errors import ConfigError
from vidstyle.flow import (
    DISFlow,
    FlowError,
    RAFTFlow,
    bidirectional_flow,
    is_scene_cut,
    link_to_previous,
    make_flow,
    reliability_mask,
    reliability_mask_torch,
    resize_flow,
    warp,
    warp_torch,
)


def texture(
    height: int, width: int, seed: int, cell: int = 6, colour=(1.0, 1.0, 1.0)
) -> np.ndarray:
    """Smooth random RGB uint8 texture (blobs of ~`cell` px): structure DIS can track."""
    rng = np.random.default_rng(seed)
    small = rng.random((height // cell + 3, width // cell + 3)).astype(np.float32)
    big = cv2.resize(small, (width + 3 * cell, height + 3 * cell), interpolation=cv2.INTER_CUBIC)
    t = big[cell : cell + height, cell : cell + width]
    t = (t - t.min()) / (t.max() - t.min())
    return np.clip(np.stack([t * c for c in colour], -1) * 255, 0, 255).astype(np.uint8)


def to_torch(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None]


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor[0].permute(1, 2, 0).numpy()


def smooth_pattern(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """A smooth RGB function of continuous coordinates (periods >= 24 px): bilinear-friendly."""
    return np.stack(
        [
            0.5 + 0.4 * np.sin(xs / 5.0 + ys / 9.0),
            0.5 + 0.4 * np.cos(xs / 7.0 - ys / 4.0),
            0.5 + 0.3 * np.sin((xs + ys) / 6.0),
        ],
        axis=-1,
    ).astype(np.float32)


@pytest.mark.parametrize("shift", [(3.0, -2.0), (2.4, -1.7), (-0.5, 0.25)])
def test_warp_known_translation_reproduces_image_inside_mask(shift):
    """A(x) = B(x + d): warping B by the flow A->B (= d everywhere) gives back A where valid."""
    height, width = 48, 64
    dx, dy = shift
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    frame_a = smooth_pattern(xs + dx, ys + dy)
    frame_b = smooth_pattern(xs, ys)
    flow_ab = np.zeros((height, width, 2), np.float32)
    flow_ab[..., 0], flow_ab[..., 1] = dx, dy
    flow_ba = -flow_ab
    mask = reliability_mask(flow_ab, flow_ba).astype(bool)
    # only the strip that looks past the frame edge is unreliable
    assert mask.mean() > 0.85
    if abs(dx) > 0.5:  # the edge column the flow looks past
        assert not mask[:, -1 if dx > 0 else 0].any()
    integer = float(dx).is_integer() and float(dy).is_integer()
    tol = 1e-5 if integer else 0.01  # bilinear vs the continuous pattern, curvature-limited

    warped = warp(frame_b, flow_ab)
    assert np.abs(warped - frame_a)[mask].max() < tol
    warped_t = to_numpy(warp_torch(to_torch(frame_b), to_torch(flow_ab)))
    assert np.abs(warped_t - frame_a)[mask].max() < tol
    assert np.abs(warped_t - warped).max() < 1e-4


def test_warp_numpy_and_torch_agree_on_random_flow_and_clamp_at_border():
    rng = np.random.default_rng(0)
    image = rng.random((40, 56, 3), dtype=np.float32)
    flow = (rng.random((40, 56, 2), dtype=np.float32) - 0.5) * 30  # many samples land outside
    out_np = warp(image, flow)
    out_t = to_numpy(warp_torch(to_torch(image), to_torch(flow)))
    assert np.abs(out_np - out_t).max() < 1e-4
    # border clamp: a flow pointing far left samples column 0
    far = np.zeros_like(flow)
    far[..., 0] = -500.0
    assert np.allclose(warp(image, far), image[:, :1, :].repeat(56, axis=1))
    # uint8 in, uint8 out, same picture
    as_u8 = warp((image * 255).astype(np.uint8), flow)
    assert as_u8.dtype == np.uint8
    assert np.abs(as_u8 / 255.0 - warp((image * 255).astype(np.uint8) / 255.0, flow)).max() < 0.003


def test_mask_formula_on_hand_built_flows_numpy_equals_torch():
    """A 10x10 square moves +4 px in x from A to B; flows are exact, so the mask is too."""
    height, width = 40, 60
    flow_ab = np.zeros((height, width, 2), np.float32)
    flow_ab[15:25, 20:30, 0] = 4.0  # the square in A
    flow_ba = np.zeros_like(flow_ab)
    flow_ba[15:25, 24:34, 0] = -4.0  # the square in B
    mask = reliability_mask(flow_ab, flow_ba)
    assert mask.dtype == np.float32 and set(np.unique(mask)) <= {0.0, 1.0}
    assert (mask[16:24, 31:34] == 0).all()  # background covered by the square in B
    assert (mask[16:24, 21:29] == 1).all()  # the square itself is tracked
    assert (mask[:, :18] == 1).all() and (mask[:, 36:] == 1).all() and (mask[:13] == 1).all()
    assert (mask[16:24, 19] == 0).all()  # motion boundary (forward difference at the left edge)
    mask_t = reliability_mask_torch(to_torch(flow_ab), to_torch(flow_ba))
    assert mask_t.shape == (1, 1, height, width)
    assert np.array_equal(mask_t[0, 0].numpy(), mask)
    # leaving the frame: off by default in Lai's rule (check_bounds=False), on for the pipeline
    out = np.zeros_like(flow_ab)
    out[..., 0] = 3.0
    assert (reliability_mask(out, -out)[:, -3:] == 0).all()
    assert (reliability_mask(out, -out, check_bounds=False) == 1).all()


def moving_object_frames() -> tuple[np.ndarray, np.ndarray]:
    """(t-1, t): a 24 px textured object at x = 30, then 36, over a static textured background."""
    background = texture(64, 96, seed=1)
    thing = texture(24, 24, seed=2, cell=4, colour=(1.0, 0.5, 0.2))

    def frame(x0: int) -> np.ndarray:
        f = background.copy()
        f[20:44, x0 : x0 + 24] = thing
        return f

    return frame(30), frame(36)


def test_mask_flags_disoccluded_strip_behind_moving_object_with_dis():
    """Frame t: an object has moved 6 px right over a static textured background since t-1.

    The strip it uncovered at t has no match in t-1: its flow t->t-1 is unreliable (0); the static
    background is reliable (1).
    """
    previous, current = moving_object_frames()
    flow_cur_prev, flow_prev_cur = bidirectional_flow(DISFlow(max_side=None), current, previous)
    mask = reliability_mask(flow_cur_prev, flow_prev_cur)
    assert mask[22:42, 30:36].mean() < 0.35  # uncovered strip
    static = np.ones_like(mask, dtype=bool)
    static[14:50, 22:66] = False  # the object, the strip and DIS's smoothing margin
    assert mask[static].mean() > 0.95
    assert mask[26:38, 44:56].mean() > 0.9  # the object itself moves coherently


def test_chain_link_carry_mask_keeps_motion_boundaries_but_not_the_disocclusion():
    """The link's two masks on the scene above: `mask` also drops the motion-boundary band
    around the object; `consistent` (what the carry blends with) keeps that band but still
    flags the uncovered strip, so the carry never drags the background over it."""
    previous, current = moving_object_frames()
    link = link_to_previous(DISFlow(max_side=None), current, previous)
    assert not link.cut and link.consistent is not None
    assert (link.consistent >= link.mask).all()
    assert link.consistent.sum() > link.mask.sum() + 50  # the boundary band
    assert link.consistent[22:42, 30:36].mean() < 0.35  # uncovered strip
    flow, consistent = link.at_size(48, 32, boundaries=False)
    assert flow.shape == (32, 48, 2) and consistent.shape == (32, 48)


def test_warm_start_convention_with_dis_brings_previous_frame_into_place():
    """The pipeline's use: flow t->t-1 from DIS, then warp(frame t-1, flow) ~= frame t."""
    big = texture(80, 120, seed=8)
    previous, current = big[4:68, 6:102], big[7:71, 1:97]  # a diagonal sub-pixel-free pan
    flow_t_prev, flow_prev_t = bidirectional_flow(DISFlow(), current, previous)
    mask = reliability_mask(flow_t_prev, flow_prev_t).astype(bool)
    warped = warp(previous, flow_t_prev).astype(float)
    assert mask.mean() > 0.8
    assert np.abs(warped - current)[mask].mean() < 2.0  # of 255
    assert np.abs(previous.astype(float) - current)[mask].mean() > 10.0


def test_resize_flow_rescales_each_axis():
    flow = np.zeros((32, 48, 2), np.float32)
    flow[..., 0], flow[..., 1] = 2.0, -1.5
    big = resize_flow(flow, (96, 128))  # x by 2, y by 4
    assert big.shape == (128, 96, 2)
    assert np.allclose(big[..., 0], 4.0) and np.allclose(big[..., 1], -6.0)


@pytest.mark.parametrize("max_side", [None, 48])
def test_dis_returns_known_shift_with_right_magnitude_at_working_resolution(max_side):
    """96x64 frames, content shifted by (+4, -2) px: computed at 48x32 the flow must still read
    (+4, -2) in frame pixels, not (+2, -1)."""
    big = texture(96, 128, seed=3, cell=8)
    frame_a = big[10:74, 10:106]
    frame_b = big[12:76, 6:102]  # B(x) = A(x - (4, -2))  =>  A(x) = B(x + (4, -2))
    flow = DISFlow("medium", max_side=max_side)(frame_a, frame_b)
    assert flow.shape == (64, 96, 2) and flow.dtype == np.float32
    inner = flow[12:-12, 12:-12]
    assert abs(np.median(inner[..., 0]) - 4.0) < 0.5
    assert abs(np.median(inner[..., 1]) + 2.0) < 0.5


def test_dis_from_thread_pool_matches_sequential_and_pickles():
    big = texture(80, 110, seed=4)
    frames = [big[i : i + 64, 2 * i : 2 * i + 96] for i in range(6)]
    dis = DISFlow("fast")
    sequential = [dis(a, b) for a, b in itertools.pairwise(frames)]
    with ThreadPoolExecutor(3) as pool:
        threaded = list(pool.map(dis, frames, frames[1:]))
    for s, t in zip(sequential, threaded, strict=True):
        assert np.allclose(s, t)
    clone = pickle.loads(pickle.dumps(dis))
    assert np.allclose(clone(frames[0], frames[1]), sequential[0])


def test_make_flow_names():
    assert make_flow().preset == "medium"
    assert make_flow("dis-fast").preset == "fast"
    assert make_flow("dis-ultrafast", max_side=256).max_side == 256
    with pytest.raises(ConfigError, match="unknown flow"):
        make_flow("farneback")


def test_raft_without_weights_names_the_missing_file(tmp_path: Path):
    missing = tmp_path / "raft_small.pth"
    assert not RAFTFlow.available(weights=missing)
    with pytest.raises(FlowError, match=r"raft_small\.pth"):
        make_flow("raft", weights=missing)


def test_raft_with_local_weights_pads_to_multiples_of_8(tmp_path: Path):
    """Random weights saved locally: checks loading, padding and cropping, not accuracy."""
    from torchvision.models.optical_flow import raft_small

    torch.manual_seed(0)
    path = tmp_path / "raft_small_local.pth"
    torch.save(raft_small(weights=None).state_dict(), path)
    assert RAFTFlow.available(weights=path)
    raft = RAFTFlow(weights=path, device="cpu", iters=1)
    frame = texture(50, 70, seed=5)
    flow = raft(frame, frame)
    assert flow.shape == (50, 70, 2) and flow.dtype == np.float32 and np.isfinite(flow).all()


def test_scene_cut_fires_on_unrelated_images_not_on_small_translation():
    big = texture(80, 120, seed=6, colour=(0.4, 0.9, 0.5))
    shot_a = big[0:64, 0:96]
    moved = big[3:67, 5:101]  # handheld-size motion
    shot_b = texture(64, 96, seed=7, cell=10, colour=(1.0, 0.6, 0.3))
    assert is_scene_cut(shot_a, shot_b)
    assert not is_scene_cut(shot_a, moved)
    # the pipeline can hand in the mask it already has
    dis = DISFlow()
    fwd, bwd = bidirectional_flow(dis, shot_a, moved)
    assert not is_scene_cut(shot_a, moved, mask=reliability_mask(fwd, bwd))
    assert not is_scene_cut(shot_a, moved, flow_ab=fwd)
