"""probe() / frame_timestamps(): exact timing, sizes, tags, audio, and one-line errors."""

from __future__ import annotations

import itertools
import json
from fractions import Fraction
from pathlib import Path

import pytest

from tests.synth import make_audio_only, make_clip, make_text_file, vfr_end, vfr_pts
from vidstyle.errors import MediaError
from vidstyle.io import VideoInfo, frame_timestamps, probe


def test_probe_cfr_clip(cfr_clip: Path) -> None:
    info = probe(cfr_clip)
    assert (info.width, info.height) == (64, 48)
    assert (info.display_width, info.display_height) == (64, 48)
    assert info.rotation == 0
    assert info.frame_count == 12
    assert info.rate == 25
    assert info.duration == pytest.approx(12 / 25)
    assert info.start_time == 0.0
    assert info.codec == "h264" and info.pix_fmt == "yuv420p" and info.bit_depth == 8
    assert not info.is_vfr and not info.is_image_sequence
    assert [(a.codec, a.channels, a.sample_rate) for a in info.audio] == [("aac", 2, 48000)]


def test_to_dict_is_json_and_round_trips(cfr_clip: Path) -> None:
    info = probe(cfr_clip)
    d = json.loads(json.dumps(info.to_dict()))
    assert d["rate"] == "25/1" and d["path"] == str(cfr_clip)
    assert VideoInfo.from_dict(d) == info


def test_vfr_timestamps_are_exact(vfr_clip: Path) -> None:
    info = probe(vfr_clip)
    assert info.is_vfr
    got = [Fraction(p) * info.time_base for p in frame_timestamps(vfr_clip)]
    assert got == [Fraction(p, 1000) for p in vfr_pts(12)]
    assert info.duration == pytest.approx(vfr_end(12) / 1000)


def test_ntsc_rate_stays_exact(ntsc_clip: Path) -> None:
    info = probe(ntsc_clip)
    assert info.rate == Fraction(45000, 1499)
    assert info.frame_count == 36
    assert not info.is_vfr
    assert info.audio, "the clip has an audio track"
    ts = frame_timestamps(ntsc_clip)
    assert len(ts) == 36
    assert {b - a for a, b in itertools.pairwise(ts)} == {round(1 / (info.rate * info.time_base))}


def test_matroska_frame_count_is_counted(gop_clip: Path) -> None:
    # Matroska headers carry no frame count: it has to come from demuxing.
    info = probe(gop_clip)
    assert info.frame_count == 24
    assert len(frame_timestamps(gop_clip)) == 24
    assert info.duration == pytest.approx(24 / 25)


def test_rotation_and_display_size(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "r.mp4", size=(64, 48), frames=3, rotation=90, audio=False)
    info = probe(clip)
    assert info.rotation == 90
    assert (info.width, info.height) == (48, 64)
    assert (info.display_width, info.display_height) == (64, 48)


def test_colour_tags_reported(tmp_path: Path) -> None:
    tags = {"color_range": 2, "colorspace": 1, "color_primaries": 1, "color_trc": 1}
    clip = make_clip(tmp_path / "c.mp4", frames=3, audio=False, color=tags)
    info = probe(clip)
    assert (info.color_range, info.colorspace, info.color_primaries, info.color_trc) == (2, 1, 1, 1)


def test_ten_bit_source(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "p10.mkv", frames=3, audio=False, pix_fmt="yuv420p10le")
    info = probe(clip)
    assert info.bit_depth == 10 and info.pix_fmt == "yuv420p10le"


@pytest.mark.parametrize(
    ("make", "phrase"),
    [
        (lambda d: d / "missing.mp4", "not found"),
        (lambda d: make_text_file(d / "notes.mp4"), "not a readable media file"),
        (lambda d: make_audio_only(d / "song.m4a"), "no video stream"),
        (lambda d: d, "directory"),
    ],
)
def test_bad_inputs_name_the_file(tmp_path: Path, make, phrase: str) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path)
    with pytest.raises(MediaError) as e:
        probe(path)
    msg = str(e.value)
    assert str(path) in msg and phrase in msg
    assert "\n" not in msg
