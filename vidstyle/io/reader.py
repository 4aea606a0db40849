"""Streaming decoder: upright RGB frames with their source timestamps, one at a time."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import av
import cv2
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

from vidstyle import notices
from vidstyle.errors import MediaError
from vidstyle.io import colors
from vidstyle.io.frames import Frame
from vidstyle.io.lifecycle import Closing
from vidstyle.io.probe import Scan, VideoInfo, _scan, open_input, reason
from vidstyle.io.timeline import FramePlacer, extend, frame_step

if TYPE_CHECKING:
    from vidstyle.io.working_space import WorkingSpace

Container = av.container.InputContainer
Stream = av.video.stream.VideoStream
Unpacker = av.bitstream.BitStreamFilterContext
#: decoded frame -> (RGB at the work size, RGB at the reader's size or None, alpha or None)
Converter = Callable[[av.VideoFrame], "tuple[np.ndarray, np.ndarray | None, np.ndarray | None]"]

_ROTATE = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}


def check_size(size: tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    w, h = (int(v) for v in size)
    if w <= 0 or h <= 0:
        raise ValueError(f"invalid output size {w}x{h}")
    return w, h


def check_range(start_index: int, end_index: int | None, count: int) -> tuple[int, int]:
    """Validate a [start, end) frame range; an end past the last frame is clamped (render
    farms' last chunk overshoots)."""
    if start_index < 0:
        raise ValueError(f"start_index must be >= 0, got {start_index}")
    end = count if end_index is None else min(int(end_index), count)
    if end_index is not None and end_index < start_index:
        raise ValueError(f"end_index {end_index} is before start_index {start_index}")
    return int(start_index), max(end, int(start_index))


def rotate_upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a stored frame upright; `rotation` is counter-clockwise degrees (display matrix)."""
    code = _ROTATE.get(rotation % 360)
    return rgb if code is None else cv2.rotate(rgb, code)


#: swscale's fast YUV->RGB path rounds down and skips chroma interpolation: on real footage
#: (bigbuckbunny.mp4) that darkens every channel by 1-2 levels. These flags make it exact
#: (bias 0.00, mean error 0.3 levels vs a float reference) at a small cost per frame
#: (bench/throughput.py measures the decode stage).
ACCURATE = Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT


def scale_flags(src: tuple[int, int], dst: tuple[int, int]) -> Interpolation:
    """Area averaging when shrinking (no aliasing), bicubic when enlarging, both exact."""
    if dst == src:
        return Interpolation.BILINEAR | ACCURATE
    if dst[0] * dst[1] < src[0] * src[1]:
        return Interpolation.AREA | ACCURATE
    return Interpolation.BICUBIC | ACCURATE


class RGBConverter:
    """YUV (or RGB) frame -> upright RGB at a given size, in one swscale pass.

    8-bit output is uint8; with `deep` and a source of more than 8 bits, swscale converts to
    16-bit RGB and the result is float32 in the working space (`space`, io/working_space.py),
    so a 10-bit ramp keeps its 1024 levels. With `alpha` and a source that has one, the alpha
    channel comes along from the same pass (uint8, or uint16 when deep).

    The source's colour matrix and range are passed explicitly (see colors.py); a reformatter
    is kept so swscale's context is built once, not per frame."""

    def __init__(
        self,
        info: VideoInfo,
        size: tuple[int, int] | None,
        *,
        deep: bool = False,
        alpha: bool = False,
        space: WorkingSpace | None = None,
    ):
        self.info = info
        self.rotation = info.rotation
        self.out = size or (info.display_width, info.display_height)
        cw, ch = info.coded_size
        self.crop = (cw, ch) if (cw, ch) != (info.width, info.height) else None
        rot = self.rotation in (90, 270)
        coded_target = (self.out[1], self.out[0]) if rot else self.out
        self.rgb_source = colors.is_rgb_pix_fmt(info.pix_fmt)
        self.matrix = colors.matrix_for(info.colorspace, info.width, info.height)
        self.range = colors.sws_range(colors.is_full_range(info.color_range, info.pix_fmt))
        self.deep = deep and info.bit_depth > 8
        self.alpha = alpha and info.has_alpha
        self.space = None if space is None or space.identity else space
        if self.deep:
            self.format = "rgba64le" if self.alpha else "rgb48le"
        else:
            self.format = "rgba" if self.alpha else "rgb24"
        self.reformatter = VideoReformatter()
        if self.crop is None:
            self.sws_size = coded_target
            self.cv_size = None
        else:  # padded by our writer: convert at full size, crop, then resize
            self.sws_size = (info.width, info.height)
            self.cv_size = coded_target if coded_target != self.crop else None
        self.flags = scale_flags((cw, ch), coded_target)

    def __call__(self, frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """(RGB, alpha or None) of one decoded frame."""
        w, h = self.sws_size
        kwargs: dict[str, object] = {}
        if not self.rgb_source:
            kwargs = {"src_colorspace": self.matrix, "src_color_range": self.range}
        out = self.reformatter.reformat(
            frame, width=w, height=h, format=self.format, interpolation=self.flags, threads=1,
            **kwargs,
        )  # fmt: skip
        pixels = out.to_ndarray()
        if self.crop is not None:
            pixels = pixels[: self.crop[1], : self.crop[0]]
            if self.cv_size is not None:
                shrink = bool(self.flags & Interpolation.AREA)
                interp = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
                pixels = cv2.resize(pixels, self.cv_size, interpolation=interp)
        if self.rotation:
            pixels = rotate_upright(pixels, self.rotation)
        alpha = np.ascontiguousarray(pixels[..., 3]) if self.alpha else None
        rgb = pixels[..., :3] if self.alpha else pixels
        if not self.deep:
            return np.ascontiguousarray(rgb), alpha
        values = rgb.astype(np.float32)
        values *= np.float32(1 / 65535)
        if self.space is not None:
            values = self.space.to_working(values)
        return values, alpha


class VideoReader(Closing):
    """Iterate the frames [start_index, end_index) of a video as upright RGB `Frame`s.

    Starting mid-file seeks to the keyframe before `start_index` (found from the demuxed
    timestamps) and decodes forward from there instead of from frame 0."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        size: tuple[int, int] | None = None,
        start_index: int = 0,
        end_index: int | None = None,
        threads: int = 0,
        work_size: tuple[int, int] | None = None,
        deep: bool = False,
        alpha: bool = False,
        space: WorkingSpace | None = None,
    ):
        self.path = Path(path)
        self._scan: Scan = _scan(self.path)
        st = self.path.stat()
        self._key = (str(self.path.resolve()), st.st_size, st.st_mtime_ns)
        self.info: VideoInfo = self._scan.info
        self.size = check_size(size) or (self.info.display_width, self.info.display_height)
        #: also give each frame at this size as `rgb` (the full-size picture as `full`)
        self.work_size = check_size(work_size) if work_size != self.size else None
        self.start_index, self.end_index = check_range(
            start_index, end_index, self.info.frame_count
        )
        self.threads = int(threads)
        #: float32 working-space frames from >8-bit sources (else uint8, as 8-bit sources give)
        self.deep = bool(deep) and self.info.bit_depth > 8
        self.alpha = bool(alpha) and self.info.has_alpha  # Frame.alpha, at the reader's size
        self.space = space
        self._container: av.container.InputContainer | None = None
        # close() may come from another thread than the one iterating (prefetch threads):
        # never close the container in the middle of a demux/decode call.
        self._lock = threading.Lock()
        #: frames decoded by the last iteration, including those skipped after a seek
        self.decoded_count = 0
        self._distrust_reason: str | None = None  # why a seek was abandoned

    def __len__(self) -> int:
        return self.end_index - self.start_index

    def close(self) -> None:
        with self._lock:
            if self._container is not None:
                self._container.close()
                self._container = None

    def __iter__(self) -> Iterator[Frame]:
        if self.start_index >= self.end_index:
            return
        self.close()
        self.decoded_count = 0
        container = self._open()
        frames = self._frames(container)
        try:
            while True:
                with self._lock:
                    if self._container is not container:
                        return  # closed meanwhile
                    try:
                        frame = next(frames)
                    except StopIteration:
                        return
                    except _Restart as restart:  # nothing was given out yet: from frame 0
                        container.close()
                        self._container = container = open_input(self.path)
                        frames = self._from_start(container, restart.trust)
                        continue
                    except av.FFmpegError as e:
                        raise MediaError(f"decoding failed ({reason(e)})", self.path) from None
                yield frame
        finally:
            frames.close()
            self.close()

    def _open(self) -> Container:
        container = open_input(self.path)
        with self._lock:
            self._container = container
        return container

    def _stream(self, container: Container) -> tuple[Stream, Converter, Unpacker | None]:
        stream = container.streams[self._scan.stream_index]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = self.threads
        return stream, self._converter(), _unpacker(stream)

    def _converter(self) -> Converter:
        kw = {"deep": self.deep, "space": self.space}
        full = RGBConverter(self.info, self.size, alpha=self.alpha, **kw)
        if self.work_size is None:

            def one(frame: av.VideoFrame) -> tuple[np.ndarray, None, np.ndarray | None]:
                rgb, alpha = full(frame)
                return rgb, None, alpha

            return one
        small = RGBConverter(self.info, self.work_size, **kw)  # swscale's area filter, from YUV

        def two(frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
            rgb, alpha = full(frame)
            return small(frame)[0], rgb, alpha

        return two

    def _frames(self, container: Container) -> Iterator[Frame]:
        trust = self._scan.seekable and self._key not in _DISTRUSTED
        if self.start_index > 0 and trust:
            return self._seeking(container)
        return self._from_start(container, trust)

    def _from_start(self, container: Container, trust: bool) -> Iterator[Frame]:
        """Decode from the first frame; frames are placed by their labels while those agree
        with the timeline, else counted (`trust=False`: counted from the start)."""
        stream, convert, unpack = self._stream(container)
        placer: FramePlacer[av.VideoFrame] = FramePlacer(self._scan.pts, 0, trust=trust)
        for frame in self._decode(container, stream, unpack):
            for index, decoded in placer.push(frame.pts, frame):
                if index >= self.end_index:
                    self._check(placer, ended=False)
                    return
                if index >= self.start_index:
                    yield self._frame(index, decoded, convert)
        for index, decoded in placer.finish():
            if self.start_index <= index < self.end_index:
                yield self._frame(index, decoded, convert)
        self._check(placer, ended=True)

    def _seeking(self, container: Container) -> Iterator[Frame]:
        """Seek to the keyframe before `start_index` (from the demuxed timestamps) and decode
        forward. The first frames are held until their labels have agreed with the timeline
        for a while: if they don't, _Restart (decode from the start) before anything is given
        out, since the seek's landing place was read from a label."""
        stream, convert, unpack = self._stream(container)
        ts = self._scan.pts
        target = int(ts[self.start_index])
        try:
            container.seek(target, stream=stream, backward=True)
        except av.FFmpegError:  # unseekable input (a raw stream): decode from the start
            raise _Restart(trust=True) from None
        placer: FramePlacer[av.VideoFrame] | None = None
        held: list[Frame] | None = []  # None once the labels have been checked
        for frame in self._decode(container, stream, unpack):
            if placer is None:
                if frame.pts is None:
                    self._distrust_reason = "frames without a timestamp"
                    raise _Restart(trust=False)
                if frame.pts < target:
                    continue
                j = int(np.searchsorted(ts, frame.pts))
                if frame.pts > target or int(ts[min(j, len(ts) - 1)]) != frame.pts:
                    raise _Restart(trust=True)  # landed after the wanted frame (sparse index)
                placer = FramePlacer(ts, j)
            for index, decoded in placer.push(frame.pts, frame):
                if held is not None and not placer.trusted:
                    self._distrust_reason = placer.reason
                    raise _Restart(trust=False)
                if index >= self.end_index:
                    yield from held or ()
                    self._check(placer, ended=False)
                    return
                out = self._frame(index, decoded, convert)
                if held is None:
                    yield out
                    continue
                held.append(out)
                if len(held) >= VERIFY:
                    yield from held
                    held = None
        if placer is None:
            raise _Restart(trust=True)
        yield from held or ()
        for index, decoded in placer.finish():
            if index < self.end_index:
                yield self._frame(index, decoded, convert)
        self._check(placer, ended=True)

    def _frame(self, index: int, frame: av.VideoFrame, convert: Converter) -> Frame:
        """Frame `index`, timed from the timeline (its label only where that agrees)."""
        pts = extend(self._scan.pts, index, frame_step(self.info.rate, self.info.time_base))
        rgb, full, alpha = convert(frame)
        return Frame(index, pts, self.info.time_base, rgb, full=full, alpha=alpha)

    def _check(self, placer: FramePlacer, ended: bool) -> None:
        """Say what the decoder did that the container did not announce (once per file)."""
        if not placer.trusted and self._scan.seekable:
            _DISTRUSTED.add(self._key)
            reason = placer.reason or self._distrust_reason or "timestamps that can't be trusted"
            notices.warn(
                f"the decoder gives {reason}; frames are timed in display order from the "
                "container's index",
                self.path,
            )
        if placer.dropped:
            notices.warn(
                f"{placer.dropped} frames could not be decoded; the frames before them are "
                "shown longer (timing and audio stay in sync)",
                self.path,
            )
        if ended and placer.next < self.end_index:
            notices.warn(
                f"decoding ended after {placer.next} of its {self.info.frame_count} frames "
                "(truncated or damaged?); the output ends there",
                self.path,
            )

    def _decode(
        self,
        container: Container,
        stream: Stream,
        unpack: Unpacker | None,
    ) -> Iterator[av.VideoFrame]:
        # Packets flagged "discard" (before an MP4 edit list's start) are dropped by the
        # decoder itself, matching the frame count probe() reports.
        for packet in container.demux(stream):
            if unpack is None:
                frames = packet.decode()
            else:
                end = packet.size == 0 and packet.dts is None  # demux's closing empty packet
                if packet.size == 0 and not end:
                    continue
                frames = []
                for unpacked in unpack.filter(None if end else packet):
                    frames += stream.decode(unpacked)
                if end:
                    frames += stream.decode(None)
            for frame in frames:
                self.decoded_count += 1
                yield frame


class _Restart(Exception):
    """Seeking could not be trusted: decode from the start (counting frames unless `trust`)."""

    def __init__(self, trust: bool):
        super().__init__("restart from frame 0")
        self.trust = trust


#: Frames held after a seek until their labels have agreed with the timeline.
VERIFY = 8
#: Files (path, size, mtime) whose decoder was caught giving untrustworthy labels: never seek.
_DISTRUSTED: set[tuple[str, int, int]] = set()


def _unpacker(stream: Stream) -> Unpacker | None:
    """FFmpeg's advice for DivX packed B-frames: unpack them before decoding (a no-op on MPEG-4
    streams without them)."""
    if stream.codec_context.name != "mpeg4":
        return None
    try:
        return av.bitstream.BitStreamFilterContext("mpeg4_unpack_bframes", stream)
    except (ValueError, av.FFmpegError, AttributeError, TypeError):
        return None
