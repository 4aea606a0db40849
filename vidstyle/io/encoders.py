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
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np

from vidstyle.errors import MediaError

if TYPE_CHECKING:
    from vidstyle.io.probe import VideoInfo

#: `--codec auto` (the default): the codec follows the output container and the source.
AUTO = "auto"

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
    def alpha(self) -> bool:
        """The pictures this plan encodes carry an alpha channel."""
        return any(c.is_alpha for c in av.VideoFormat(self.pix_fmt).components)

    @property
    def bit_depth(self) -> int:
        """Bits per sample of the encoded pictures (8, 10, 12, 16; 32 for float formats)."""
        return max(c.bits for c in av.VideoFormat(self.pix_fmt).components)

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


#: Containers the default picks HEVC for when the source has more than 8 bits.
_HEVC_CONTAINERS = ("mp4", "mov", "matroska", "mpegts", "ts", "m2ts", "mts")
#: Encoders that keep an alpha channel in their bitstream (VP9's only in Matroska/WebM).
_ALPHA_ENCODERS = ("prores_ks", "ffv1", "libvpx-vp9")
_PRORES = ("prores_ks", "prores", "prores_aw")
_DEPTHS = (8, 9, 10, 12, 14, 16)
_CHROMAS = ("420", "422", "444")


def choose_codec(container_format: str, source: VideoInfo | None) -> str:
    """The encoder `--codec auto` picks for a `container_format` output of `source`.

    8-bit sources get libx264 as always. A deeper source gets a codec that keeps its depth
    (ProRes in .mov, HEVC in .mp4/.mkv), one with alpha a codec that keeps the alpha (ProRes
    4444 in .mov, FFV1 in .mkv, VP9 in .webm); WebM only takes VP8/VP9/AV1."""
    fmt = container_format.lower()
    depth = source.bit_depth if source is not None else 8
    alpha = source is not None and source.has_alpha
    if fmt == "webm":
        return "libvpx-vp9"
    if (alpha or depth > 8) and fmt == "mov" and encoder_exists("prores_ks"):
        return "prores_ks"
    if alpha and fmt == "matroska" and encoder_exists("ffv1"):
        return "ffv1"
    if depth > 8 and fmt in _HEVC_CONTAINERS and encoder_exists("libx265"):
        return "libx265"
    return "libx264"


def holds_alpha(codec: str, container_format: str) -> bool:
    """Whether `codec` in a `container_format` file can keep an alpha channel."""
    if codec == "libvpx-vp9":
        return container_format in ("webm", "matroska")
    return codec in _ALPHA_ENCODERS


def limited_range_only(codec: str) -> bool:
    """ProRes has no full-range flag: every decoder reads it as limited range."""
    return codec in _PRORES


def source_profile(source: VideoInfo | None) -> str | None:
    """The source's codec profile where the plan follows it (ProRes: "4444", "XQ", "HQ")."""
    if source is None or source.codec != "prores" or not Path(source.path).is_file():
        return None
    st = Path(source.path).stat()
    return _profile_of(str(source.path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _profile_of(path: str, size: int, mtime_ns: int) -> str | None:
    try:
        with av.open(path) as container:
            profile = container.streams.video[0].codec_context.profile
    except (av.FFmpegError, OSError, IndexError, ValueError):
        return None
    return str(profile) if profile else None


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
    source_alpha: bool = False,
    source_profile: str | None = None,
) -> CodecPlan:
    """Pick the pixel format and encoder options for `codec` (an FFmpeg encoder name).

    Without an explicit `pix_fmt`, a YUV codec keeps the source's chroma subsampling where it
    can (4:4:4 stays 4:4:4, 4:2:2 stays 4:2:2). An 8-bit source gets the codec's usual bit
    depth; a deeper one the source's depth where the codec takes it (else the nearest), and a
    source with alpha (`source_alpha`) an alpha format where the codec and container keep it.
    ProRes's profile follows the format: 4444 (XQ if `source_profile` is) for 4:4:4 or alpha,
    else 422 HQ."""
    if not encoder_exists(codec):
        raise MediaError(f"unknown video encoder {codec!r}; available: {_available_text()}")
    c = av.codec.Codec(codec, "w")
    if c.type != "video":
        raise MediaError(f"{codec!r} is not a video encoder")
    supported = [f.name for f in (c.video_formats or ())]
    if pix_fmt is None:
        keep_alpha = source_alpha and holds_alpha(codec, container_format)
        if source_bit_depth > 8 or keep_alpha:
            pix_fmt = like_source(
                codec, supported, source_pix_fmt, source_bit_depth, alpha=keep_alpha
            )
    if pix_fmt is None:
        pix_fmt = _DEFAULT_PIX_FMT.get(codec)
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
    if codec == "prores_ks":
        opts.update(prores_options(pix_fmt, source_profile))
    elif codec in _PRORES:  # prores_aw picks its profile from the format; no "profile" option
        opts["vendor"] = "apl0"
    if codec == "ffv1":
        opts.update({"level": "3", "slicecrc": "1", "g": "1"})
    opts.update({k: str(v) for k, v in (options or {}).items()})
    tag = "hvc1" if c.canonical_name == "hevc" and container_format in ("mp4", "mov") else None
    return CodecPlan(name=codec, pix_fmt=pix_fmt, options=opts, codec_tag=tag)


def prores_options(pix_fmt: str, source_profile: str | None) -> dict[str, str]:
    """prores_ks's profile for the pixel format: 4:4:4 or alpha is 4444 (XQ when the source
    was), anything else 422 HQ; alpha is written with 16 bits."""
    fmt = av.VideoFormat(pix_fmt)
    alpha = any(comp.is_alpha for comp in fmt.components)
    if alpha or fmt.chroma_width(64) == 64:
        xq = "xq" in (source_profile or "").lower()
        opts = {"profile": "4444xq" if xq else "4444", "vendor": "apl0"}
        if alpha:
            opts["alpha_bits"] = "16"
        return opts
    return {"profile": "hq", "vendor": "apl0"}


def like_source(
    codec: str, supported: list[str], source_pix_fmt: str | None, depth: int, *, alpha: bool
) -> str | None:
    """The format `codec` takes that is closest to the source's: alpha (if wanted) first, then
    bit depth (the source's, else the next deeper, else the next shallower), then chroma
    subsampling (the source's, else finer, else coarser). RGB stays RGB for FFV1; other
    codecs get YUV (RGB sources: their usual chroma, 4:4:4 for ProRes). None: nothing fits."""
    rgb_source = _is_rgb(source_pix_fmt)
    chroma = chroma_of(source_pix_fmt) or _chroma_of_any(source_pix_fmt)
    if chroma is None:  # RGB (or unknown): the codec's usual subsampling
        chroma = "444" if codec in _PRORES and rgb_source else _usual_chroma(codec)
    if alpha and codec == "libvpx-vp9":
        chroma = "420"  # the VP9 alpha that browsers play
    rgb_first = codec == "libx264rgb" or (codec == "ffv1" and rgb_source)
    families = (True, False) if rgb_first else (False, True)
    want = next((d for d in _DEPTHS if d >= depth), _DEPTHS[-1])
    depths = [d for d in _DEPTHS if d >= want] + [d for d in reversed(_DEPTHS) if d < want]
    i = _CHROMAS.index(chroma)
    chromas = [*_CHROMAS[i:], *reversed(_CHROMAS[:i])]
    for a in (True, False) if alpha else (False,):
        for rgb in families:
            for d in depths:
                names = (
                    _rgb_names(d, a) if rgb else [n for ch in chromas for n in _yuv_names(ch, d, a)]
                )
                found = next((n for n in names if n in supported), None)
                if found is not None:
                    return found
    return None


#: Semi-planar twins of the planar formats (what hardware encoders take).
_SEMI_PLANAR = {
    ("420", 8): "nv12", ("420", 10): "p010le", ("420", 12): "p012le", ("420", 16): "p016le",
    ("422", 8): "nv16", ("422", 10): "p210le", ("422", 16): "p216le",
    ("444", 8): "nv24", ("444", 10): "p410le", ("444", 16): "p416le",
}  # fmt: skip


def _yuv_names(chroma: str, depth: int, alpha: bool) -> list[str]:
    planar = f"yuv{'a' if alpha else ''}{chroma}p{'' if depth == 8 else f'{depth}le'}"
    semi = None if alpha else _SEMI_PLANAR.get((chroma, depth))
    return [planar, semi] if semi else [planar]


def _rgb_names(depth: int, alpha: bool) -> list[str]:
    if depth == 8:
        return ["bgra", "gbrap", "rgba"] if alpha else ["bgr0", "gbrp", "rgb24"]
    if depth == 16:
        return ["gbrap16le", "rgba64le"] if alpha else ["gbrp16le", "rgb48le"]
    return [f"gbrap{depth}le"] if alpha else [f"gbrp{depth}le"]


def _usual_chroma(codec: str) -> str:
    return chroma_of(_DEFAULT_PIX_FMT.get(codec)) or "420"


def _is_rgb(pix_fmt: str | None) -> bool:
    try:
        return bool(pix_fmt) and bool(av.VideoFormat(pix_fmt).is_rgb)
    except (ValueError, av.FFmpegError):
        return False


def _chroma_of_any(pix_fmt: str | None) -> str | None:
    """Chroma subsampling of any YUV format (nv12, p010le, yuv411p ...) as 420/422/444."""
    if not pix_fmt or _is_rgb(pix_fmt):
        return None
    try:
        f = av.VideoFormat(pix_fmt)
    except (ValueError, av.FFmpegError):
        return None
    if len(f.components) < 3:
        return None  # gray
    w, h = f.chroma_width(64), f.chroma_height(64)
    return "444" if (w, h) == (64, 64) else "422" if h == 64 and w == 32 else "420"


_PLANAR_YUV = re.compile(r"^yuv(a|j)?(420|422|444)p(\d+le)?$")


def chroma_of(pix_fmt: str | None) -> str | None:
    """ "420", "422" or "444" for a planar YUV format (yuvj and yuva too), else None."""
    match = _PLANAR_YUV.match(pix_fmt or "")
    return match.group(2) if match else None


def with_chroma(pix_fmt: str, chroma: str, supported: list[str]) -> str | None:
    """`pix_fmt` (planar YUV) with another chroma subsampling, same bit depth and alpha, if the
    encoder takes it (yuv420p10le, "444" -> yuv444p10le)."""
    match = _PLANAR_YUV.match(pix_fmt)
    if match is None:
        return None
    alpha = "a" if match.group(1) == "a" else ""
    candidate = f"yuv{alpha}{chroma}p{match.group(3) or ''}"
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
