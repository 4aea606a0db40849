"""Carry a source's audio (and subtitles) into an output, streamed alongside the video.

Audio packets are copied untouched (no generation loss, no resampling drift). A second demuxer
on the source feeds packets up to the current video time, so the whole track is never held in
memory and the muxer can interleave (vidstyle.io.streams). Codecs the output container can't
hold are re-encoded (AAC where allowed, else the container's default audio codec). Subtitle
streams ride along (vidstyle.io.subtitles).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

from vidstyle.errors import MediaError
from vidstyle.io.streams import SideStreams, Track
from vidstyle.io.subtitles import subtitle_track

_DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 8: "7.1"}


def _default_layout(layout: av.AudioLayout, channels: int) -> av.AudioLayout | str:
    if layout.name and "channels" not in layout.name:
        return layout
    return _DEFAULT_LAYOUTS.get(channels, "stereo")


class _Reencoded(Track):
    """Audio the output container can't hold: decoded and encoded again (timestamps come
    already shifted with the packet)."""

    def __init__(self, src: av.audio.AudioStream, dst: av.audio.AudioStream):
        super().__init__(src, dst, copy=False)

    def write(self, output: av.container.OutputContainer, packet: av.Packet) -> None:
        try:
            frames = self.src.codec_context.decode(packet)
        except av.FFmpegError:
            return  # a corrupt audio packet costs a few ms of sound, not the render
        for frame in frames:
            for out in self.dst.encode(frame):
                output.mux(out)

    def flush(self, output: av.container.OutputContainer) -> None:
        for frame in self.src.codec_context.decode(None):
            for out in self.dst.encode(frame):
                output.mux(out)
        for out in self.dst.encode(None):
            output.mux(out)


class AudioRemuxer(SideStreams):
    """Adds one output stream per audio stream of `source` (unless `audio=False`), and per
    subtitle stream unless `subtitles=False` (the name predates subtitles); call `mux_until`
    as video is written and `finish` before closing the output. Language, title and
    disposition are kept.

    window: [start, end) in seconds of source time (None: open). offset: seconds subtracted
    from every source timestamp (the writer's `time_offset`)."""

    def __init__(
        self,
        output: av.container.OutputContainer,
        source: Path,
        window: tuple[float | None, float | None] = (None, None),
        offset: Fraction | float = 0,
        dest: Path | None = None,
        subtitles: bool = True,
        audio: bool = True,
    ):
        self.subtitles = subtitles
        self.audio = audio
        super().__init__(output, source, window, offset, dest)

    def _add_track(self, s: av.stream.Stream) -> Track | None:
        if s.type == "audio" and self.audio:
            return self._audio_track(s)  # type: ignore[arg-type]
        if s.type == "subtitle" and self.subtitles:
            return subtitle_track(self.output, s, self.dest)
        return None

    def _audio_track(self, s: av.audio.AudioStream) -> Track:
        name = s.codec_context.name
        if name in self.output.supported_codecs:
            dst = self.output.add_stream_from_template(s)
            if self.input.format.name != self.output.format.name:
                dst.codec_tag = "\0\0\0\0"  # let the output muxer pick its own tag
            layout = s.codec_context.layout
            if not layout.name or "channels" in layout.name:
                # "2 channels" (AVI's PCM): MP4's PCM needs a real layout; copying stays exact
                dst.codec_context.layout = _default_layout(layout, s.codec_context.channels)
            return Track(s, dst, copy=True)
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
        return _Reencoded(s, dst)

    @property
    def reencoded(self) -> list[str]:
        """'codec -> codec' for each audio track that can't be copied."""
        return [
            f"{t.src.codec_context.name} -> {t.dst.codec_context.name}"
            for t in self.tracks.values()
            if not t.copy and t.src.type == "audio"
        ]
