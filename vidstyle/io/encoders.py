"""Encoder choices: pixel format, rate-control options and container compatibility per codec,
and which encoders really work on this machine.

PyAV lists every encoder FFmpeg was built with (h264_nvenc, h264_qsv, ...), but hardware ones
only work with the hardware and driver present, so availability is tested by opening the
encoder and encoding one frame.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np

from vidstyle.errors import MediaError

#: Encoders worth offering, in order of preference within their family.
CANDIDATES: tuple[str, ...] = (
    "libx264", "libx265", "libx264rgb", "prores_ks", "ffv1", "libsvtav1", "libvpx-vp9",
    "h264_nvenc", "hevc_nvenc", "av1_nvenc", "h264_qsv", "hevc_qsv", "h264_vaapi",
    "hevc_vaapi", "h264_amf", "hevc_amf", "h264_videotoolbox", "hevc_videotoolbox", "mpeg4",
)  # fmt: skip

_DEFAULT_PIX_FMT = {
    "libx264": "yuv420p",
    "libx265": "yuv420p",
    "libx264rgb": "rgb24",
    "prores_ks": "yuv422p10le",
    "prores": "yuv422p10le",
    "prores_aw": "yuv422p10le",
    "ffv1": "bgr0",  # bit-exact for our RGB frames: a lossless intermediate really is lossless
    "libsvtav1": "yuv420p",
    "libvpx-vp9": "yuv420p",
    "mpeg4": "yuv420p",
}

_CRF_OPTION = {
    "libx264": "crf",
    "libx264rgb": "crf",
    "libx265": "crf",
    "libsvtav1": "crf",
    "libvpx-vp9": "crf",
}


@dataclass(frozen=True)
class CodecPlan:
    name: str
    pix_fmt: str
    options: dict[str, str] = field(default_factory=dict)
    codec_tag: str | None = None

    @property
    def rgb(self) -> bool:
        return bool(av.VideoFormat(self.pix_fmt).is_rgb)

    @property
    def subsampling(self) -> tuple[int, int]:
        """How many pixels each chroma sample covers (x, y): sizes must be multiples of it."""
        f = av.VideoFormat(self.pix_fmt)
        return max(1, 64 // f.chroma_width(64)), max(1, 64 // f.chroma_height(64))


def encoder_exists(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except (ValueError, av.FFmpegError):
        return False
    return True


def plan_codec(
    codec: str,
    *,
    crf: int | None,
    preset: str | None,
    pix_fmt: str | None,
    container_format: str,
    source_bit_depth: int = 8,
    options: dict[str, str] | None = None,
    source_pix_fmt: str | None = None,
) -> CodecPlan:
    """Pick the pixel format and encoder options for `codec` (an FFmpeg encoder name).

    Without an explicit `pix_fmt`, a YUV codec keeps the source's chroma subsampling where it
    can (4:4:4 stays 4:4:4, 4:2:2 stays 4:2:2) at the codec's usual bit depth."""
    if not encoder_exists(codec):
        raise MediaError(f"unknown video encoder {codec!r}; available: {_available_text()}")
    c = av.codec.Codec(codec, "w")
    if c.type != "video":
        raise MediaError(f"{codec!r} is not a video encoder")
    supported = [f.name for f in (c.video_formats or ())]
    if pix_fmt is None:
        pix_fmt = _DEFAULT_PIX_FMT.get(codec)
        if codec == "libx265" and source_bit_depth > 8:
            pix_fmt = "yuv420p10le"
        if pix_fmt is None or (supported and pix_fmt not in supported):
            pix_fmt = next((f for f in ("yuv420p", "nv12") if f in supported), None)
            pix_fmt = pix_fmt or (supported[0] if supported else "yuv420p")
        pix_fmt = with_chroma_of(pix_fmt, source_pix_fmt, supported)
    elif supported and pix_fmt not in supported:
        raise MediaError(
            f"encoder {codec} can't take pixel format {pix_fmt}; it takes {', '.join(supported)}"
        )
    opts: dict[str, str] = {}
    family = codec.split("_")[-1] if "_" in codec else codec
    if crf is not None:
        if codec in _CRF_OPTION:
            opts[_CRF_OPTION[codec]] = str(crf)
            if codec == "libvpx-vp9":
                opts["b"] = "0"
        elif family == "nvenc":
            opts.update({"rc": "vbr", "cq": str(crf), "b": "0"})
        elif family == "qsv":
            opts["global_quality"] = str(crf)
    takes_preset = codec in ("libx264", "libx264rgb", "libx265", "libsvtav1") or family == "nvenc"
    if preset is not None and takes_preset:
        opts["preset"] = str(preset)
    if codec == "libx265":
        opts["x265-params"] = "log-level=error"
    if codec == "libsvtav1":
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner to stderr otherwise
    if codec in ("prores_ks", "prores"):
        opts.setdefault("profile", "hq")
        opts.setdefault("vendor", "apl0")
    if codec == "ffv1":
        opts.update({"level": "3", "slicecrc": "1", "g": "1"})
    opts.update({k: str(v) for k, v in (options or {}).items()})
    tag = "hvc1" if c.canonical_name == "hevc" and container_format in ("mp4", "mov") else None
    return CodecPlan(name=codec, pix_fmt=pix_fmt, options=opts, codec_tag=tag)


_PLANAR_YUV = re.compile(r"^yuvj?(420|422|444)p(\d+le)?$")


def chroma_of(pix_fmt: str | None) -> str | None:
    """ "420", "422" or "444" for a planar YUV format (yuvj too), else None."""
    match = _PLANAR_YUV.match(pix_fmt or "")
    return match.group(1) if match else None


def with_chroma(pix_fmt: str, chroma: str, supported: list[str]) -> str | None:
    """`pix_fmt` (planar YUV) with another chroma subsampling, same bit depth, if the encoder
    takes it (yuv420p10le, "444" -> yuv444p10le)."""
    match = _PLANAR_YUV.match(pix_fmt)
    if match is None:
        return None
    candidate = f"yuv{chroma}p{match.group(2) or ''}"
    return candidate if not supported or candidate in supported else None


def with_chroma_of(pix_fmt: str, source_pix_fmt: str | None, supported: list[str]) -> str:
    """The planned YUV format with the source's chroma subsampling, where the encoder takes it
    (RGB plans and RGB or odd sources are left alone)."""
    chroma = chroma_of(source_pix_fmt)
    if chroma is None or chroma_of(pix_fmt) in (None, chroma):
        return pix_fmt
    return with_chroma(pix_fmt, chroma, supported) or pix_fmt


def _try_encoder(name: str) -> bool:
    """Open `name` and encode one small frame; False if anything fails."""
    if not encoder_exists(name):
        return False
    try:
        plan = plan_codec(name, crf=None, preset=None, pix_fmt=None, container_format="")
        cc = av.CodecContext.create(name, "w")
        cc.width, cc.height = 256, 144  # above hardware encoders' minimum sizes
        cc.pix_fmt = plan.pix_fmt
        cc.time_base = Fraction(1, 25)
        cc.framerate = Fraction(25)
        cc.options = dict(plan.options)
        frame = av.VideoFrame.from_ndarray(np.zeros((144, 256, 3), np.uint8), format="rgb24")
        frame = frame.reformat(format=plan.pix_fmt)
        frame.pts = 0
        cc.encode(frame)
        cc.encode(None)
    except (av.FFmpegError, ValueError, OSError, RuntimeError, MediaError):
        return False
    return True


@functools.cache
def _works(name: str) -> bool:
    return _try_encoder(name)


def available_encoders(candidates: Iterable[str] | None = None) -> list[str]:
    """The video encoders that really work here (opened and fed a frame), cached per process."""
    return [n for n in (candidates or CANDIDATES) if _works(n)]


def _available_text() -> str:
    return ", ".join(available_encoders(("libx264", "libx265", "prores_ks", "ffv1")))


def require_encoder(name: str) -> None:
    """MediaError unless `name` works on this machine (e.g. h264_nvenc without a GPU)."""
    if not encoder_exists(name):
        raise MediaError(f"unknown video encoder {name!r}; available: {_available_text()}")
    if not _works(name):
        raise MediaError(
            f"video encoder {name} can't be used on this machine (no hardware/driver?); "
            f"available: {', '.join(available_encoders())}"
        )
