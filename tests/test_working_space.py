"""Working space: PQ / HLG / scene-linear sources <-> the network's sRGB/BT.709 working values.

What users rely on: `--strength 0` reproduces the source (exact round trips), reference white
and highlights land where documented, and network output decodes to valid, finite values."""

from __future__ import annotations

import numpy as np
import pytest

from vidstyle.io.working_space import M_2020_TO_709, WorkingSpace, working_space_for

PQ = WorkingSpace("pq", "bt709")
HLG = WorkingSpace("hlg", "bt709")
LINEAR = WorkingSpace("linear", "bt709")
# Light in nits with the same reference white and peak as PQ / HLG: the same roll-off, so
# comparing with these checks the PQ / HLG curves themselves.
PQ_NITS = WorkingSpace("linear", white=203.0, peak=10000.0)
HLG_NITS = WorkingSpace("linear", white=203.0, peak=1000.0)


def grey(value: float) -> np.ndarray:
    return np.full((1, 1, 3), value, np.float32)


def codes(n: int = 4000, low: float = 0.0, seed: int = 0) -> np.ndarray:
    """Random full-range code values in [low, 1], plus the corners of the cube."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(low, 1.0, (n, 3)).astype(np.float32)
    corners = np.array(np.meshgrid([low, 1], [low, 1], [low, 1])).reshape(3, -1).T
    return np.concatenate([values, corners.astype(np.float32)])[None]  # (1, n + 8, 3)


def srgb(x: float) -> float:
    return 12.92 * x if x <= 0.0031308 else 1.055 * x ** (1 / 2.4) - 0.055


def test_sdr_bt709_is_identity() -> None:
    space = working_space_for(1, 1)
    assert space.identity and space == WorkingSpace()
    frame = np.random.default_rng(1).random((6, 8, 3), dtype=np.float32)
    assert space.to_working(frame) is frame
    assert space.from_working(frame) is frame


@pytest.mark.parametrize("space", [PQ, HLG, WorkingSpace("sdr", "bt2020")], ids=str)
def test_code_values_round_trip(space: WorkingSpace) -> None:
    src = codes()
    work = space.to_working(src)
    assert work.dtype == np.float32 and work.shape == src.shape
    back = space.from_working(work)
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, src, rtol=0, atol=1e-5)


@pytest.mark.parametrize("transfer", ["pq", "hlg"])
def test_bt2020_round_trip(transfer: str) -> None:
    space = WorkingSpace(transfer, "bt2020")
    # every component above 0.1 (PQ 0.3 nits): within 1e-5 in code values
    src = codes(low=0.1, seed=2)
    np.testing.assert_allclose(space.from_working(space.to_working(src)), src, atol=1e-5)
    # anywhere, including fully saturated primaries with a component at exactly 0: the
    # float32 matrix leaves ~1e-7 of the brightest component, which PQ/HLG's steep toe turn
    # into at most ~1e-3 code value (documented; under one 10-bit code step)
    src = codes(seed=3)
    back = space.from_working(space.to_working(src))
    assert np.abs(back - src).max() < 1.5e-3


def test_saturated_bt2020_green_keeps_its_negative_components() -> None:
    space = working_space_for(16, 9)  # PQ, BT.2020
    green = np.array([[[0.2, 0.75, 0.2]]], np.float32)  # ~1000-nit green outside BT.709
    work = space.to_working(green)
    assert work[0, 0, 0] < -0.1 and work[0, 0, 2] < 0  # red and blue below zero: not clipped
    np.testing.assert_allclose(space.from_working(work), green, atol=1e-5)


def test_linear_round_trip() -> None:
    rng = np.random.default_rng(4)
    values = np.concatenate(
        [
            rng.uniform(0.0, 4.0, 3000),
            np.geomspace(1e-6, 64.0, 3000),
            rng.uniform(-4.0, 0.0, 1500),  # EXR plates can hold negatives
            -np.geomspace(1e-6, 64.0, 1500),
            [0.0, 0.18, 0.8, 1.0, 64.0, 1000.0, 65504.0],
        ]
    ).astype(np.float32)
    src = rng.permutation(values)[: len(values) // 3 * 3].reshape(-1, 3)
    for space in (LINEAR, WorkingSpace("linear", "bt2020")):
        back = space.from_working(space.to_working(src))
        scale = np.maximum(np.abs(src).max(axis=1, keepdims=True), 1e-3)  # the pixel's largest
        assert (np.abs(back - src) / scale).max() < 1e-4, space
    # BT.709 primaries: each component on its own, within half-float precision
    np.testing.assert_allclose(LINEAR.from_working(LINEAR.to_working(src)), src, rtol=1e-4)


def test_pq_known_values() -> None:
    """ST 2084: 100 nits = 0.5081, 203 nits = 0.5807 (the standard's table)."""
    for nits, code in [(100.0, 0.50808), (203.0, 0.58069), (1000.0, 0.75183)]:
        np.testing.assert_allclose(
            PQ.to_working(grey(code)), PQ_NITS.to_working(grey(nits)), atol=2e-5
        )
        np.testing.assert_allclose(PQ.from_working(PQ_NITS.to_working(grey(nits))), code, atol=2e-5)
    assert PQ.to_working(grey(0.0)).max() == 0.0


def test_hlg_reference_white_is_75_percent() -> None:
    """BT.2100 inverse OETF + OOTF (1000-nit display): 75% signal = 203 nits, 50% = 1000/12^1.2
    nits, 100% = the 1000-nit peak."""
    for signal, nits in [(0.75, 203.15), (0.5, 1000 / 12**1.2), (1.0, 1000.0)]:
        np.testing.assert_allclose(
            HLG.to_working(grey(signal)), HLG_NITS.to_working(grey(nits)), atol=2e-5
        )


def test_reference_white_and_shadows_land_where_documented() -> None:
    # below the knee (0.8 x white) the working value is plain sRGB of light / white
    for value in (0.0, 0.001, 0.18, 0.5, 0.79):
        assert LINEAR.to_working(grey(value))[0, 0, 0] == pytest.approx(srgb(value), abs=1e-6)
    # reference white sits near the top, with room above it for highlights
    assert PQ.to_working(grey(0.58069))[0, 0, 0] == pytest.approx(0.9343, abs=2e-4)
    assert HLG.to_working(grey(0.75))[0, 0, 0] == pytest.approx(0.9431, abs=2e-4)
    assert LINEAR.to_working(grey(1.0))[0, 0, 0] == pytest.approx(0.9337, abs=2e-4)


def test_rolloff_is_monotonic_and_smooth_at_the_knee() -> None:
    light = np.geomspace(1e-4, 65504.0, 20000).astype(np.float32)
    light = np.unique(light)
    work = LINEAR.to_working(np.repeat(light[:, None], 3, axis=1))[:, 0]
    assert np.all(np.diff(work) >= 0)
    assert np.all(np.diff(work[light < 1000]) > 0)  # strictly, where float32 can resolve it
    assert work[light <= 64.0].max() <= 1.0 < work[-1]  # the peak is working 1.0
    # continuous value and slope at the knee (0.8): one-sided difference quotients agree
    h = 2e-4
    f = [LINEAR.to_working(grey(0.8 + d))[0, 0, 0].astype(np.float64) for d in (-h, 0.0, h)]
    below, above = (f[1] - f[0]) / h, (f[2] - f[1]) / h
    assert above == pytest.approx(below, rel=1e-2)  # a kink would differ by ~50%
    assert f[1] == pytest.approx(srgb(0.8), abs=1e-6)


@pytest.mark.parametrize(
    ("space", "peak"),
    [
        (PQ, 1.0),
        (HLG, 1.0),
        (LINEAR, 64.0),
        (WorkingSpace("pq", "bt2020"), 1.0),
        (WorkingSpace("pq", peak=1000.0), 0.75183),  # a mastering peak: 1000 nits
    ],
    ids=str,
)
def test_network_output_decodes_to_finite_valid_values(space: WorkingSpace, peak: float) -> None:
    assert space.from_working(grey(1.0))[0, 0, 0] == pytest.approx(peak, rel=1e-5, abs=1e-5)
    out = np.random.default_rng(5).random((20, 30, 3), dtype=np.float32)
    out[0, :, :] = 1.0
    out[1, :, :] = 0.0
    src = space.from_working(out)
    assert np.isfinite(src).all()
    assert src.min() >= 0 and src.max() <= peak * (1 + 1e-5)
    # anything else too (working values past 1, huge, negative): clamped, never inf/NaN
    odd = np.array([[[1.5, 100.0, -100.0], [1e30, -1e30, 0.5]]], np.float32)
    assert np.isfinite(space.from_working(odd)).all()


def test_inputs_are_not_modified() -> None:
    src = codes(200)
    keep = src.copy()
    work = PQ.to_working(src)
    keep_work = work.copy()
    PQ.from_working(work)
    np.testing.assert_array_equal(src, keep)
    np.testing.assert_array_equal(work, keep_work)


def test_bt2020_to_bt709_matrix_is_the_standard_one() -> None:
    """ITU-R BT.2087's linear-light matrix."""
    expected = [[1.6605, -0.5876, -0.0728], [-0.1246, 1.1329, -0.0083], [-0.0182, -0.1006, 1.1187]]
    np.testing.assert_allclose(M_2020_TO_709, expected, atol=1e-4)


@pytest.mark.parametrize(
    ("trc", "primaries", "linear", "expected"),
    [
        (16, 9, False, WorkingSpace("pq", "bt2020")),
        (18, 9, False, WorkingSpace("hlg", "bt2020")),
        (16, 1, False, WorkingSpace("pq", "bt709")),
        (8, 1, False, WorkingSpace("linear", "bt709")),
        (2, 2, True, WorkingSpace("linear", "bt709")),  # EXR: scene-linear whatever the tags
        (16, 9, True, WorkingSpace("linear", "bt2020")),
        (14, 9, False, WorkingSpace("sdr", "bt2020")),  # BT.2020 10-bit SDR
        (1, 1, False, WorkingSpace()),
        (2, 2, False, WorkingSpace()),
        (13, 2, False, WorkingSpace()),  # sRGB
        (99, 5, False, WorkingSpace()),  # unknown transfer, BT.601 primaries
    ],
)
def test_working_space_for_tags(
    trc: int, primaries: int, linear: bool, expected: WorkingSpace
) -> None:
    assert working_space_for(trc, primaries, linear=linear) == expected


def test_mode_off_and_bad_values() -> None:
    assert working_space_for(16, 9, mode="off").identity
    assert working_space_for(16, 9, linear=True, mode="off").identity
    with pytest.raises(ValueError, match="mode"):
        working_space_for(16, 9, mode="hdr")
    with pytest.raises(ValueError, match="transfer"):
        WorkingSpace("gamma22")
    with pytest.raises(ValueError, match="peak"):
        WorkingSpace("pq", peak=100.0)  # below reference white
    with pytest.raises(ValueError, match="RGB"):
        PQ.to_working(np.zeros((4, 4), np.float32))
