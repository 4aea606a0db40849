"""Synthetic media for tests, made with PyAV and OpenCV only (no ffmpeg CLI).

Every frame carries its own index in two flat grey blocks at the bottom-left of the *upright*
picture, so a test can tell which source frame it got back even after lossy coding, resizing
(down to about 32x16) or rotation: `frame_id(rgb)`. The rest of the picture is a red
horizontal ramp (left dark, right bright), a green vertical ramp and a white square that moves
2 px per frame (`motion="pan"`), so orientation and motion are easy to check.

    from tests.synth import make_clip, make_sequence, frame_id
    clip = make_clip(tmp_path / "a.mp4", frames=12, audio=True)

Independent of vidstyle.io on purpose: the thing under test never makes its own inputs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

ID_BASE = 12  # grey levels per id block: 24, 40, ..., 200 (two blocks: ids 0..143)
VFR_PATTERN_MS = (40, 40, 80, 20, 60)  # frame durations cycled by vfr=True
CUT_AT = 6  # motion="cut": the first frame of the second shot


def _id_level(digit: int) -> int:
    return 24 + 16 * digit


def frame_id(rgb: np.ndarray) -> int:
    """Recover the index drawn by `frame_image` from an upright RGB frame (any size where the
    id blocks are at least a few pixels big)."""
    h, w = rgb.shape[:2]
    bh, bw = max(1, h // 6), max(1, w // 8)
    # luma, not the channel mean: chroma subsampling smears colour into the blocks at low
    # resolutions, and luma is what survives it
    gray = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    # sample the centres of the two blocks to stay clear of blurred edges
    lo = gray[h - bh + bh // 4 : h - bh // 4, bw // 4 : bw - bw // 4].mean()
    hi = gray[h - bh + bh // 4 : h - bh // 4, bw + bw // 4 : 2 * bw - bw // 4].mean()
    digit = lambda v: round((float(v) - 24) / 16)  # noqa: E731
    return digit(hi) * ID_BASE + digit(lo)


def frame_image(index: int, width: int, height: int, motion: str = "pan") -> np.ndarray:
    """The upright RGB uint8 picture of frame `index`."""
    x = np.linspace(0, 255, width, dtype=np.float32)
    y = np.linspace(0, 255, height, dtype=np.float32)
    img = np.empty((height, width, 3), np.uint8)
    img[..., 0] = x[None, :]
    img[..., 1] = y[:, None]
    img[..., 2] = 96
    s = max(2, min(width, height) // 6)
    if motion == "pan":
        x0 = (2 * index) % max(1, width - s)
        y0 = height // 3
        img[y0 : y0 + s, x0 : x0 + s] = 255
    elif motion == "noise":
        rng = np.random.default_rng(index)
        img[: height // 2] = rng.integers(0, 256, (height // 2, width, 3), dtype=np.uint8)
    elif motion == "cut":  # frames 0-5: the pan; from frame 6 on: another shot (hard cut)
        if index < CUT_AT:
            x0 = (2 * index) % max(1, width - s)
            img[height // 3 : height // 3 + s, x0 : x0 + s] = 255
        else:
            rng = np.random.default_rng(99)
            blocks = rng.integers(0, 256, (height // 4 + 1, width // 4 + 2), dtype=np.uint8)
            texture = np.kron(blocks, np.ones((4, 4), np.uint8))
            texture = np.roll(texture, index - CUT_AT, axis=1)[:height, :width]
            img[..., 0] = texture // 4
            img[..., 1] = 40
            img[..., 2] = 255 - texture // 3
    elif motion != "static":
        raise ValueError(f"unknown motion {motion!r}")
    bh, bw = max(1, height // 6), max(1, width // 8)
    img[height - bh :, :bw] = _id_level(index % ID_BASE)
    img[height - bh :, bw : 2 * bw] = _id_level(index // ID_BASE)
    return img


def vfr_pts(frames: int, time_base: Fraction = Fraction(1, 1000), start: int = 0) -> list[int]:
    """Timestamps whose durations cycle through VFR_PATTERN_MS."""
    out, t = [], Fraction(0)
    for i in range(frames):
        out.append(start + round(t / time_base))
        t += Fraction(VFR_PATTERN_MS[i % len(VFR_PATTERN_MS)], 1000)
    return out


def vfr_end(frames: int, time_base: Fraction = Fraction(1, 1000), start: int = 0) -> int:
    """The pts where the last frame of `vfr_pts(frames)` ends."""
    total = sum(Fraction(VFR_PATTERN_MS[i % len(VFR_PATTERN_MS)], 1000) for i in range(frames))
    return start + round(total / time_base)


def default_time_base(rate: Fraction) -> Fraction:
    rate = Fraction(rate)
    return Fraction(1, rate.numerator) if rate.denominator != 1 else 1 / rate


def make_clip(
    path: str | os.PathLike[str],
    size: tuple[int, int] = (64, 48),
    frames: int = 12,
    rate: Fraction | int = Fraction(25),
    audio: bool = True,
    vfr: bool = False,
    rotation: int = 0,
    codec: str = "libx264",
    pix_fmt: str | None = None,
    motion: str = "pan",
    time_base: Fraction | None = None,
    pts: Sequence[int] | None = None,
    color: dict[str, int] | None = None,
    audio_codec: str | None = None,
    sample_rate: int = 48000,
    channels: int = 2,
    gop: int | None = None,
    bframes: int | None = None,
    sample_aspect_ratio: Fraction | None = None,
) -> Path:
    """Write a small clip of upright size `size` = (width, height) and return its path.

    rotation: counter-clockwise degrees of the display matrix; the stored frames are turned
    the other way so that a correct reader gets `frame_image(i, *size)` back upright.
    vfr: timestamps from `vfr_pts` (time base 1/1000 unless given); `pts` overrides both.
    color: tags for the stream, e.g. {"color_range": 2, "colorspace": 1, "color_primaries": 1,
    "color_trc": 1}; the pixels are converted with the matching matrix/range.
    audio: a 440 Hz tone as long as the video (`audio_codec` defaults to aac, pcm_s16le for
    .mkv/.mov/.avi when aac is not wanted is up to the caller).
    """
    path = Path(path)
    rate = Fraction(rate)
    w, h = size
    if time_base is None:
        time_base = Fraction(1, 1000) if vfr else default_time_base(rate)
    if pts is None:
        if vfr:
            pts = vfr_pts(frames, time_base)
        else:
            step = 1 / (rate * time_base)
            pts = [round(i * step) for i in range(frames)]
    pts = list(pts)
    if len(pts) != frames:
        raise ValueError("len(pts) must equal frames")
    ends = [
        *pts[1:],
        pts[-1] + (pts[-1] - pts[-2] if frames > 1 else round(1 / (rate * time_base))),
    ]
    if vfr and pts == vfr_pts(frames, time_base):
        ends[-1] = vfr_end(frames, time_base)
    coded_w, coded_h = (h, w) if rotation % 180 == 90 else (w, h)
    color = dict(color or {})
    if pix_fmt is None:
        pix_fmt = {"ffv1": "yuv444p", "libx264rgb": "rgb24", "png": "rgb24"}.get(codec, "yuv420p")
        if codec in ("prores_ks", "prores"):
            pix_fmt = "yuv422p10le"

    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=rate)
        vs.width, vs.height, vs.pix_fmt = coded_w, coded_h, pix_fmt
        vs.time_base = time_base
        vs.codec_context.time_base = time_base
        if gop is not None:
            vs.codec_context.gop_size = gop
        if bframes is not None:
            vs.codec_context.max_b_frames = bframes
        if codec.startswith("libx26"):
            vs.codec_context.options = {"preset": "ultrafast" if bframes is None else "fast"}
            if codec == "libx265":
                vs.codec_context.options = {"preset": "ultrafast", "x265-params": "log-level=error"}
        for k, v in color.items():
            setattr(vs.codec_context, k, v)
        if sample_aspect_ratio is not None:
            vs.codec_context.sample_aspect_ratio = sample_aspect_ratio
        if rotation:
            vs.set_display_rotation(rotation)
        a_stream = None
        if audio:
            acodec = audio_codec or "aac"
            a_stream = out.add_stream(acodec, rate=sample_rate)
            a_stream.layout = _layout(channels)
            if acodec == "vorbis" or acodec == "opus":
                a_stream.codec_context.options = {"strict": "experimental"}

        sws_cs, sws_range = _sws_args(color, coded_w, coded_h)
        durations = {p: e - p for p, e in zip(pts, ends, strict=True)}
        for i, p in enumerate(pts):
            img = frame_image(i, w, h, motion)
            if rotation:
                img = np.ascontiguousarray(np.rot90(img, k=-(rotation // 90)))
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            if pix_fmt != "rgb24":
                frame = frame.reformat(
                    format=pix_fmt, dst_colorspace=sws_cs, dst_color_range=sws_range
                )
            frame.pts = p
            frame.time_base = time_base
            for packet in vs.encode(frame):
                packet.duration = durations.get(packet.pts, packet.duration)
                out.mux(packet)
        for packet in vs.encode(None):
            packet.duration = durations.get(packet.pts, packet.duration)
            out.mux(packet)
        if a_stream is not None:
            seconds = float((ends[-1] - pts[0]) * time_base)
            _write_tone(out, a_stream, seconds, sample_rate, channels)
    return path


def _sws_args(color: dict[str, int], w: int, h: int) -> tuple[int, int]:
    from av.video.reformatter import ColorRange, Colorspace

    cs = color.get("colorspace", 2)
    matrix = {
        1: Colorspace.ITU709,
        5: Colorspace.ITU601,
        6: Colorspace.ITU601,
        9: Colorspace.BT2020,
    }
    m = matrix.get(cs, Colorspace.ITU709 if (w >= 1280 or h > 576) else Colorspace.ITU601)
    r = ColorRange.JPEG if color.get("color_range") == 2 else ColorRange.MPEG
    return m, r


def _layout(channels: int) -> str:
    return {1: "mono", 2: "stereo", 6: "5.1"}[channels]


def _write_tone(
    out: av.container.OutputContainer, stream, seconds: float, rate: int, channels: int
) -> None:  # type: ignore[no-untyped-def]
    n = round(seconds * rate)
    t = np.arange(n) / rate
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    fmt = "s16" if stream.codec_context.name.startswith("pcm_s16") else "fltp"
    if stream.codec_context.name == "pcm_u8":
        fmt = "u8"
    chunk = 1024
    for start in range(0, n, chunk):
        part = np.repeat(tone[None, start : start + chunk], channels, axis=0)
        if fmt == "s16":
            arr = (part.T.reshape(1, -1) * 32767).astype(np.int16)
        elif fmt == "u8":
            arr = (part.T.reshape(1, -1) * 127 + 128).astype(np.uint8)
        else:
            arr = part
        frame = av.AudioFrame.from_ndarray(arr, format=fmt, layout=_layout(channels))
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def make_sequence(
    directory: str | os.PathLike[str],
    name: str = "shot.%04d.png",
    frames: int = 12,
    size: tuple[int, int] = (64, 48),
    first: int = 1,
    bit_depth: int = 8,
    motion: str = "pan",
) -> str:
    """Write frames `first`.. as images named by the printf pattern `name`; return the full
    pattern (str) to pass to the readers."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for i in range(frames):
        img = frame_image(i, *size, motion=motion)
        bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        if bit_depth == 16:
            bgr = bgr.astype(np.uint16) * 257
        if not cv2.imwrite(str(d / (name % (first + i))), bgr):
            raise OSError(f"could not write {d / (name % (first + i))}")
    return str(d / name)


def make_audio_only(path: str | os.PathLike[str], seconds: float = 0.5) -> Path:
    """A file with one AAC audio stream and no video."""
    path = Path(path)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=48000)
        stream.layout = "stereo"
        _write_tone(out, stream, seconds, 48000, 2)
    return path


def make_text_file(path: str | os.PathLike[str]) -> Path:
    """A text file, e.g. named like a video, for bad-input tests."""
    path = Path(path)
    path.write_text("this is not a video\n" * 20)
    return path


def duplicate_audio_packets(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], every: int = 4
) -> Path:
    """Remux `src` (Matroska in, Matroska out) repeating every `every`-th audio packet with the
    same DTS: the broken-muxer input that makes MP4 muxing fail at the very end."""
    dst = Path(dst)
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        count = 0
        for packet in inp.demux():
            if packet.size == 0:
                continue
            audio = packet.stream.type == "audio"
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
            if audio:
                count += 1
                if count % every == 0:
                    dup = av.Packet(bytes(packet))
                    dup.pts, dup.dts, dup.duration = packet.pts, packet.dts, packet.duration
                    dup.time_base = packet.time_base
                    dup.stream = packet.stream
                    out.mux(dup)
    return dst


# -- real-world breakage: DivX packed B-frames, repeated timestamps, truncated files ----------

_VOP = b"\x00\x00\x01\xb6"
_DIVX_PACKED = b"\x00\x00\x01\xb2DivX503b1393p"  # user data: DivX 5, build 1393, "p" = packed


def _vop_type(data: bytes) -> int | None:  # 0 = I, 1 = P, 2 = B
    k = data.find(_VOP)
    return (data[k + 4] >> 6) if k >= 0 else None


def _nvop() -> bytes:
    """A not-coded P VOP (vop_coded = 0): the placeholder a packed B-frame's slot holds."""
    bits = "01" + "0" + "1" + "00000" + "1" + "0"  # P, modulo_time_base, marker, tinc, marker, 0
    bits += "0" + "1" * ((8 - (len(bits) + 1) % 8) % 8)  # stuffing
    return _VOP + int(bits, 2).to_bytes(len(bits) // 8, "big")


def make_packed_bframes_avi(
    path: str | os.PathLike[str],
    frames: int = 24,
    size: tuple[int, int] = (64, 48),
    rate: int = 24,
    audio: bool = False,
) -> Path:
    """An MPEG-4 Part 2 AVI with DivX-style packed B-frames, made with PyAV only: each P VOP is
    stored in one AVI chunk together with the B VOP after it, the B's own chunk holds a not-coded
    placeholder, and user data says "DivX503b1393p". FFmpeg decodes the pictures in order but
    labels them with swapped timestamps (1, 3, 2, 5, 4, ...). Frames are `frame_image(i)`;
    `audio`: a PCM tone as long as the video, as AVIs of that era had."""
    path = Path(path)
    w, h = size
    enc = av.CodecContext.create("mpeg4", "w")
    enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
    enc.time_base = Fraction(1, rate)
    enc.framerate = Fraction(rate)
    enc.gop_size = 12
    enc.max_b_frames = 1
    enc.options = {"bf": "1", "g": "12", "qscale": "2"}
    enc.open()
    packets: list[bytes] = []
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(frame_image(i, w, h), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = i
        packets += [bytes(p) for p in enc.encode(frame)]
    packets += [bytes(p) for p in enc.encode(None)]
    chunks, i = [], 0
    while i < len(packets):
        data = packets[i]
        if i == 0:
            k = data.find(_VOP)
            data = data[:k] + _DIVX_PACKED + data[k:]
        following = packets[i + 1] if i + 1 < len(packets) else b""
        if following and _vop_type(data) in (0, 1) and _vop_type(following) == 2:
            chunks += [data + following, _nvop()]
            i += 2
        else:
            chunks.append(data)
            i += 1
    with av.open(str(path), "w", format="avi") as out:
        stream = out.add_stream("mpeg4", rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if enc.extradata:
            stream.codec_context.extradata = enc.extradata
        sound = None
        if audio:
            sound = out.add_stream("pcm_s16le", rate=48000)
            sound.layout = "stereo"
        for n, data in enumerate(chunks):
            packet = av.Packet(data)
            packet.stream = stream
            packet.pts = packet.dts = n
            packet.time_base = Fraction(1, rate)
            packet.is_keyframe = _vop_type(data) == 0
            out.mux(packet)
        if sound is not None:
            _write_tone(out, sound, frames / rate, 48000, 2)
    return path


def make_labelled_mkv(
    path: str | os.PathLike[str],
    labels: Sequence[int],
    size: tuple[int, int] = (64, 48),
    time_base: Fraction = Fraction(1, 1000),
) -> Path:
    """Intra-only (MJPEG) Matroska whose frame i carries the timestamp `labels[i]` exactly as
    given, repeats included (Matroska's muxer accepts them): a broken muxer's output."""
    path = Path(path)
    w, h = size
    enc = av.CodecContext.create("mjpeg", "w")
    enc.width, enc.height, enc.pix_fmt = w, h, "yuvj444p"
    enc.time_base = Fraction(1, 25)
    enc.options = {"qscale": "2"}
    enc.open()
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("mjpeg", rate=25)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuvj444p"
        stream.time_base = time_base
        for i, label in enumerate(labels):
            frame = av.VideoFrame.from_ndarray(frame_image(i, w, h), format="rgb24")
            frame = frame.reformat(format="yuvj444p")
            frame.pts = i
            for encoded in enc.encode(frame):
                packet = av.Packet(bytes(encoded))
                packet.stream = stream
                packet.time_base = time_base
                packet.pts = packet.dts = label
                packet.is_keyframe = True
                out.mux(packet)
    return path


def make_raw_h264(path: str | os.PathLike[str], frames: int = 12, size=(64, 48)) -> Path:
    """An H.264 elementary stream (.h264): no container, no timestamps at all."""
    path = Path(path)
    with av.open(str(path), "w", format="h264") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.codec_context.options = {"preset": "ultrafast", "qp": "10"}
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(frame_image(i, *size), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def make_truncated_mp4(
    path: str | os.PathLike[str], frames: int = 40, keep: float = 0.8, audio: bool = True
) -> tuple[Path, int]:
    """An MP4 whose index (moov, at the front) lists `frames` frames but whose tail is cut
    off (a download or copy that stopped): returns (path, frames its index lists)."""
    path = Path(path)
    whole = make_clip(path.with_name(f"whole-{path.name}"), frames=frames, audio=audio)
    with (
        av.open(str(whole)) as src,
        av.open(str(path), "w", options={"movflags": "+faststart"}) as out,
    ):
        streams = {s.index: out.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is None:
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    whole.unlink()
    data = path.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat"), "the index must come first"
    path.write_bytes(data[: int(len(data) * keep)])
    return path, frames
