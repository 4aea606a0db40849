"""VideoWriter: read -> write keeps frames, timestamps, duration, audio, rotation, colour and
size; outputs appear atomically; codecs and errors behave."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.synth import duplicate_audio_packets, frame_id, frame_image, make_clip
from vidstyle.errors import MediaError
from vidstyle.io import (
    VideoInfo,
    VideoReader,
    VideoWriter,
    available_encoders,
    frame_timestamps,
    open_writer,
    probe,
)


def copy_video(
    src: Path,
    dst: Path,
    *,
    audio: bool = True,
    size: tuple[int, int] | None = None,
    start: int = 0,
    end: int | None = None,
    **kw: object,
) -> VideoInfo:
    """What the pipeline does, minus the network: read -> write with the source as template."""
    info = probe(src)
    w, h = size or (info.display_width, info.display_height)
    ts = frame_timestamps(src)
    end_i = info.frame_count if end is None else end
    if start or end is not None:
        offset = ts[start]
        window = (offset * info.time_base, ts[end_i] * info.time_base if end_i < len(ts) else None)
        kw = {"time_offset": offset, "audio_window": window, **kw}
    with (
        VideoReader(src, size=(w, h), start_index=start, end_index=end) as reader,
        VideoWriter(
            dst, width=w, height=h, rate=info.rate, time_base=info.time_base, template=info,
            audio_from=src if audio and info.audio else None, **kw,
        ) as writer,
    ):  # fmt: skip
        for frame in reader:
            writer.write(frame.rgb, frame.pts)
    return probe(dst)


def seconds(path: Path) -> list[Fraction]:
    tb = probe(path).time_base
    return [p * tb for p in frame_timestamps(path)]


def audio_seconds(path: Path) -> float:
    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        end = max(p.pts + p.duration for p in c.demux(s) if p.size)
        return float(end * s.time_base)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov"])
def test_cfr_round_trip_keeps_frames_pts_duration_audio(
    cfr_clip: Path, tmp_path: Path, suffix: str
) -> None:
    src = probe(cfr_clip)
    out = copy_video(cfr_clip, tmp_path / f"out{suffix}")
    assert out.frame_count == src.frame_count
    assert seconds(tmp_path / f"out{suffix}") == seconds(cfr_clip)
    assert out.duration == pytest.approx(src.duration, abs=1e-3)
    assert out.rate == src.rate
    assert [a.codec for a in out.audio] == ["aac"]
    with VideoReader(tmp_path / f"out{suffix}") as reader:
        assert [frame_id(f.rgb) for f in reader] == list(range(12))


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_vfr_stays_vfr(vfr_clip: Path, tmp_path: Path, suffix: str) -> None:
    src = probe(vfr_clip)
    out = copy_video(vfr_clip, tmp_path / f"out{suffix}")
    assert out.is_vfr
    assert out.frame_count == 12
    assert seconds(tmp_path / f"out{suffix}") == seconds(vfr_clip)
    # the last frame's duration (40 ms) is the source's, so the totals agree exactly
    assert out.duration == pytest.approx(src.duration, abs=1e-3)


def test_ntsc_rate_round_trip(ntsc_clip: Path, tmp_path: Path) -> None:
    src_path = ntsc_clip
    src = probe(src_path)
    out = copy_video(src_path, tmp_path / "out.mp4", size=(160, 120), preset="ultrafast")
    assert out.rate == Fraction(45000, 1499)
    assert out.frame_count == 36
    assert seconds(tmp_path / "out.mp4") == seconds(src_path)
    assert abs(out.duration - src.duration) < 1 / 29.97
    assert out.audio and out.audio[0].codec == src.audio[0].codec
    assert audio_seconds(tmp_path / "out.mp4") == pytest.approx(audio_seconds(src_path), abs=0.03)


def test_surround_audio_kept_and_window_trimmed(surround_clip: Path, tmp_path: Path) -> None:
    src = surround_clip
    out = copy_video(
        src, tmp_path / "bbb.mp4", size=(128, 72), start=50, end=75, preset="ultrafast"
    )
    assert out.frame_count == 25
    assert out.start_time == 0.0 and out.duration == pytest.approx(1.0, abs=1e-3)
    assert [(a.codec, a.channels) for a in out.audio] == [("aac", 6)]
    # 25 frames = 1 s of audio, cut at packet boundaries (21 ms)
    assert audio_seconds(tmp_path / "bbb.mp4") == pytest.approx(1.0, abs=0.05)


def test_audio_dropped_when_not_asked(cfr_clip: Path, tmp_path: Path) -> None:
    out = copy_video(cfr_clip, tmp_path / "silent.mp4", audio=False)
    assert out.audio == ()


def test_audio_reencoded_when_container_cannot_hold_it(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "u8.mkv", frames=12, audio_codec="pcm_u8", channels=1)
    assert probe(src).audio[0].codec == "pcm_u8"  # mp4 can't store unsigned 8-bit PCM
    out = copy_video(src, tmp_path / "out.mp4")
    assert [(a.codec, a.channels) for a in out.audio] == [("aac", 1)]
    assert audio_seconds(tmp_path / "out.mp4") == pytest.approx(0.48, abs=0.03)


def test_duplicate_audio_dts_are_dropped_not_fatal(tmp_path: Path) -> None:
    clean = make_clip(tmp_path / "clean.mkv", frames=12)
    broken = duplicate_audio_packets(clean, tmp_path / "broken.mkv", every=4)
    out = copy_video(broken, tmp_path / "out.mp4")  # MP4 refuses repeated DTS
    assert out.frame_count == 12

    def packets(path: Path) -> int:
        with av.open(str(path)) as c:
            return sum(1 for p in c.demux(c.streams.audio[0]) if p.size)

    assert packets(broken) > packets(clean) == packets(tmp_path / "out.mp4")


def test_chunk_with_time_offset_starts_at_zero(cfr_clip: Path, tmp_path: Path) -> None:
    out = copy_video(cfr_clip, tmp_path / "chunk.mkv", start=4, end=10)
    assert out.frame_count == 6
    got = seconds(tmp_path / "chunk.mkv")
    assert got == [Fraction(i, 25) for i in range(6)]
    assert out.duration == pytest.approx(6 / 25, abs=1e-3)
    assert audio_seconds(tmp_path / "chunk.mkv") == pytest.approx(6 / 25, abs=0.03)
    with VideoReader(tmp_path / "chunk.mkv") as reader:
        assert [frame_id(f.rgb) for f in reader] == list(range(4, 10))


@pytest.mark.parametrize(("codec", "suffix", "coded"), [
    ("libx264", ".mp4", (65, 49)),  # 4:4:4 (the source's, and any size): exactly the size
    ("libx264", ".mkv", (65, 49)),
    ("mpeg4", ".mkv", (66, 50)),  # 4:2:0 only, needs even sizes: padded, true size recorded
    ("ffv1", ".mkv", (65, 49)),  # RGB: any size
    ("libx264rgb", ".mkv", (65, 49)),
])  # fmt: skip
def test_odd_size_round_trip(
    tmp_path: Path, codec: str, suffix: str, coded: tuple[int, int]
) -> None:
    src = make_clip(tmp_path / "odd.mkv", size=(65, 49), frames=4, codec="ffv1", audio=False)
    out = copy_video(src, tmp_path / f"out{suffix}", codec=codec)
    assert (out.width, out.height) == coded
    assert (out.display_width, out.display_height) == (65, 49)
    with VideoReader(tmp_path / f"out{suffix}") as reader:
        frames = list(reader)
    assert all(f.rgb.shape == (49, 65, 3) for f in frames)
    assert [frame_id(f.rgb) for f in frames] == [0, 1, 2, 3]
    # the replicated edge must not leak in: last column/row close to the source's
    ref = frame_image(0, 65, 49)
    assert np.abs(frames[0].rgb[:, -1].astype(int) - ref[:, -1]).mean() < 6


@pytest.mark.parametrize("rotation", [90, 270])
def test_rotation_tag_kept_and_frames_upright(tmp_path: Path, rotation: int) -> None:
    src = make_clip(tmp_path / "phone.mp4", size=(64, 48), frames=6, rotation=rotation)
    out = copy_video(src, tmp_path / "out.mp4")
    assert out.rotation == rotation
    assert (out.width, out.height) == (48, 64)  # stored like the source
    assert (out.display_width, out.display_height) == (64, 48)
    with VideoReader(tmp_path / "out.mp4") as reader:
        frames = list(reader)
    assert [frame_id(f.rgb) for f in frames] == list(range(6))
    red = frames[0].rgb[..., 0].astype(int)
    assert red[5, 56] - red[5, 4] > 150  # still dark left, bright right


def test_colour_tags_and_aspect_carried(tmp_path: Path) -> None:
    tags = {"color_range": 2, "colorspace": 1, "color_primaries": 1, "color_trc": 1}
    src = make_clip(
        tmp_path / "c.mp4", frames=4, audio=False, color=tags,
        sample_aspect_ratio=Fraction(4, 3),
    )  # fmt: skip
    out = copy_video(src, tmp_path / "out.mkv")
    assert (out.color_range, out.colorspace, out.color_primaries, out.color_trc) == (2, 1, 1, 1)
    assert out.sample_aspect_ratio == Fraction(4, 3)
    with VideoReader(tmp_path / "out.mkv") as reader:
        rgb = next(iter(reader)).rgb.astype(int)
    assert np.abs(rgb - frame_image(0, 64, 48)).mean() < 4  # same matrix/range both ways


def test_round_trip_has_no_colour_shift(ntsc_clip: Path, tmp_path: Path) -> None:
    # swscale's fast paths darken by 1-2 levels per conversion; the pipeline converts twice
    src = ntsc_clip
    copy_video(src, tmp_path / "out.mp4", audio=False, end=6, crf=10, preset="ultrafast")
    with VideoReader(src, end_index=6) as a, VideoReader(tmp_path / "out.mp4") as b:
        diff = np.stack([fa.rgb.astype(float) - fb.rgb for fa, fb in zip(a, b, strict=True)])
    assert np.abs(diff.mean(axis=(0, 1, 2))).max() < 0.35


def test_untagged_source_gets_explicit_tags(cfr_clip: Path, tmp_path: Path) -> None:
    # The output may be resized to a size where players would guess another matrix,
    # so the matrix the pixels were converted with is written out.
    out = copy_video(cfr_clip, tmp_path / "out.mp4", audio=False)
    assert (out.color_range, out.colorspace) == (1, 6)  # limited, BT.601 (SD source)


def test_hevc_is_tagged_hvc1(cfr_clip: Path, tmp_path: Path) -> None:
    out = copy_video(cfr_clip, tmp_path / "out.mp4", codec="libx265", preset="ultrafast")
    assert out.codec == "hevc" and out.frame_count == 12
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert c.streams.video[0].codec_context.codec_tag == "hvc1"


def test_prores_hq_in_mov(cfr_clip: Path, tmp_path: Path) -> None:
    out = copy_video(cfr_clip, tmp_path / "out.mov", codec="prores_ks")
    assert out.codec == "prores" and out.pix_fmt == "yuv422p10le"
    with av.open(str(tmp_path / "out.mov")) as c:
        assert c.streams.video[0].codec_context.profile == "HQ"


def test_ffv1_is_lossless_for_rgb(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(3)]
    with VideoWriter(
        tmp_path / "x.mkv", width=64, height=48, rate=Fraction(25), time_base=Fraction(1, 25),
        codec="ffv1",
    ) as writer:  # fmt: skip
        for f in frames:
            writer.write(f)
    with VideoReader(tmp_path / "x.mkv") as reader:
        back = [f.rgb for f in reader]
    assert all(np.array_equal(a, b) for a, b in zip(frames, back, strict=True))


def test_default_pts_follow_the_rate(tmp_path: Path) -> None:
    with VideoWriter(
        tmp_path / "x.mp4", width=64, height=48, rate=Fraction(30000, 1001),
        time_base=Fraction(1, 30000),
    ) as writer:  # fmt: skip
        for i in range(5):
            writer.write(frame_image(i, 64, 48))
    info = probe(tmp_path / "x.mp4")
    assert info.rate == Fraction(30000, 1001)
    assert seconds(tmp_path / "x.mp4") == [Fraction(1001 * i, 30000) for i in range(5)]
    assert info.duration == pytest.approx(5 * 1001 / 30000, abs=1e-4)


def test_mp4_is_faststart(cfr_clip: Path, tmp_path: Path) -> None:
    copy_video(cfr_clip, tmp_path / "out.mp4")
    data = (tmp_path / "out.mp4").read_bytes()
    assert 0 <= data.find(b"moov") < data.find(b"mdat")


def test_bad_frames_and_pts_are_rejected(tmp_path: Path) -> None:
    with VideoWriter(
        tmp_path / "x.mp4", width=64, height=48, rate=Fraction(25), time_base=Fraction(1, 25)
    ) as writer:
        with pytest.raises(ValueError):
            writer.write(np.zeros((48, 64), np.uint8))
        writer.write(frame_image(0, 64, 48), pts=3)
        with pytest.raises(ValueError, match="increase"):
            writer.write(frame_image(1, 64, 48), pts=3)
        writer.write(frame_image(1, 64, 48), pts=4)
    assert probe(tmp_path / "x.mp4").frame_count == 2


# -- atomic output ---------------------------------------------------------------------------


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_failure_inside_with_leaves_nothing(tmp_path: Path, exc: type[BaseException]) -> None:
    target = tmp_path / "out.mp4"
    with pytest.raises(exc), VideoWriter(
        target, width=64, height=48, rate=Fraction(25), time_base=Fraction(1, 25)
    ) as writer:  # fmt: skip
        writer.write(frame_image(0, 64, 48))
        raise exc()
    assert not target.exists()
    assert leftovers(tmp_path) == []


def test_failure_keeps_existing_output(cfr_clip: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    target.write_bytes(b"previous render")
    with pytest.raises(RuntimeError), VideoWriter(
        target, width=64, height=48, rate=Fraction(25), time_base=Fraction(1, 25),
        audio_from=cfr_clip,
    ) as writer:  # fmt: skip
        for i in range(3):
            writer.write(frame_image(i, 64, 48))
        raise RuntimeError("network crashed")
    assert target.read_bytes() == b"previous render"
    assert leftovers(tmp_path) == []


def test_abort_and_empty_close(tmp_path: Path) -> None:
    writer = VideoWriter(
        tmp_path / "a.mp4", width=64, height=48, rate=Fraction(25), time_base=Fraction(1, 25)
    )
    writer.write(frame_image(0, 64, 48))
    writer.abort()
    empty = VideoWriter(
        tmp_path / "b.mp4", width=64, height=48, rate=Fraction(25), time_base=Fraction(1, 25)
    )
    with pytest.raises(MediaError, match="no frames"):
        empty.close()
    assert list(tmp_path.iterdir()) == []


def test_success_replaces_existing_output(cfr_clip: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    target.write_bytes(b"old")
    copy_video(cfr_clip, target)
    assert probe(target).frame_count == 12
    assert leftovers(tmp_path) == []


# -- errors ------------------------------------------------------------------------------------


def test_missing_output_directory_fails_before_work(tmp_path: Path) -> None:
    target = tmp_path / "nope" / "out.mp4"
    with pytest.raises(MediaError) as e:
        open_writer(str(target), width=64, height=48, rate=Fraction(25), time_base=Fraction(1, 25))
    assert str(target) in str(e.value) and "does not exist" in str(e.value)


@pytest.mark.parametrize(("codec", "suffix", "phrase"), [
    ("prores_ks", ".mp4", "can't hold"),
    ("no_such_codec", ".mp4", "unknown video encoder"),
])  # fmt: skip
def test_unusable_codec_is_one_clear_error(
    tmp_path: Path, codec: str, suffix: str, phrase: str
) -> None:
    with pytest.raises(MediaError, match=phrase):
        VideoWriter(
            tmp_path / f"x{suffix}", width=64, height=48, rate=Fraction(25),
            time_base=Fraction(1, 25), codec=codec,
        )  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_available_encoders_really_work(tmp_path: Path) -> None:
    names = available_encoders()
    assert "libx264" in names and "ffv1" in names
    assert "no_such_codec" not in available_encoders(["no_such_codec", "libx264"])
    for hw in ("h264_nvenc", "hevc_nvenc"):
        if hw not in names:  # listed by FFmpeg but not usable here: a clear error, not a crash
            with pytest.raises(MediaError, match="can't be used"):
                VideoWriter(
                    tmp_path / "x.mp4", width=64, height=48, rate=Fraction(25),
                    time_base=Fraction(1, 25), codec=hw,
                )  # fmt: skip
