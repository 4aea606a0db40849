"""Image sequences: patterns, numbering, bit depths, EXR, per-file atomic writes."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from tests.synth import frame_id, frame_image, make_sequence
from vidstyle.errors import MediaError
from vidstyle.io import (
    ImageSequenceReader,
    ImageSequenceWriter,
    VideoReader,
    frame_timestamps,
    is_image_sequence,
    open_reader,
    open_writer,
    probe,
)
from vidstyle.io.images import srgb_to_linear


@pytest.fixture
def shot(tmp_path: Path) -> str:
    return make_sequence(tmp_path / "shot", "shot.%04d.png", frames=6, first=1001)


@pytest.mark.parametrize("spelling", ["shot.%04d.png", "shot.####.png", "*.png", "shot.1*.png"])
def test_read_sequence_any_spelling(shot: str, spelling: str) -> None:
    pattern = str(Path(shot).parent / spelling)
    assert is_image_sequence(pattern)
    with open_reader(pattern) as reader:
        assert isinstance(reader, ImageSequenceReader)
        frames = list(reader)
        assert reader.numbers == list(range(1001, 1007))
    assert [f.index for f in frames] == list(range(6))
    assert [frame_id(f.rgb) for f in frames] == list(range(6))
    assert np.array_equal(frames[2].rgb, frame_image(2, 64, 48))  # PNG is lossless


def test_sequence_probe_and_timing(shot: str) -> None:
    info = probe(shot)
    assert info.is_image_sequence and info.frame_count == 6
    assert (info.width, info.height) == (64, 48)
    assert info.rate == 24 and info.time_base == Fraction(1, 24)  # default rate
    assert info.duration == pytest.approx(6 / 24)
    assert frame_timestamps(shot) == list(range(6))
    with open_reader(shot, rate=Fraction(30000, 1001)) as reader:
        frames = list(reader)
    assert frames[3].pts == 3 and frames[3].time == pytest.approx(3 * 1001 / 30000)


def test_sequence_range_and_resize(shot: str) -> None:
    with ImageSequenceReader(shot, start_index=2, end_index=5, size=(32, 24)) as reader:
        frames = list(reader)
    assert [f.index for f in frames] == [2, 3, 4]
    assert all(f.rgb.shape == (24, 32, 3) for f in frames)
    assert [frame_id(f.rgb) for f in frames] == [2, 3, 4]


def test_sixteen_bit_input(tmp_path: Path) -> None:
    pattern = make_sequence(tmp_path, "deep.%03d.png", frames=2, bit_depth=16)
    assert probe(pattern).bit_depth == 16
    with open_reader(pattern) as reader:
        frames = list(reader)
    assert frames[1].rgb.dtype == np.uint8
    assert np.array_equal(frames[1].rgb, frame_image(1, 64, 48))


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_write_png_sequence_with_numbering(tmp_path: Path, bit_depth: int) -> None:
    pattern = str(tmp_path / "out.%04d.png")
    with open_writer(pattern, width=65, height=49, first_number=1001, bit_depth=bit_depth) as w:
        assert isinstance(w, ImageSequenceWriter)
        for i in range(3):
            w.write(frame_image(i, 65, 49))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["out.1001.png", "out.1002.png", "out.1003.png"]  # nothing else left
    raw = cv2.imread(str(tmp_path / "out.1002.png"), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == (np.uint16 if bit_depth == 16 else np.uint8)
    assert raw.shape == (49, 65, 3)  # odd sizes stay exact
    with open_reader(pattern) as reader:
        assert [frame_id(f.rgb) for f in reader] == [0, 1, 2]


def test_exr_is_half_float_linear(tmp_path: Path) -> None:
    pattern = str(tmp_path / "lin.####.exr")
    img = frame_image(0, 64, 48)
    with open_writer(pattern, width=64, height=48, first_number=1) as w:
        w.write(img)
    path = tmp_path / "lin.0001.exr"
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
    assert frame.format.name.startswith("gbrpf16")  # half float
    linear = frame.reformat(format="gbrpf32le").to_ndarray()
    expected = srgb_to_linear(img.astype(np.float32) / 255)
    assert np.abs(linear - expected).max() < 2e-3
    with open_reader(pattern) as reader:
        back = next(iter(reader)).rgb
    assert np.abs(back.astype(int) - img).max() <= 1


def test_sequence_writes_are_atomic_per_file(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    pattern = str(tmp_path / "f.%02d.png")
    w = ImageSequenceWriter(pattern, width=64, height=48)
    w.write(frame_image(0, 64, 48))

    def broken_imwrite(path: str, img: np.ndarray, *a: object) -> bool:
        Path(path).write_bytes(b"\x89PNG truncated")  # a partial file, then the crash
        raise KeyboardInterrupt

    monkeypatch.setattr(cv2, "imwrite", broken_imwrite)
    with pytest.raises(KeyboardInterrupt):
        w.write(frame_image(1, 64, 48))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.01.png"]


def test_bad_sequence_patterns(tmp_path: Path) -> None:
    missing = str(tmp_path / "none.%04d.png")
    with pytest.raises(MediaError, match="no image files match") as e:
        probe(missing)
    assert missing in str(e.value)
    with pytest.raises(MediaError, match="numbered pattern"):
        open_writer(str(tmp_path / "*.png"), width=64, height=48)
    with pytest.raises(MediaError, match="does not exist"):
        open_writer(str(tmp_path / "nodir" / "o.%04d.png"), width=64, height=48)


def test_sequence_detection() -> None:
    assert is_image_sequence("shot.%04d.png") and is_image_sequence("a/shot.####.exr")
    assert is_image_sequence("frames/*.jpg") and is_image_sequence("f_%d.tiff")
    assert not is_image_sequence("clip.mp4") and not is_image_sequence("style.jpg")
    assert not is_image_sequence("clip_%04d.mp4")


def test_video_from_sequence(shot: str, tmp_path: Path) -> None:
    info = probe(shot)
    out = tmp_path / "from_seq.mp4"
    with (
        open_reader(shot) as reader,
        open_writer(
            str(out), width=64, height=48, rate=info.rate, time_base=info.time_base,
            template=info,
        ) as writer,
    ):  # fmt: skip
        for f in reader:
            writer.write(f.rgb, f.pts)
    video = probe(out)
    assert video.frame_count == 6 and video.rate == 24
    assert video.color_range == 1  # RGB stills become ordinary limited-range video
    with VideoReader(out) as reader:
        assert [frame_id(f.rgb) for f in reader] == list(range(6))
