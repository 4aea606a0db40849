"""Encoder + muxer for upright RGB frames, written atomically.

What it keeps from the source (via `template` and the caller's pts): exact timestamps (VFR
stays VFR, 30000/1001 stays exact), the last frame's duration and so the total duration,
colour matrix/range/primaries/transfer tags, sample aspect ratio, rotation (frames are turned
back to the stored orientation and the display matrix is set), and every audio stream.
"""

from __future__ import annotations

import contextlib
import functools
import os
import weakref
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av
import cv2
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

from vidstyle import notices
from vidstyle.config import EncodeSettings
from vidstyle.errors import MediaError
from vidstyle.io import colors
from vidstyle.io.audio import AudioRemuxer
from vidstyle.io.encoders import (
    AUTO,
    CodecPlan,
    choose_codec,
    limited_range_only,
    plan_codec,
    require_encoder,
    source_profile,
    with_chroma,
)
from vidstyle.io.images import to_uint8, to_uint16
from vidstyle.io.lifecycle import Atomic
from vidstyle.io.paths import check_writable, remove_quietly, remove_stale, temp_sibling
from vidstyle.io.probe import SOURCE_SIZE_KEY, VideoInfo, has_alpha, reason
from vidstyle.io.timecode import apply as apply_timecode

if TYPE_CHECKING:
    from vidstyle.io.working_space import WorkingSpace

_MOV_FAMILY = ("mp4", "mov", "m4v", "3gp", "3g2", "ipod", "ismv", "f4v")
_HW_FAMILIES = ("nvenc", "qsv", "vaapi", "amf", "videotoolbox", "v4l2m2m", "mf")
_ROTATE_BACK = {
    90: cv2.ROTATE_90_CLOCKWISE,
    180: cv2.ROTATE_180,
    270: cv2.ROTATE_90_COUNTERCLOCKWISE,
}
_TO_YUV = Interpolation.AREA | Interpolation.ACCURATE_RND
#: (16-bit, with alpha) -> the packed RGB layout handed to swscale
_PACKED = {
    (False, False): "rgb24",
    (False, True): "rgba",
    (True, False): "rgb48le",
    (True, True): "rgba64le",
}
_FRAME_DTYPES = (np.dtype(np.uint8), np.dtype(np.float32))


#: How far ahead of the video the audio is fed to the muxer (seconds).
AUDIO_LEAD = 0.5


def _cleanup(container: av.container.OutputContainer, tmp: Path) -> None:
    """Finalizer for a writer dropped without close(): never leave the temporary file."""
    with contextlib.suppress(Exception):
        container.close()
    remove_quietly(tmp)


def writer_options(size: tuple[int, int], info: VideoInfo, encode: EncodeSettings) -> dict:
    """open_writer() arguments for frames of `size` timed and tagged like `info`, encoded as
    `encode` says: one place for the render loop, farm assembly and the benchmarks."""
    return dict(
        width=size[0],
        height=size[1],
        rate=info.rate,
        time_base=info.time_base,
        codec=encode.codec,
        crf=encode.crf,
        preset=encode.preset or None,
        pix_fmt=encode.pix_fmt or None,
        template=info,
    )


class VideoWriter(Atomic):
    """Write upright RGB uint8 frames of size (width, height) to `path`.

    pts are in `time_base` units; `time_offset` (same units) is subtracted from every pts and
    from the audio, so a chunk can start at 0. `audio_window` selects [start, end) seconds of
    the source's audio (source time, before the offset). Nothing appears at `path` until
    close() succeeds; an exception inside `with` or abort() leaves `path` as it was."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        width: int,
        height: int,
        rate: Fraction | None,
        time_base: Fraction,
        codec: str | None = AUTO,
        crf: int | None = 18,
        preset: str | None = None,
        pix_fmt: str | None = None,
        template: VideoInfo | None = None,
        audio_from: str | os.PathLike[str] | None = None,
        audio_window: tuple[float | None, float | None] = (None, None),
        audio: bool = True,
        time_offset: int = 0,
        threads: int = 0,
        options: dict[str, str] | None = None,
        space: WorkingSpace | None = None,
    ):
        self.path = Path(path)
        check_writable(self.path)
        #: carry audio_from's audio streams (False: only its subtitles)
        self.keep_audio = bool(audio)
        #: float frames are in this working space; converted back to the source's encoding
        self.space = None if space is None or space.identity else space
        if width <= 0 or height <= 0:
            raise ValueError(f"invalid frame size {width}x{height}")
        self.width, self.height = int(width), int(height)
        # rate only paces pts=None writes and the encoder's rate control; unknown -> 25
        self.rate = Fraction(rate or (template.rate if template and template.rate else 25))
        self.time_base = Fraction(time_base)
        if self.rate <= 0 or self.time_base <= 0:
            raise ValueError("rate and time_base must be positive")
        self.template = template
        self.time_offset = int(time_offset)
        self.rotation = template.rotation % 360 if template else 0
        turned = self.rotation in (90, 270)
        coded = (self.height, self.width) if turned else (self.width, self.height)
        self.coded_size = coded

        fmt = self._container_format()
        if not codec or codec == AUTO:  # follows the container and the source
            codec = choose_codec(fmt, template)
        family = codec.rsplit("_", 1)[-1]
        if family in _HW_FAMILIES:
            require_encoder(codec)
        plan_kw = dict(
            crf=crf,
            preset=preset,
            container_format=fmt,
            source_bit_depth=template.bit_depth if template else 8,
            options=options,
            source_pix_fmt=template.pix_fmt if template else None,
            source_alpha=bool(template and template.has_alpha),
            source_profile=source_profile(template),
        )
        self.plan: CodecPlan = plan_codec(codec, pix_fmt=pix_fmt, **plan_kw)  # type: ignore[arg-type]
        sx, sy = self.plan.subsampling
        if pix_fmt is None and (coded[0] % sx or coded[1] % sy):
            # An odd size can't be 4:2:0 or 4:2:2: encode 4:4:4 (same bit depth) so the file
            # has exactly the source's size; pad only if the encoder has no 4:4:4.
            supported = [f.name for f in (av.codec.Codec(codec, "w").video_formats or ())]
            full = with_chroma(self.plan.pix_fmt, "444", supported)
            if full is not None:  # planned again: ProRes's profile follows the format
                self.plan = plan_codec(codec, pix_fmt=full, **plan_kw)  # type: ignore[arg-type]
                sx, sy = self.plan.subsampling
        self.enc_size = (-(-coded[0] // sx) * sx, -(-coded[1] // sy) * sy)
        self.padded = self.enc_size != coded
        self.color = self._output_color()
        if template is not None and template.has_alpha and not self.plan.alpha and not pix_fmt:
            where = self.path.suffix.lower().lstrip(".") or "this container"
            notices.warn(
                f"alpha channel dropped: {where}/{self.plan.name} can't hold it; "
                "use .mov (ProRes 4444) or .mkv (FFV1)",
                self.path,
            )

        remove_stale(self.path)  # left by a run that was killed (SIGKILL, power cut)
        self._tmp = temp_sibling(self.path)
        self._closed = False
        self._frames = 0
        self._first_pts: int | None = None
        self._last_pts: int | None = None
        self._prev_delta: int | None = None
        self._pending: tuple[av.VideoFrame, int, int | None] | None = None
        self._durations: dict[int, int] = {}
        self._held: av.Packet | None = None
        self._first_dts: int | None = None
        self._last_dts: int | None = None
        self._end_pts: int | None = None
        self._reformatter = VideoReformatter()
        self._audio: AudioRemuxer | None = None

        container_options: dict[str, str] = {}
        self._mov = fmt in _MOV_FAMILY
        if self._mov:
            flags = "+faststart" + ("+use_metadata_tags" if self.padded else "")
            container_options["movflags"] = flags
        try:
            self._container = av.open(str(self._tmp), "w", container_options=container_options)
        except (av.FFmpegError, OSError, ValueError) as e:
            remove_quietly(self._tmp)
            raise MediaError(
                f"can't create a {self.path.suffix or 'suffix-less'} file ({reason(e)})", self.path
            ) from None
        self._finalizer = weakref.finalize(self, _cleanup, self._container, self._tmp)
        try:
            self._setup(threads, audio_from, audio_window)
        except BaseException:
            self.abort()
            raise

    # -- setup -------------------------------------------------------------------------------

    def _container_format(self) -> str:
        suffix = self.path.suffix.lower().lstrip(".")
        return {"m4v": "mp4", "mkv": "matroska"}.get(suffix, suffix)

    def _output_color(self) -> colors.OutputColor:
        t = self.template
        if t is None:
            return colors.output_color(
                colorspace=None, color_range=None, color_primaries=None, color_trc=None,
                source_width=self.coded_size[0], source_height=self.coded_size[1],
                rgb_output=self.plan.rgb, limited_only=limited_range_only(self.plan.name),
            )  # fmt: skip
        return colors.output_color(
            colorspace=t.colorspace, color_range=t.color_range,
            color_primaries=t.color_primaries, color_trc=t.color_trc,
            source_width=t.width, source_height=t.height, source_pix_fmt=t.pix_fmt,
            rgb_output=self.plan.rgb, limited_only=limited_range_only(self.plan.name),
        )  # fmt: skip

    def _tag_frame(self, frame: av.VideoFrame) -> None:
        """Tag each picture like the stream: some encoders (ProRes) write the *frame's*
        primaries/transfer/matrix into the bitstream, and decoders trust those over the
        container's, so an untagged frame undoes the stream's tags."""
        c = self.color
        frame.color_primaries = c.color_primaries
        frame.color_trc = c.color_trc
        frame.colorspace = c.colorspace
        frame.color_range = c.color_range

    def _setup(
        self,
        threads: int,
        audio_from: str | os.PathLike[str] | None,
        audio_window: tuple[float | None, float | None],
    ) -> None:
        out = self._container
        plan = self.plan
        if plan.name not in av.codecs_available:
            raise MediaError(f"unknown video encoder {plan.name!r}", self.path)
        canonical = av.codec.Codec(plan.name, "w").canonical_name
        if canonical not in out.supported_codecs:
            raise MediaError(
                f"a {self.path.suffix} file can't hold {plan.name} video "
                "(ProRes needs .mov, ffv1 .mkv)",
                self.path,
            )
        vs = out.add_stream(plan.name, rate=self.rate)
        vs.width, vs.height = self.enc_size
        vs.pix_fmt = plan.pix_fmt
        vs.time_base = self.time_base
        cc = vs.codec_context
        cc.time_base = self.time_base
        cc.framerate = self.rate
        cc.thread_count = int(threads)
        cc.options = dict(plan.options)
        c = self.color
        cc.color_range = c.color_range
        cc.colorspace = c.colorspace
        cc.color_primaries = c.color_primaries
        cc.color_trc = c.color_trc
        if plan.codec_tag:
            cc.codec_tag = plan.codec_tag
        if self._mov and self.template is not None and self.template.is_vfr:
            # MP4 stores DTS gaps, not durations: with B-frames reordering an irregular tail
            # no sample table gives both the right edit list and the right total, so VFR
            # sources are coded without B-frames (exact timing over a few % of bitrate).
            cc.max_b_frames = 0
        sar = self.template.sample_aspect_ratio if self.template else None
        if sar:
            cc.sample_aspect_ratio = sar
        if self.rotation:
            vs.set_display_rotation(self.rotation)
        if self.padded:
            out.metadata[SOURCE_SIZE_KEY] = f"{self.coded_size[0]}x{self.coded_size[1]}"
        self._stream = vs
        if self.template is not None:  # where this render starts in the source's timecode
            skipped = self.time_offset * self.time_base
            apply_timecode(vs, self.template.timecode, skipped, self.rate, self.path)
        if audio_from is not None:
            self._audio = AudioRemuxer(
                out,
                Path(audio_from),
                audio_window,
                offset=self.time_offset * self.time_base,
                dest=self.path,
                audio=self.keep_audio,
            )
        try:
            out.start_encoding()
        except (av.FFmpegError, ValueError) as e:
            what = f"video {plan.name} {plan.pix_fmt} {self.enc_size[0]}x{self.enc_size[1]}"
            if self._audio is not None and self._audio.reencoded:
                what += ", audio " + ", ".join(self._audio.reencoded)
            raise MediaError(f"can't start writing ({reason(e)}; {what})", self.path) from None

    # -- writing -----------------------------------------------------------------------------

    def write(
        self,
        rgb: np.ndarray,
        pts: int | None = None,
        duration: int | None = None,
        alpha: np.ndarray | None = None,
    ) -> None:
        """Queue one upright RGB frame: uint8, or float32 in the working space (kept at the
        encoder's depth). pts in `time_base` (None: next frame at `rate`); duration (same
        units) only if it must differ from the gap to the next frame's pts. `alpha` (H, W)
        (uint8, uint16 or float in [0, 1]) is written where the pixel format holds alpha."""
        if self._closed:
            raise ValueError("write() on a closed VideoWriter")
        if rgb.shape != (self.height, self.width, 3) or rgb.dtype not in _FRAME_DTYPES:
            raise ValueError(
                f"expected ({self.height}, {self.width}, 3) uint8 or float32, "
                f"got {rgb.shape} {rgb.dtype}"
            )
        if alpha is not None and alpha.shape != (self.height, self.width):
            raise ValueError(f"alpha must be ({self.height}, {self.width}), got {alpha.shape}")
        if pts is None:
            pts = self._default_pts()
        pts = int(pts)
        if self._last_pts is not None and pts <= self._last_pts:
            raise ValueError(f"pts must increase: {pts} after {self._last_pts}")
        if self._first_pts is None:
            self._first_pts = pts
        frame = self._to_frame(rgb, alpha)
        if self._pending is not None:
            prev_frame, prev_pts, prev_dur = self._pending
            self._encode(prev_frame, prev_pts, prev_dur or pts - prev_pts)
            self._prev_delta = pts - prev_pts
        self._pending = (frame, pts, duration)
        self._last_pts = pts
        self._frames += 1
        if self._audio is not None:
            now = (pts - self.time_offset) * self.time_base
            try:
                self._audio.mux_until(float(now) + AUDIO_LEAD)
            except av.FFmpegError as e:
                raise MediaError(f"muxing audio failed ({reason(e)})", self.path) from None

    def _default_pts(self) -> int:
        if self._first_pts is None:
            return self.time_offset
        return self._first_pts + round(self._frames / (self.rate * self.time_base))

    def _to_frame(self, rgb: np.ndarray, alpha: np.ndarray | None = None) -> av.VideoFrame:
        img = self._pixels(rgb, alpha)
        if self.rotation:
            img = cv2.rotate(img, _ROTATE_BACK[self.rotation])
        if self.padded:
            w, h = self.coded_size
            ew, eh = self.enc_size
            img = np.pad(img, ((0, eh - h), (0, ew - w), (0, 0)), mode="edge")
        layout = _PACKED[(img.dtype == np.uint16, img.shape[2] == 4)]
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format=layout)
        if self.plan.pix_fmt == layout:
            return frame
        if self.plan.rgb:
            return self._reformatter.reformat(frame, format=self.plan.pix_fmt, threads=1)
        return self._reformatter.reformat(
            frame,
            format=self.plan.pix_fmt,
            dst_colorspace=self.color.matrix,
            dst_color_range=colors.sws_range(self.color.full_range),
            interpolation=_TO_YUV,  # box-filtered chroma, rounded: no level shift
            threads=1,
        )

    def _pixels(self, rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
        """The packed array handed to swscale: RGB(A), 8-bit for uint8 frames (the fast path),
        16-bit for float frames and for deep alpha, with the alpha where the encoder keeps it."""
        keep_alpha = alpha is not None and self.holds_alpha
        if rgb.dtype == np.uint8:
            if not keep_alpha:
                return rgb
            if alpha.dtype == np.uint8 or self.plan_depth <= 8:  # type: ignore[union-attr]
                return np.dstack([rgb, to_uint8(alpha)])  # type: ignore[arg-type]
            colour = rgb.astype(np.uint16) * np.uint16(257)
        else:
            colour = to_uint16(rgb if self.space is None else self.space.from_working(rgb))
        if not keep_alpha:
            return colour
        return np.dstack([colour, to_uint16(alpha)])  # type: ignore[arg-type]

    @functools.cached_property
    def holds_alpha(self) -> bool:
        """Whether the encoder's pixel format keeps an alpha channel."""
        return has_alpha(self.plan.pix_fmt)

    @functools.cached_property
    def plan_depth(self) -> int:
        return max(c.bits for c in av.VideoFormat(self.plan.pix_fmt).components)

    def _encode(self, frame: av.VideoFrame | None, pts: int = 0, duration: int = 0) -> None:
        try:
            if frame is not None:
                out_pts = pts - self.time_offset
                frame.pts = out_pts
                frame.time_base = self.time_base
                self._tag_frame(frame)
                self._durations[out_pts] = max(1, int(duration))
                end = out_pts + max(1, int(duration))
                self._end_pts = end if self._end_pts is None else max(self._end_pts, end)
            for packet in self._stream.encode(frame):
                self._mux_video(packet)
        except av.FFmpegError as e:
            raise MediaError(f"encoding failed ({reason(e)})", self.path) from None

    def _mux_video(self, packet: av.Packet) -> None:
        self._repair_dts(packet)
        if packet.pts is not None and packet.pts in self._durations:
            packet.duration = self._durations.pop(packet.pts)
        if len(self._durations) > 1024:  # an encoder that rewrites pts: don't grow forever
            for key in sorted(self._durations)[:512]:
                del self._durations[key]
        # One packet is held back so the last one (in decode order) can get a duration that
        # makes MP4's sample table reach the end of the last frame (B-frames reorder them).
        if self._first_dts is None and packet.dts is not None:
            self._first_dts = packet.dts
        held, self._held = self._held, packet
        if held is not None:
            self._container.mux(held)

    def _repair_dts(self, packet: av.Packet) -> None:
        """libx265 leaves the dts of clips of one or two frames uninitialised (seen:
        -7.7e10, after the pts, different from run to run), which MP4 refuses ("pts/dts pair
        unsupported"). A dts after its pts, or more than a reorder window before it, becomes
        the next one the muxer can take."""
        pts, dts = packet.pts, packet.dts
        if pts is None or dts is None:
            return
        window = 64 * max(1, round(1 / (self.rate * self.time_base)))  # far beyond any GOP's delay
        if pts - window <= dts <= pts and (self._last_dts is None or dts > self._last_dts):
            self._last_dts = dts
            return
        packet.dts = pts if self._last_dts is None else min(pts, self._last_dts + 1)
        self._last_dts = packet.dts

    def _last_duration(self, last_pts: int, explicit: int | None) -> int:
        """The last frame's duration: given, else the source's (template) when this is the
        source's last frame, else the previous frame's, else 1/rate."""
        if explicit:
            return int(explicit)
        nominal = max(1, round(1 / (self.rate * self.time_base)))
        t = self.template
        if t is not None and t.duration > 0:
            src_end = round(Fraction(t.end_time).limit_denominator(10**9) / self.time_base)
            gap = src_end - last_pts
            if 0 < gap <= 2.5 * max(nominal, self._prev_delta or 0):
                return gap
        return self._prev_delta or nominal

    def _fix_last_sample(self, packet: av.Packet) -> None:
        """MP4 sample durations are DTS gaps; the last one must make their sum equal the
        presentation span (first pts .. end of the last frame), or demuxers report a wrong
        duration and frame rate when B-frames reorder the tail. It must not reach past the
        end either, since the edit list is computed from pts + duration."""
        if None in (packet.dts, packet.pts, self._first_dts, self._end_pts, self._first_pts):
            return
        span = self._end_pts - (self._first_pts - self.time_offset)  # type: ignore[operator]
        wanted = span - (packet.dts - self._first_dts)  # type: ignore[operator]
        packet.duration = max(1, min(wanted, self._end_pts - packet.pts))  # type: ignore[operator]

    # -- finishing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Flush, finish the audio, finalise the file and rename it onto `path`."""
        if self._closed:
            return
        try:
            if self._frames == 0:
                raise MediaError("no frames were written", self.path)
            frame, pts, explicit = self._pending  # type: ignore[misc]
            self._pending = None
            self._encode(frame, pts, self._last_duration(pts, explicit))
            self._encode(None)
            if self._held is not None:
                if self._mov:
                    self._fix_last_sample(self._held)
                self._container.mux(self._held)
                self._held = None
            if self._audio is not None:
                self._audio.finish()
            self._container.close()
        except av.FFmpegError as e:
            self.abort()
            raise MediaError(f"finishing the file failed ({reason(e)})", self.path) from None
        except BaseException:
            self.abort()
            raise
        self._closed = True
        self._finalizer.detach()
        try:
            os.replace(self._tmp, self.path)
        except OSError as e:
            remove_quietly(self._tmp)
            raise MediaError(
                f"can't move the finished file into place ({e.strerror})", self.path
            ) from None

    def abort(self) -> None:
        """Drop everything written so far; `path` stays as it was."""
        if self._closed:
            return
        self._closed = True
        if self._audio is not None:
            with contextlib.suppress(Exception):
                self._audio.close()
        self._finalizer()
