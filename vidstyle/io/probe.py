"""What a video or an image sequence is: size, rotation, exact timing, colour tags, audio.

Timing comes from demuxing every video packet (no decoding), because headers lie or are
missing: Matroska has no frame count, MP4 edit lists hide leading frames, VFR clips have no
single frame rate. Only the first frame is decoded, for its rotation and colour tags. An image
sequence is described from its file list and its first image (the sequence readers and writers,
io/sequence.py, build on this module, never the other way round).
"""

from __future__ import annotations

import functools
import os
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from vidstyle import notices
from vidstyle.errors import MediaError
from vidstyle.io.images import read_plate
from vidstyle.io.patterns import is_image_sequence, list_sequence
from vidstyle.io.timecode import read as read_timecode
from vidstyle.io.timeline import divx_packed_bframes, rate_text, repair_timestamps

#: Container metadata key holding the true (unpadded, coded-orientation) size "WxH" of a video
#: whose encoder needed even dimensions.
SOURCE_SIZE_KEY = "vidstyle_source_size"


@dataclass(frozen=True)
class AudioInfo:
    index: int  # stream index in the container
    codec: str
    channels: int
    sample_rate: int
    layout: str = ""


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int  # coded (stored) size
    height: int
    rotation: int  # 0/90/180/270: counter-clockwise degrees to turn the stored frame upright
    display_width: int  # upright size (swapped for 90/270, padding removed)
    display_height: int
    time_base: Fraction
    rate: Fraction | None
    frame_count: int
    duration: float
    start_time: float
    codec: str
    pix_fmt: str
    bit_depth: int
    color_range: int
    colorspace: int
    color_primaries: int
    color_trc: int
    sample_aspect_ratio: Fraction | None
    audio: tuple[AudioInfo, ...] = field(default_factory=tuple)
    is_vfr: bool = False
    is_image_sequence: bool = False
    #: the pictures carry an alpha channel (yuva444p10le, rgba, gbrapf32le, 4-channel PNG)
    has_alpha: bool = False
    #: SMPTE start timecode of the first frame ("01:00:00:00", ";" for drop-frame); "" if none
    timecode: str = ""

    @property
    def coded_size(self) -> tuple[int, int]:
        """The stored size without any padding vidstyle added (coded orientation)."""
        if self.rotation in (90, 270):
            return self.display_height, self.display_width
        return self.display_width, self.display_height

    @property
    def end_time(self) -> float:
        return self.start_time + self.duration

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: paths as strings, fractions as "num/den" strings (exact)."""
        d = asdict(self)
        d["path"] = str(self.path)
        for k in ("time_base", "rate", "sample_aspect_ratio"):
            d[k] = None if d[k] is None else _frac_str(d[k])
        d["audio"] = [asdict(a) for a in self.audio]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VideoInfo:
        d = dict(d)
        d["path"] = Path(d["path"])
        for k in ("time_base", "rate", "sample_aspect_ratio"):
            d[k] = None if d.get(k) is None else Fraction(d[k])
        d["audio"] = tuple(AudioInfo(**a) for a in d.get("audio", ()))
        return cls(**d)


def _frac_str(f: Fraction) -> str:
    return f"{f.numerator}/{f.denominator}"


def probe(path: str | os.PathLike[str], *, rate: Fraction | None = None) -> VideoInfo:
    """Describe a video file or an image sequence (`rate` applies to sequences only)."""
    if is_image_sequence(path):
        return probe_sequence(path, rate=rate)
    return _scan(Path(path)).info


def frame_timestamps(path: str | os.PathLike[str]) -> list[int]:
    """pts (in the video time base) of every frame in presentation order, from demuxing only."""
    if is_image_sequence(path):
        return list(range(probe(path).frame_count))
    return _scan(Path(path)).pts.tolist()


#: Frame rate of an image sequence when none is given.
DEFAULT_RATE = Fraction(24)
#: AVColorTransferCharacteristic LINEAR
TRC_LINEAR = 8
_PLATE_DEPTHS = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16, np.dtype(np.float32): 16}


def sequence_files(pattern: str | os.PathLike[str]) -> list[tuple[int | None, Path]]:
    """(number, path) of every file of an image sequence, in order; none is an error."""
    files = list_sequence(pattern)
    if not files:
        raise MediaError("no image files match this sequence pattern", Path(os.fspath(pattern)))
    return files


def probe_sequence(pattern: str | os.PathLike[str], *, rate: Fraction | None = None) -> VideoInfo:
    """Describe a sequence from its file list and its first image."""
    files = sequence_files(pattern)
    first, alpha = read_plate(files[0][1])
    rate = Fraction(rate) if rate else DEFAULT_RATE
    n = len(files)
    h, w = first.shape[:2]
    suffix = files[0][1].suffix.lower().lstrip(".")
    depth = _PLATE_DEPTHS[first.dtype]
    exr = suffix == "exr"
    if exr:
        pix_fmt = "gbrapf32le" if alpha is not None else "gbrpf32le"
    else:
        pix_fmt = {8: "rgb", 16: "rgb48le"}[depth]
        pix_fmt = {"rgb": "rgba", "rgb48le": "rgba64le"}[pix_fmt] if alpha is not None else pix_fmt
        pix_fmt = {"rgb": "rgb24"}.get(pix_fmt, pix_fmt)
    return VideoInfo(
        path=Path(os.fspath(pattern)),
        width=w,
        height=h,
        rotation=0,
        display_width=w,
        display_height=h,
        time_base=1 / rate,
        rate=rate,
        frame_count=n,
        duration=float(n / rate),
        start_time=0.0,
        codec={"jpg": "mjpeg", "jpeg": "mjpeg", "tif": "tiff"}.get(suffix, suffix),
        pix_fmt=pix_fmt,
        bit_depth=depth,
        color_range=0,
        colorspace=0,  # RGB
        color_primaries=2,
        color_trc=TRC_LINEAR if exr else 2,  # EXR holds scene-linear light
        sample_aspect_ratio=None,
        audio=(),
        is_vfr=False,
        is_image_sequence=True,
        has_alpha=alpha is not None,
    )


@dataclass(frozen=True)
class Scan:
    info: VideoInfo
    pts: np.ndarray  # int64, strictly increasing: frame i (display order) is shown at pts[i]
    stream_index: int
    #: False when the labels can't be trusted (missing, repeated, packed B-frames): readers
    #: then decode from the start and count frames instead of seeking by timestamp.
    seekable: bool
    notes: tuple[str, ...] = ()  # what is wrong with the file, one line each (no file name)
    packed_bframes: bool = False  # DivX packed B-frames: unpacked before decoding
    promised_frames: int = 0  # frames the container's index or header promised (0: unknown)


def _scan(path: Path) -> Scan:
    if not path.exists():
        raise MediaError("file not found", path)
    if path.is_dir():
        raise MediaError("is a directory, not a video file", path)
    st = path.stat()
    scan = _scan_cached(str(path.resolve()), st.st_size, st.st_mtime_ns, str(path))
    for note in scan.notes:  # said once per command, however often the file is probed
        notices.warn(note, path)
    return scan


def open_input(path: Path) -> av.container.InputContainer:
    """av.open with every failure turned into one MediaError line naming the file."""
    if not path.exists():
        raise MediaError("file not found", path)
    if path.is_dir():
        raise MediaError("is a directory, not a video file", path)
    try:
        return av.open(str(path), mode="r", metadata_errors="replace")
    except PermissionError:
        raise MediaError("permission denied", path) from None
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise MediaError(f"not a readable media file ({reason(e)})", path) from None


def reason(e: BaseException) -> str:
    """An FFmpeg error's message without the file name PyAV appends."""
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return str(text).strip().rstrip(".")


def video_stream(container: av.container.InputContainer, path: Path) -> av.video.VideoStream:
    for s in container.streams.video:
        if not (s.disposition & av.stream.Disposition.attached_pic):
            return s
    what = "audio only, " if container.streams.audio else ""
    raise MediaError(f"no video stream ({what}nothing to stylize)", path)


@functools.lru_cache(maxsize=32)
def _scan_cached(resolved: str, size: int, mtime_ns: int, shown: str) -> Scan:
    path = Path(shown)
    with open_input(path) as container:
        try:
            return _scan_container(container, path)
        except av.FFmpegError as e:
            raise MediaError(f"unreadable video ({reason(e)})", path) from None


def _scan_container(container: av.container.InputContainer, path: Path) -> Scan:
    vs = video_stream(container, path)
    cc = vs.codec_context
    # The container's colour tags (mov `colr`, mkv Colour), read before decoding: some decoders
    # (ProRes) overwrite them with the first picture's header, which may be untagged.
    declared_color = (cc.color_range, cc.colorspace, cc.color_primaries, cc.color_trc)
    tb = vs.time_base or Fraction(1, 90000)
    labels: list[int | None] = []  # pts of every frame's packet, in decode order
    ends: list[int] = []
    first: av.VideoFrame | None = None
    skipped = 0
    head = bytes(cc.extradata or b"")
    for packet in container.demux(vs):
        if first is None:
            first = _try_decode(packet)
            if packet.size:
                head += bytes(packet)[:4096]
        if packet.size == 0 or packet.is_discard:
            # index entries that are not frames: dropped-frame markers (AVI), edit-list cuts
            skipped += packet.dts is not None or packet.pts is not None
            continue
        labels.append(packet.pts)
        if packet.pts is not None and packet.duration:
            ends.append(packet.pts + packet.duration)
    n = len(labels)
    if n == 0:
        raise MediaError("video stream has no frames", path)
    if first is None:
        raise MediaError("no video frame could be decoded", path)

    rate = _rate(vs)
    arr, repaired = repair_timestamps(labels, rate, tb)
    packed = cc.codec.name == "mpeg4" and divx_packed_bframes(head)
    notes = []
    if repaired:
        notes.append(repaired)
    if packed:
        notes.append(
            "DivX packed B-frames: the decoder labels frames out of order; they are timed in "
            f"display order ({rate_text(rate)})"
        )
    deltas = np.diff(arr)
    if rate is None:
        rate = _rate_from_deltas(deltas, tb)

    start = int(arr[0])
    typical = int(np.median(deltas)) if len(deltas) else round(1 / ((rate or 25) * tb))
    typical = max(typical, 1)
    held = max(max(ends) if ends else 0, int(arr[-1]) + 1) - start  # what the packets cover
    span = held if ends and repaired is None else int(arr[-1]) - start + typical
    declared = int(vs.duration) if vs.duration and vs.duration > 0 else 0
    promised = int(vs.frames or 0)
    # what the container says the video lasts, as a span from the first frame (Matroska's tag
    # is the end time)
    said = declared or max(0, _tag_duration(vs, tb) - start)
    last_timed = bool(ends) and labels[-1] is not None and max(ends) > int(arr[-1])
    truncated = _truncation(n, skipped, promised, said, held, typical, tb, last_timed)
    if truncated:
        notes.append(truncated)
    elif declared > 0:
        span = declared
    if span <= int(arr[-1]) - start:  # missing or broken header: last frame gets a typical duration
        span = int(arr[-1]) - start + typical

    rotation = _rotation(first)
    width, height = cc.width or first.width, cc.height or first.height
    true_w, true_h = _source_size(container, width, height)
    disp = (true_h, true_w) if rotation in (90, 270) else (true_w, true_h)
    pix_fmt = cc.pix_fmt or first.format.name
    sar = vs.sample_aspect_ratio
    info = VideoInfo(
        path=path,
        width=width,
        height=height,
        rotation=rotation,
        display_width=disp[0],
        display_height=disp[1],
        time_base=Fraction(tb),
        rate=rate,
        frame_count=n,
        duration=float(span * tb),
        start_time=float(start * tb),
        codec=cc.codec.canonical_name,
        pix_fmt=pix_fmt,
        bit_depth=_bit_depth(pix_fmt),
        color_range=_tag(declared_color[0], cc.color_range, first.color_range),
        colorspace=_tag(declared_color[1], cc.colorspace, first.colorspace, unspecified=2),
        color_primaries=_tag(
            declared_color[2], cc.color_primaries, first.color_primaries, unspecified=2
        ),
        color_trc=_tag(declared_color[3], cc.color_trc, first.color_trc, unspecified=2),
        sample_aspect_ratio=Fraction(sar) if sar else None,
        audio=tuple(
            AudioInfo(
                index=a.index,
                codec=a.codec_context.codec.canonical_name,
                channels=a.codec_context.channels,
                sample_rate=a.codec_context.sample_rate,
                layout=a.codec_context.layout.name if a.codec_context.layout else "",
            )
            for a in container.streams.audio
        ),
        is_vfr=_is_vfr(deltas),
        is_image_sequence=False,
        has_alpha=has_alpha(pix_fmt),
        timecode=read_timecode(container, vs),
    )
    return Scan(
        info=info,
        pts=arr,
        stream_index=vs.index,
        seekable=repaired is None and not packed,
        notes=tuple(notes),
        packed_bframes=packed,
        promised_frames=max(promised, n),
    )


def _tag_duration(vs: av.video.VideoStream, tb: Fraction) -> int:
    """Matroska's per-stream DURATION tag ("00:00:01.600000000") in `tb` units, else 0."""
    text = next((v for k, v in vs.metadata.items() if k.upper() == "DURATION"), "")
    try:
        h, m, sec = text.strip().split(":")
        seconds = Fraction(int(h) * 3600 + int(m) * 60) + Fraction(sec)
    except ValueError:
        return 0
    return max(0, round(seconds / tb))


def _truncation(
    found: int,
    skipped: int,
    promised: int,
    declared: int,
    held: int,
    typical: int,
    tb: Fraction,
    timed_end: bool = True,
) -> str | None:
    """One line when the file holds less than its container promised (a cut-off download or
    copy): fewer frames than the index lists, or frames ending well before the declared
    duration. None when it is whole."""
    if promised > found + skipped:
        return (
            f"the file holds {found} of the {promised} frames its index lists "
            "(truncated or damaged?); rendering those"
        )
    # no frame count: a duration well past the frames' end (when packets carry no durations,
    # more than a last frame held for up to half a second could explain)
    slack = 1.5 * typical if timed_end else max(2 * typical, round(Fraction(1, 2) / tb))
    if not promised and declared and held + slack < declared:
        have, want = float(held * tb), float(declared * tb)
        return (
            f"its frames end at {have:.2f} s of the {want:.2f} s the container declares "
            f"(about {found} of {found + round((declared - held) / typical)} frames; "
            "truncated or damaged?); rendering those"
        )
    return None


def _try_decode(packet: av.Packet) -> av.VideoFrame | None:
    try:
        frames = packet.decode()
    except av.FFmpegError:
        return None
    return frames[0] if frames else None


def _rate(vs: av.video.VideoStream) -> Fraction | None:
    for r in (vs.average_rate, vs.guessed_rate, vs.base_rate):
        if r and r > 0:
            return Fraction(r)
    return None


def _rate_from_deltas(deltas: np.ndarray, tb: Fraction) -> Fraction | None:
    if not len(deltas):
        return None
    d = int(np.median(deltas))
    return 1 / (d * tb) if d > 0 else None


def _is_vfr(deltas: np.ndarray) -> bool:
    """Frame durations differ by more than timestamp rounding (1 tick or 2 %)."""
    if len(deltas) < 2:
        return False
    med = float(np.median(deltas))
    return float(deltas.max() - deltas.min()) > max(1.0, 0.02 * med)


def _rotation(frame: av.VideoFrame) -> int:
    try:
        r = frame.rotation
    except (AttributeError, av.FFmpegError):
        return 0
    return (round(r / 90) * 90) % 360 if r else 0


def _bit_depth(pix_fmt: str | None) -> int:
    try:
        return max(c.bits for c in av.VideoFormat(pix_fmt).components)
    except (TypeError, ValueError, av.FFmpegError):
        return 8


def has_alpha(pix_fmt: str | None) -> bool:
    """Whether frames of `pix_fmt` carry an alpha channel."""
    try:
        return any(c.is_alpha for c in av.VideoFormat(pix_fmt).components)
    except (TypeError, ValueError, av.FFmpegError):
        return False


def _tag(*values: int | None, unspecified: int = 0) -> int:
    """The first value that says something (stream tags before the frame's)."""
    for v in values:
        if v is not None and int(v) != unspecified:
            return int(v)
    return unspecified


def _source_size(
    container: av.container.InputContainer, width: int, height: int
) -> tuple[int, int]:
    """The size recorded by our writer before padding to even dimensions, if plausible."""
    for key, value in container.metadata.items():
        if key.lower() != SOURCE_SIZE_KEY:
            continue
        try:
            w, h = (int(x) for x in value.lower().split("x"))
        except ValueError:
            break
        if 0 < w <= width and 0 < h <= height and width - w < 16 and height - h < 16:
            return w, h
    return width, height
