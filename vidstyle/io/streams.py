"""Side streams (audio, subtitles) carried from a source into an output, beside the video.

A second demuxer on the source feeds packets up to the current video time, so a whole track is
never held in memory and the muxer can interleave. One window/offset rule for every kind: the
packets inside [start, end) seconds of source time, moved back by the writer's time offset.
Each output stream keeps what editors and players rely on: language, title and disposition
(default, forced, commentary...).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av

from vidstyle.errors import MediaError
from vidstyle.io.probe import open_input, reason

#: Muxers that store a track's title as its handler name (hdlr), which players show.
_HANDLER_TITLE = ("mp4", "mov", "3gp", "3g2", "ipod", "ismv", "f4v")
#: Handler names muxers write when given none: not a title.
_DEFAULT_HANDLER = re.compile(r"handler$|^core media |^iso media file produced by|^$", re.I)


def copy_tags(src: av.stream.Stream, dst: av.stream.Stream, output_format: str) -> None:
    """Give `dst` the language, title and disposition of `src`. MP4/MOV keep a title in the
    track's udta 'name' (read back as "name") and show the handler name, so the title goes to
    both; a source handler name that is a muxer default is never taken for a title."""
    tags = {k.lower(): v for k, v in src.metadata.items()}
    language = tags.get("language", "")
    if language and language != "und":
        dst.metadata["language"] = language
    handler = tags.get("handler_name", "")
    generic = bool(_DEFAULT_HANDLER.search(handler.strip()))
    title = tags.get("title") or tags.get("name") or ("" if generic else handler)
    if title:
        dst.metadata["title"] = title
    if handler and not generic:
        dst.metadata["handler_name"] = handler
    elif title and output_format in _HANDLER_TITLE:
        dst.metadata["handler_name"] = title
    dst.disposition = int(src.disposition) & ~int(av.stream.Disposition.attached_pic)


class Track:
    """One source stream carried into one output stream. The base copies packets untouched;
    subclasses re-encode (`write`) and flush what they hold at the end (`flush`)."""

    #: a packet that starts before the window but lasts into it is kept, shortened (subtitle
    #: cues); audio packets are whole frames and are simply dropped
    spans: bool = False

    def __init__(self, src: av.stream.Stream, dst: av.stream.Stream, copy: bool = True):
        self.src, self.dst, self.copy = src, dst, copy
        self.last_dts: int | None = None
        self.done = False

    def write(self, output: av.container.OutputContainer, packet: av.Packet) -> None:
        packet.stream = self.dst
        output.mux(packet)

    def flush(self, output: av.container.OutputContainer) -> None:
        """Nothing is held back by a copy."""


class SideStreams:
    """Adds one output stream per source stream that `_add_track` accepts; call `mux_until`
    as video is written and `finish` before closing the output.

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
        self.tracks: dict[int, Track] = {}
        try:
            for s in self.input.streams:
                track = self._add_track(s)
                if track is not None:
                    copy_tags(s, track.dst, output.format.name)
                    self.tracks[s.index] = track
        except BaseException:
            self.input.close()
            raise
        self._packets: Iterator[av.Packet] | None = None
        self._peek: av.Packet | None = None

    @property
    def has_audio(self) -> bool:
        return any(t.src.type == "audio" for t in self.tracks.values())

    @property
    def has_subtitles(self) -> bool:
        return any(t.src.type == "subtitle" for t in self.tracks.values())

    def _add_track(self, s: av.stream.Stream) -> Track | None:
        """The output stream for `s`, or None to leave it out (the base carries nothing)."""
        return None

    def _next(self) -> av.Packet | None:
        if self._peek is not None:
            p, self._peek = self._peek, None
            return p
        if self._packets is None:
            self._packets = self.input.demux(*[t.src for t in self.tracks.values()])
        return next(self._packets, None)

    def _lower_bound(self, track: Track) -> Fraction | None:
        """The earliest source time an output packet of `track` may have (None: no limit).
        Cues never start before the output does, even where the container allows it."""
        bounds = [Fraction(self.start)] if self.start is not None else []
        if track.spans or not self.negative_ok:
            bounds.append(self.offset)
        return max(bounds) if bounds else None

    def mux_until(self, t: float | None) -> None:
        """Mux packets whose output time is < t seconds (None: everything left in the window)."""
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
                if not (track.spans and self._clip_start(track, packet)):
                    continue
                src_time = packet.pts * packet.time_base
            out_time = src_time - self.offset
            if out_time < 0 and (track.spans or not self.negative_ok):
                if not (track.spans and self._clip_start(track, packet)):
                    continue
                out_time = packet.pts * packet.time_base - self.offset
            if t is not None and out_time >= t:
                self._peek = packet
                return
            if track.spans:
                self._clip_end(packet)
            self._mux(track, packet)

    def _clip_start(self, track: Track, packet: av.Packet) -> bool:
        """Move a cue that began before the window to its start, shortened; False when it is
        over by then (or has no duration to tell)."""
        bound = self._lower_bound(track)
        if bound is None or packet.pts is None or not packet.duration:
            return False
        tb = packet.time_base
        first = round(bound / tb)  # the window is float seconds: the nearest tick
        end = packet.pts + packet.duration
        if end <= first:
            return False
        packet.duration = end - first
        packet.pts = first
        packet.dts = first
        return True

    def _clip_end(self, packet: av.Packet) -> None:
        if self.end is None or packet.pts is None or not packet.duration:
            return
        last = round(Fraction(self.end) / packet.time_base)
        if packet.pts + packet.duration > last:
            packet.duration = max(1, last - packet.pts)

    def _mux(self, track: Track, packet: av.Packet) -> None:
        shift = round(self.offset / packet.time_base) if self.offset else 0
        if packet.pts is not None:
            packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
            if track.last_dts is not None and packet.dts <= track.last_dts:
                return  # duplicate / non-monotonic DTS: the muxer would fail at the very end
            track.last_dts = packet.dts
        track.write(self.output, packet)

    def finish(self) -> None:
        """Mux the rest of the window, flush re-encoders, close the source."""
        try:
            self.mux_until(None)
            for track in self.tracks.values():
                track.flush(self.output)
        except av.FFmpegError as e:
            what = "audio or subtitles" if self.has_subtitles else "audio"
            raise MediaError(f"{what} could not be copied ({reason(e)})", self.source) from None
        finally:
            self.close()

    def close(self) -> None:
        self.input.close()
