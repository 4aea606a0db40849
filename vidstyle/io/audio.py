"""Carry a source's audio into an output, streamed alongside the video.

Audio packets are copied untouched (no generation loss, no resampling drift). A second demuxer
on the source feeds packets up to the current video time, so the whole track is never held in
memory and the muxer can interleave. Codecs the output container can't hold are re-encoded
(AAC where allowed, else the container's default audio codec).
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av

from vidstyle.errors import MediaError
from vidstyle.io.probe import open_input, reason

_DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 8: "7.1"}


def _default_layout(layout: av.AudioLayout, channels: int) -> av.AudioLayout | str:
    if layout.name and "channels" not in layout.name:
        return layout
    return _DEFAULT_LAYOUTS.get(channels, "stereo")


class _Track:
    def __init__(self, src: av.audio.AudioStream, dst: av.audio.AudioStream, copy: bool):
        self.src, self.dst, self.copy = src, dst, copy
        self.last_dts: int | None = None
        self.done = False
        self.resampler: av.AudioResampler | None = None


class AudioRemuxer:
    """Adds one output stream per audio stream of `source`; call `mux_until` as video is
    written and `finish` before closing the output.

    window: [start, end) in seconds of source time (None: open). offset: seconds subtracted
    from every source timestamp (the writer's `time_offset`)."""

    def __init__(
        self,
        output: av.container.OutputContainer,
        source: Path,
        window: tuple[float | None, float | None] = (None, None),
        offset: Fraction | float = 0,
        dest: Path | None = None,
    ):
        self.output = output
        self.dest = dest or Path(output.name)  # the final name, for messages
        self.source = Path(source)
        self.start, self.end = window
        self.offset = Fraction(offset)
        # Matroska & co. can't store negative timestamps: their muxers would shift *every*
        # stream, video included, to make the AAC priming packet start at 0. MP4/MOV use an
        # edit list instead, so only there are packets before 0 kept.
        self.negative_ok = output.format.name in ("mp4", "mov", "3gp", "3g2", "ipod", "ismv")
        self.input = open_input(self.source)
        self.tracks: dict[int, _Track] = {}
        try:
            for s in self.input.streams.audio:
                self.tracks[s.index] = self._add_track(s)
        except BaseException:
            self.input.close()
            raise
        self._packets: Iterator[av.Packet] | None = None
        self._peek: av.Packet | None = None

    def _add_track(self, s: av.audio.AudioStream) -> _Track:
        name = s.codec_context.name
        if name in self.output.supported_codecs:
            dst = self.output.add_stream_from_template(s)
            if self.input.format.name != self.output.format.name:
                dst.codec_tag = "\0\0\0\0"  # let the output muxer pick its own tag
            layout = s.codec_context.layout
            if not layout.name or "channels" in layout.name:
                # "2 channels" (AVI's PCM): MP4's PCM needs a real layout; copying stays exact
                dst.codec_context.layout = _default_layout(layout, s.codec_context.channels)
            return _Track(s, dst, copy=True)
        supported = self.output.supported_codecs
        codec = "aac" if "aac" in supported else self.output.default_audio_codec
        if not codec or codec == "none":
            raise MediaError(f"this container can't hold audio ({name})", self.dest)
        rate = s.codec_context.sample_rate or 48000
        if codec in ("opus", "libopus"):
            rate = 48000
        dst = self.output.add_stream(codec, rate=rate)
        # Sources often say only "2 channels" (no order); encoders want a real layout.
        dst.layout = _default_layout(s.codec_context.layout, s.codec_context.channels)
        dst.time_base = Fraction(1, rate)
        if s.language:
            dst.metadata["language"] = s.language
        return _Track(s, dst, copy=False)

    @property
    def has_audio(self) -> bool:
        return bool(self.tracks)

    @property
    def reencoded(self) -> list[str]:
        """'codec -> codec' for each track that can't be copied."""
        return [
            f"{t.src.codec_context.name} -> {t.dst.codec_context.name}"
            for t in self.tracks.values()
            if not t.copy
        ]

    def _next(self) -> av.Packet | None:
        if self._peek is not None:
            p, self._peek = self._peek, None
            return p
        if self._packets is None:
            self._packets = self.input.demux(*[t.src for t in self.tracks.values()])
        return next(self._packets, None)

    def mux_until(self, t: float | None) -> None:
        """Mux audio whose output time is < t seconds (None: everything left in the window)."""
        if not self.tracks:
            return
        while not all(tr.done for tr in self.tracks.values()):
            packet = self._next()
            if packet is None:
                break
            track = self.tracks.get(packet.stream.index)
            if track is None or track.done:
                continue
            if packet.size == 0:  # demuxer flush packet, not data
                continue
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is None:
                continue
            src_time = ts * packet.time_base
            if self.end is not None and src_time >= Fraction(self.end):
                track.done = True
                continue
            if self.start is not None and src_time < Fraction(self.start):
                continue
            out_time = src_time - self.offset
            if out_time < 0 and not self.negative_ok:
                continue
            if t is not None and out_time >= t:
                self._peek = packet
                return
            self._mux(track, packet)

    def _mux(self, track: _Track, packet: av.Packet) -> None:
        shift = round(self.offset / packet.time_base) if self.offset else 0
        if packet.pts is not None:
            packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
            if track.last_dts is not None and packet.dts <= track.last_dts:
                return  # duplicate / non-monotonic DTS: the muxer would fail at the very end
            track.last_dts = packet.dts
        if track.copy:
            packet.stream = track.dst
            self.output.mux(packet)
            return
        try:
            frames = track.src.codec_context.decode(packet)
        except av.FFmpegError:
            return  # a corrupt audio packet costs a few ms of sound, not the render
        for frame in frames:  # timestamps already shifted via the packet
            for out in track.dst.encode(frame):
                self.output.mux(out)

    def finish(self) -> None:
        """Mux the rest of the window, flush re-encoders, close the source."""
        try:
            self.mux_until(None)
            for track in self.tracks.values():
                if not track.copy:
                    for frame in track.src.codec_context.decode(None):
                        for out in track.dst.encode(frame):
                            self.output.mux(out)
                    for out in track.dst.encode(None):
                        self.output.mux(out)
        except av.FFmpegError as e:
            raise MediaError(f"audio could not be copied ({reason(e)})", self.source) from None
        finally:
            self.close()

    def close(self) -> None:
        self.input.close()
