"""VideoReader: every frame once, with its source pts, upright, in the right colours, at the
requested size, and frame ranges that seek instead of decoding from the start."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tests.synth import frame_id, frame_image, make_clip
from vidstyle.errors import MediaError
from vidstyle.io import VideoReader, fit_size, frame_timestamps, open_reader, probe


def test_reads_every_frame_with_source_pts(vfr_clip: Path) -> None:
    with VideoReader(vfr_clip) as reader:
        frames = list(reader)
    assert [f.index for f in frames] == list(range(12))
    assert [frame_id(f.rgb) for f in frames] == list(range(12))
    assert [f.pts for f in frames] == frame_timestamps(vfr_clip)
    tb = probe(vfr_clip).time_base
    assert all(f.time_base == tb and f.time == pytest.approx(float(f.pts * tb)) for f in frames)
    rgb = frames[0].rgb
    assert rgb.dtype == np.uint8 and rgb.shape == (48, 64, 3) and rgb.flags.c_contiguous


@pytest.mark.parametrize(("start", "end"), [(0, 5), (5, 11), (9, 24), (17, 30), (23, None)])
def test_frame_range_by_index(gop_clip: Path, start: int, end: int | None) -> None:
    ts = frame_timestamps(gop_clip)
    with VideoReader(gop_clip, start_index=start, end_index=end) as reader:
        frames = list(reader)
    stop = min(end or 24, 24)
    assert [f.index for f in frames] == list(range(start, stop))
    assert [frame_id(f.rgb) for f in frames] == list(range(start, stop))
    assert [f.pts for f in frames] == ts[start:stop]


def test_range_seeks_instead_of_decoding_from_zero(gop_clip: Path) -> None:
    with VideoReader(gop_clip, start_index=17, end_index=19) as reader:
        assert [frame_id(f.rgb) for f in reader] == [17, 18]
        assert reader.decoded_count < 17


def test_mid_gop_range_matches_sequential_decode(bframes_clip: Path) -> None:
    # H.264 with B-frames, keyframes at 0, 48, 96: a seek must give bit-identical frames
    clip, size = bframes_clip, (160, 68)
    with VideoReader(clip, size=size, end_index=105) as reader:
        sequential = {f.index: f for f in reader if f.index >= 100}
    with VideoReader(clip, size=size, start_index=100, end_index=105) as reader:
        seeked = list(reader)
    assert [f.index for f in seeked] == list(range(100, 105))
    for f in seeked:
        assert f.pts == sequential[f.index].pts
        assert np.array_equal(f.rgb, sequential[f.index].rgb)


def test_stream_without_timestamps(tmp_path: Path) -> None:
    # a raw H.264 elementary stream has no pts: frames are counted, pts come from the rate
    clip = make_clip(tmp_path / "raw.h264", frames=8, audio=False)
    info = probe(clip)
    assert info.frame_count == 8
    ts = frame_timestamps(clip)
    with VideoReader(clip, start_index=3, end_index=6) as reader:
        frames = list(reader)
    assert [(f.index, frame_id(f.rgb)) for f in frames] == [(3, 3), (4, 4), (5, 5)]
    assert [f.pts for f in frames] == ts[3:6]
    assert frames[1].time == pytest.approx(4 / 25)


def test_empty_and_invalid_ranges(cfr_clip: Path) -> None:
    with VideoReader(cfr_clip, start_index=12) as reader:
        assert list(reader) == []
    with pytest.raises(ValueError):
        VideoReader(cfr_clip, start_index=-1)
    with pytest.raises(ValueError):
        VideoReader(cfr_clip, start_index=5, end_index=3)


def test_resize_at_decode(cfr_clip: Path) -> None:
    with VideoReader(cfr_clip, size=(32, 24)) as reader:
        frames = list(reader)
    assert all(f.rgb.shape == (24, 32, 3) for f in frames)
    assert [frame_id(f.rgb) for f in frames] == list(range(12))


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotated_clips_come_out_upright(tmp_path: Path, rotation: int) -> None:
    clip = make_clip(tmp_path / f"r{rotation}.mp4", size=(64, 48), frames=3, rotation=rotation)
    with VideoReader(clip) as reader:
        frames = list(reader)
    for f in frames:
        assert f.rgb.shape == (48, 64, 3)
        assert frame_id(f.rgb) == f.index
        red, green = f.rgb[..., 0].astype(int), f.rgb[..., 1].astype(int)
        assert red[5, 56] - red[5, 4] > 150  # red ramp: dark left, bright right
        assert green[40, 32] - green[4, 32] > 120  # green ramp: dark top, bright bottom
    with VideoReader(clip, size=(32, 24)) as reader:
        assert next(iter(reader)).rgb.shape == (24, 32, 3)


def test_odd_size_input(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "odd.mkv", size=(65, 49), frames=4, codec="ffv1", audio=False)
    with VideoReader(clip) as reader:
        frames = list(reader)
    assert all(f.rgb.shape == (49, 65, 3) for f in frames)
    assert [frame_id(f.rgb) for f in frames] == [0, 1, 2, 3]


def _colour_error(clip: Path, size: tuple[int, int]) -> float:
    with VideoReader(clip, end_index=1) as reader:
        rgb = next(iter(reader)).rgb.astype(np.float32)
    return float(np.abs(rgb - frame_image(0, *size, motion="static")).mean())


@pytest.mark.parametrize(
    ("tags", "pix_fmt", "size"),
    [
        ({"color_range": 2, "colorspace": 1}, "yuv420p", (64, 48)),  # full-range BT.709
        ({"color_range": 1, "colorspace": 5}, "yuv444p", (64, 48)),  # limited BT.601
        ({"color_range": 1, "colorspace": 1}, "yuv444p10le", (64, 48)),  # 10-bit
        ({}, "yuv444p", (1280, 16)),  # untagged HD: BT.709 like players assume
        ({}, "yuv444p", (64, 48)),  # untagged SD: BT.601
    ],
)
def test_colour_matrix_and_range_follow_the_source(
    tmp_path: Path, tags: dict[str, int], pix_fmt: str, size: tuple[int, int]
) -> None:
    clip = make_clip(
        tmp_path / "c.mkv", size=size, frames=1, audio=False, motion="static",
        color=tags, pix_fmt=pix_fmt, codec="ffv1",
    )  # fmt: skip
    # A wrong matrix or range is off by >= 6 levels on average on these ramps; 4:2:0 chroma
    # subsampling alone costs about 2.
    assert _colour_error(clip, size) < 3.0


def test_open_reader_dispatches_videos(cfr_clip: Path) -> None:
    with open_reader(str(cfr_clip), rate=Fraction(30)) as reader:
        assert isinstance(reader, VideoReader)
        assert reader.info.rate == 25  # a video's own timing wins over `rate`


def test_reader_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"missing\.mov: file not found"):
        VideoReader(tmp_path / "missing.mov")


@pytest.mark.parametrize(
    ("w", "h", "max_side", "multiple", "expected"),
    [
        (1920, 1080, 512, 2, (512, 288)),
        (1080, 1920, 512, 2, (288, 512)),
        (640, 272, None, 2, (640, 272)),
        (339, 201, 0, 2, (340, 202)),
        (339, 201, None, 1, (339, 201)),
        (1920, 1080, 500, 8, (496, 280)),
        (100, 3, 64, 4, (64, 4)),
    ],
)
def test_fit_size(
    w: int, h: int, max_side: int | None, multiple: int, expected: tuple[int, int]
) -> None:
    got = fit_size(w, h, max_side, multiple)
    assert got == expected
    assert got[0] % multiple == 0 and got[1] % multiple == 0
    if max_side:
        assert max(got) <= max_side
