"""The output's codec and pixel format follow the source (depth, chroma, alpha) and the
container, and its colour tags (primaries, transfer, matrix, range) come out as they went in,
whatever the codec."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from vidstyle import notices
from vidstyle.config import EncodeSettings, load_settings
from vidstyle.io.encoders import (
    CodecPlan,
    available_encoders,
    choose_codec,
    plan_codec,
    source_profile,
    with_chroma,
)
from vidstyle.io.probe import VideoInfo, probe
from vidstyle.io.reader import VideoReader
from vidstyle.io.writer import VideoWriter, writer_options

W, H = 64, 48
BT709 = {"color_primaries": 1, "color_trc": 1, "colorspace": 1, "color_range": 1}
HDR10 = {"color_primaries": 9, "color_trc": 16, "colorspace": 9, "color_range": 1}  # PQ
HLG = {"color_primaries": 9, "color_trc": 18, "colorspace": 9, "color_range": 1}
FULL709 = {**BT709, "color_range": 2}
TAG_NAMES = ("color_primaries", "color_trc", "colorspace", "color_range")


def make_source(
    path: Path, codec: str, pix_fmt: str, tags: dict[str, int] | None, frames: int = 6
) -> Path:
    """A tiny clip tagged on the stream *and* on every picture (as cameras write them)."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=25)
        vs.width, vs.height, vs.pix_fmt = W, H, pix_fmt
        cc = vs.codec_context
        if codec == "libx265":
            cc.options = {"preset": "ultrafast", "x265-params": "log-level=error"}
        elif codec == "libx264":
            cc.options = {"preset": "ultrafast"}
        elif codec == "prores_ks":
            full = "444" in pix_fmt
            cc.options = {"profile": "4444" if full else "hq", "vendor": "apl0"}
        for k, v in (tags or {}).items():
            setattr(cc, k, v)
        x = np.linspace(0, 255, W, dtype=np.float32)
        for i in range(frames):
            rgb = np.zeros((H, W, 3), np.uint8)
            rgb[..., 0] = x[None, :]
            rgb[..., 1] = 40 + 10 * i
            rgb[..., 2] = 128
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
            for k, v in (tags or {}).items():
                setattr(frame, k, v)
            frame.pts = i
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("formats")
    return {
        "h264": make_source(d / "h264.mp4", "libx264", "yuv420p", None),
        "hevc709": make_source(d / "hevc709.mp4", "libx265", "yuv420p10le", BT709),
        "hdr10": make_source(d / "hdr10.mp4", "libx265", "yuv420p10le", HDR10),
        "hlg": make_source(d / "hlg.mkv", "libx265", "yuv420p10le", HLG),
        "4444a": make_source(d / "alpha.mov", "prores_ks", "yuva444p10le", BT709),
        "422": make_source(d / "p422.mov", "prores_ks", "yuv422p10le", BT709),
        "full709": make_source(d / "full.mp4", "libx264", "yuv420p", FULL709),
    }


def reencode(src: Path, out: Path, **kw: object) -> VideoWriter:
    """What the pipeline does with uint8 frames, with the source as template."""
    with VideoWriter(
        out, width=W, height=H, rate=Fraction(25), time_base=Fraction(1, 25),
        template=probe(src), preset="ultrafast", **kw,
    ) as writer:  # fmt: skip
        for i in range(3):
            writer.write(np.full((H, W, 3), 90 + 20 * i, np.uint8))
    return writer


def read_back(path: Path, decoder: str | None = None) -> dict[str, object]:
    """Codec, the decoded picture's format and the tags as a player sees them: the stream's
    (container, before decoding) and the first picture's (bitstream)."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        cc = vs.codec_context
        stream_tags = tuple(int(getattr(cc, k)) for k in TAG_NAMES)
        codec, profile = cc.name, cc.profile
        if decoder is None:
            frame = next(c.decode(vs))
        else:
            dec = av.CodecContext.create(decoder, "r")
            frame = next(f for p in c.demux(vs) for f in dec.decode(p))
        fmt = frame.format
        return {
            "codec": codec,
            "profile": profile,
            "pix_fmt": fmt.name,
            "depth": max(comp.bits for comp in fmt.components),
            "alpha": any(comp.is_alpha for comp in fmt.components),
            "chroma": (fmt.chroma_width(64), fmt.chroma_height(64)),
            "stream_tags": stream_tags,
            "frame_tags": tuple(int(getattr(frame, k)) for k in TAG_NAMES),
        }


def tags_of(d: dict[str, int]) -> tuple[int, ...]:
    return tuple(d[k] for k in TAG_NAMES)


# -- decisions -----------------------------------------------------------------------------


def info(pix_fmt: str, codec: str = "hevc") -> VideoInfo:
    f = av.VideoFormat(pix_fmt)
    return VideoInfo(
        path=Path("src.mov"), width=W, height=H, rotation=0, display_width=W, display_height=H,
        time_base=Fraction(1, 25), rate=Fraction(25), frame_count=6, duration=0.24,
        start_time=0.0, codec=codec, pix_fmt=pix_fmt,
        bit_depth=max(c.bits for c in f.components), color_range=1, colorspace=1,
        color_primaries=1, color_trc=1, sample_aspect_ratio=None,
        has_alpha=any(c.is_alpha for c in f.components),
    )  # fmt: skip


@pytest.mark.parametrize(("container", "pix_fmt", "codec"), [
    ("mp4", "yuv420p", "libx264"),  # 8-bit: as always
    ("mov", "yuv420p", "libx264"),
    ("matroska", "yuv444p", "libx264"),
    ("avi", "yuv420p10le", "libx264"),  # no HEVC default there: H.264 (10-bit, see below)
    ("mp4", "yuv420p10le", "libx265"),
    ("matroska", "yuv422p10le", "libx265"),
    ("mov", "yuv420p10le", "prores_ks"),
    ("mov", "yuva444p12le", "prores_ks"),
    ("mov", "rgba", "prores_ks"),  # 8-bit with alpha
    ("matroska", "yuva444p12le", "ffv1"),
    ("matroska", "rgba", "ffv1"),
    ("mp4", "yuva444p12le", "libx265"),  # alpha can't stay: depth does
    ("mp4", "rgba", "libx264"),
    ("webm", "yuva420p", "libvpx-vp9"),
    ("webm", "yuv420p", "libvpx-vp9"),  # WebM can't hold H.264 at all
])  # fmt: skip
def test_auto_codec_follows_container_and_source(container, pix_fmt, codec):
    assert choose_codec(container, info(pix_fmt)) == codec


def test_auto_codec_without_a_source_is_libx264():
    assert choose_codec("mp4", None) == choose_codec("mov", None) == "libx264"


@pytest.mark.parametrize(("codec", "container", "source", "pix_fmt", "profile"), [
    # 8-bit sources: today's choices
    ("libx264", "mp4", "yuv420p", "yuv420p", None),
    ("libx264", "mp4", "yuv422p", "yuv422p", None),
    ("libx265", "mp4", "yuv420p", "yuv420p", None),
    ("ffv1", "matroska", "yuv420p", "bgr0", None),
    ("prores_ks", "mov", "yuv420p", "yuv422p10le", "hq"),
    # deeper sources: their depth and chroma, as near as the codec goes
    ("libx265", "mp4", "yuv420p10le", "yuv420p10le", None),
    ("libx265", "mp4", "yuv422p10le", "yuv422p10le", None),
    ("libx265", "mp4", "yuv444p12le", "yuv444p12le", None),
    ("libx265", "mp4", "yuv420p16le", "yuv420p12le", None),  # x265's deepest
    ("libx265", "mp4", "rgb48le", "yuv420p12le", None),
    ("libx264", "mp4", "yuv420p10le", "yuv420p10le", None),  # explicit codec: same rules
    ("prores_ks", "mov", "yuv420p10le", "yuv422p10le", "hq"),
    ("prores_ks", "mov", "yuv422p10le", "yuv422p10le", "hq"),
    ("prores_ks", "mov", "yuv444p12le", "yuv444p10le", "4444"),
    ("prores_ks", "mov", "rgb48le", "yuv444p10le", "4444"),
    ("ffv1", "matroska", "yuv420p10le", "yuv420p10le", None),
    ("ffv1", "matroska", "gbrp12le", "gbrp12le", None),
    # alpha, where codec and container keep it
    ("prores_ks", "mov", "yuva444p12le", "yuva444p10le", "4444"),
    ("prores_ks", "mov", "rgba", "yuva444p10le", "4444"),
    ("ffv1", "matroska", "yuva444p12le", "yuva444p12le", None),
    ("ffv1", "matroska", "yuva420p", "yuva420p", None),
    ("ffv1", "matroska", "rgba", "bgra", None),
    ("ffv1", "matroska", "rgba64le", "gbrap16le", None),
    ("libvpx-vp9", "webm", "yuva444p12le", "yuva420p", None),
    ("libvpx-vp9", "mp4", "yuva420p", "yuv420p", None),  # MP4 has no VP9 alpha
    ("libx264", "mp4", "yuva444p12le", "yuv444p10le", None),
])  # fmt: skip
def test_pixel_format_follows_the_source(codec, container, source, pix_fmt, profile):
    src = info(source)
    plan = plan_codec(
        codec, crf=None, preset=None, pix_fmt=None, container_format=container,
        source_bit_depth=src.bit_depth, source_pix_fmt=source, source_alpha=src.has_alpha,
    )  # fmt: skip
    assert plan.pix_fmt == pix_fmt
    assert plan.options.get("profile") == profile
    if plan.alpha and codec == "prores_ks":
        assert plan.options["alpha_bits"] == "16"


@pytest.mark.parametrize(("pix_fmt", "alpha", "depth"), [
    ("yuv420p", False, 8), ("bgr0", False, 8), ("bgra", True, 8), ("yuv422p10le", False, 10),
    ("yuva444p10le", True, 10), ("rgba64le", True, 16), ("gbrapf32le", True, 32),
])  # fmt: skip
def test_plan_says_what_the_writer_converts_to(pix_fmt, alpha, depth):
    plan = CodecPlan("ffv1", pix_fmt)
    assert (plan.alpha, plan.bit_depth) == (alpha, depth)


def test_prores_xq_source_stays_xq():
    plan = plan_codec(
        "prores_ks", crf=None, preset=None, pix_fmt=None, container_format="mov",
        source_bit_depth=12, source_pix_fmt="yuva444p12le", source_alpha=True,
        source_profile="XQ",
    )  # fmt: skip
    assert (plan.pix_fmt, plan.options["profile"]) == ("yuva444p10le", "4444xq")


def test_source_profile_is_read_for_prores_only(sources):
    assert source_profile(probe(sources["4444a"])) == "4444"
    assert source_profile(probe(sources["422"])) == "HQ"
    assert source_profile(probe(sources["hdr10"])) is None


def test_prores_aw_picks_its_own_profile():
    # prores_aw has no "profile" option: naming one made it fail to open
    plan = plan_codec(
        "prores", crf=None, preset=None, pix_fmt=None, container_format="mov",
        source_bit_depth=10, source_pix_fmt="yuv444p10le",
    )  # fmt: skip
    assert plan.pix_fmt == "yuv444p10le" and "profile" not in plan.options
    assert available_encoders(["prores"]) == ["prores"]


def test_explicit_pixel_format_wins_and_sets_prores_profile():
    plan = plan_codec(
        "prores_ks", crf=None, preset=None, pix_fmt="yuv444p10le", container_format="mov",
        source_bit_depth=10, source_pix_fmt="yuv420p10le",
    )  # fmt: skip
    assert (plan.pix_fmt, plan.options["profile"]) == ("yuv444p10le", "4444")


def test_odd_sizes_keep_alpha_when_going_444():
    assert with_chroma("yuva420p", "444", ["yuva420p", "yuva444p"]) == "yuva444p"
    assert with_chroma("yuv420p10le", "444", []) == "yuv444p10le"


def test_settings_default_to_auto():
    assert EncodeSettings().codec == "auto"
    assert {load_settings(p).encode.codec for p in ("draft", "balanced", "best")} == {"auto"}


# -- end to end: codec, format, tags read back ----------------------------------------------


@pytest.mark.parametrize(("source", "suffix", "codec", "pix_fmt", "depth", "chroma", "alpha"), [
    ("hevc709", ".mp4", "hevc", "yuv420p10le", 10, (32, 32), False),
    ("hevc709", ".mkv", "hevc", "yuv420p10le", 10, (32, 32), False),
    ("hevc709", ".mov", "prores", "yuv422p10le", 10, (32, 64), False),
    ("hdr10", ".mp4", "hevc", "yuv420p10le", 10, (32, 32), False),
    ("hdr10", ".mov", "prores", "yuv422p10le", 10, (32, 64), False),
    ("hdr10", ".mkv", "hevc", "yuv420p10le", 10, (32, 32), False),
    ("hlg", ".mov", "prores", "yuv422p10le", 10, (32, 64), False),
    ("hlg", ".mp4", "hevc", "yuv420p10le", 10, (32, 32), False),
    ("422", ".mov", "prores", "yuv422p10le", 10, (32, 64), False),
    ("422", ".mp4", "hevc", "yuv422p10le", 10, (32, 64), False),
    # ProRes 4444 decodes to 12 bits; it stays 4444 with alpha, or FFV1 at 12 bits with alpha
    ("4444a", ".mov", "prores", "yuva444p12le", 12, (64, 64), True),
    ("4444a", ".mkv", "ffv1", "yuva444p12le", 12, (64, 64), True),
])  # fmt: skip
def test_default_output_follows_source(
    sources, tmp_path, source, suffix, codec, pix_fmt, depth, chroma, alpha
):
    src = sources[source]
    reencode(src, tmp_path / f"out{suffix}")
    got, want = read_back(tmp_path / f"out{suffix}"), read_back(src)
    assert (got["codec"], got["pix_fmt"], got["depth"], got["chroma"], got["alpha"]) == (
        codec, pix_fmt, depth, chroma, alpha,
    )  # fmt: skip
    assert got["stream_tags"] == got["frame_tags"] == want["frame_tags"]
    if codec == "prores":
        assert got["profile"] == ("4444" if alpha else "HQ")


@pytest.mark.parametrize("tags", ["hdr10", "hevc709", "hlg"])
@pytest.mark.parametrize(("codec", "suffix"), [
    ("libx264", ".mp4"), ("libx265", ".mp4"), ("prores_ks", ".mov"), ("ffv1", ".mkv"),
])  # fmt: skip
def test_colour_tags_identical_for_every_codec(sources, tmp_path, tags, codec, suffix):
    src = sources[tags]
    want = tags_of({"hdr10": HDR10, "hevc709": BT709, "hlg": HLG}[tags])
    out = tmp_path / f"out{suffix}"
    writer = reencode(src, out, codec=codec)
    got = read_back(out)
    assert got["stream_tags"] == got["frame_tags"] == want
    assert got["depth"] >= 10 and writer.plan.bit_depth >= 10  # explicit codec: source depth too


def test_untagged_prores_frames_were_the_bug(sources, tmp_path):
    # Decoders take ProRes tags from each picture's header, not from the .mov's colr atom.
    writer = reencode(sources["hdr10"], tmp_path / "out.mov")
    with av.open(str(tmp_path / "out.mov")) as c:
        frame = next(c.decode(video=0))
        assert (frame.color_primaries, frame.color_trc) == (9, 16)
    assert writer.color.color_trc == 16


def test_full_range_source_to_prores_is_converted_to_limited(sources, tmp_path):
    # ProRes has no full-range flag: every decoder reads it as limited range.
    reencode(sources["full709"], tmp_path / "out.mov", codec="prores_ks")
    got = read_back(tmp_path / "out.mov")
    assert got["stream_tags"] == got["frame_tags"] == (1, 1, 1, 1)
    with VideoReader(tmp_path / "out.mov") as reader:
        levels = [int(np.rint(f.rgb.mean())) for f in reader]
    assert levels == [90, 110, 130]


def test_8bit_source_unchanged(sources, tmp_path):
    for suffix in (".mp4", ".mkv", ".mov"):
        writer = reencode(sources["h264"], tmp_path / f"out{suffix}")
        got = read_back(tmp_path / f"out{suffix}")
        assert (writer.plan.name, got["codec"], got["pix_fmt"]) == ("libx264", "h264", "yuv420p")


def test_alpha_dropped_once_with_a_warning_for_mp4(sources, tmp_path):
    with notices.capture() as said:
        writer = reencode(sources["4444a"], tmp_path / "out.mp4")
    assert said == [
        f"{tmp_path / 'out.mp4'}: alpha channel dropped: mp4/libx265 can't hold it; "
        "use .mov (ProRes 4444) or .mkv (FFV1)"
    ]
    assert not writer.plan.alpha
    got = read_back(tmp_path / "out.mp4")
    assert (got["codec"], got["depth"], got["chroma"], got["alpha"]) == (
        "hevc", 12, (64, 64), False,
    )  # fmt: skip
    with notices.capture() as said:
        reencode(sources["4444a"], tmp_path / "out.mov")
        reencode(sources["4444a"], tmp_path / "out.mkv")
    assert said == []


def test_webm_keeps_alpha_in_vp9(sources, tmp_path):
    writer = reencode(sources["4444a"], tmp_path / "out.webm")
    assert (writer.plan.name, writer.plan.pix_fmt) == ("libvpx-vp9", "yuva420p")
    got = read_back(tmp_path / "out.webm", decoder="libvpx-vp9")  # FFmpeg's own skips alpha
    assert (got["codec"], got["pix_fmt"]) == ("vp9", "yuva420p")


def test_settings_reach_the_writer(sources, tmp_path):
    src = sources["hdr10"]
    encode = load_settings("draft").encode
    with VideoWriter(tmp_path / "out.mp4", **writer_options((W, H), probe(src), encode)) as w:
        w.write(np.full((H, W, 3), 90, np.uint8))
    got = read_back(tmp_path / "out.mp4")
    assert (got["codec"], got["pix_fmt"], got["frame_tags"]) == (
        "hevc",
        "yuv420p10le",
        (9, 16, 9, 1),
    )
