"""Subtitle streams carried into an output: copied when the container can hold the codec,
converted between text formats when it can't (SRT/ASS into MP4 need mov_text, mov_text into
Matroska becomes SRT), left out with one warning otherwise (bitmap subtitles into MP4, any
subtitles into a container without them).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

from vidstyle import notices
from vidstyle.io.streams import Track

#: Text subtitle encoders, most faithful first for the containers that take them.
_TEXT_TARGETS = ("mov_text", "subrip", "webvtt", "ass")


class ConvertedSubtitle(Track):
    """Decodes each cue to text and encodes it in the output's format; timing comes from
    the source packet (already windowed and offset)."""

    spans = True

    def write(self, output: av.container.OutputContainer, packet: av.Packet) -> None:
        try:
            cues = self.src.codec_context.decode2(packet)
        except av.FFmpegError:
            return  # one unreadable cue, not the render
        if cues is None or len(cues) == 0:
            return  # an empty sample (MP4 fills gaps between cues with them)
        out = self.dst.codec_context.encode_subtitle(cues)
        out.stream = self.dst
        out.time_base = packet.time_base
        out.pts, out.dts, out.duration = packet.pts, packet.dts, packet.duration
        output.mux(out)


class CopiedSubtitle(Track):
    """Packets copied untouched; a cue that began before the window is kept, shortened."""

    spans = True


def _target(output: av.container.OutputContainer) -> str | None:
    supported = output.supported_codecs
    for name in _TEXT_TARGETS:
        if name in supported and name in av.codecs_available:
            return name
    return None


def subtitle_track(
    output: av.container.OutputContainer, s: av.stream.Stream, dest: Path
) -> Track | None:
    """The output stream for subtitle stream `s` (copied or converted), or None after a
    warning naming the stream when the output can't hold it."""
    dec = s.codec_context
    name = dec.name if dec is not None else ""
    if name and name in output.supported_codecs:
        try:
            dst = output.add_stream_from_template(s)
        except ValueError:
            pass  # the muxer's own check disagrees: convert or leave it out
        else:
            if s.container.format.name != output.format.name:
                dst.codec_tag = "\0\0\0\0"  # let the output muxer pick its own tag
            return CopiedSubtitle(s, dst)
    target = _target(output)
    text = dec is not None and dec.codec.text_sub
    if target is None or not text:
        why = f"a {dest.suffix or 'suffix-less'} file can't hold "
        if text:
            why += "text subtitles"
        elif dec is not None and dec.codec.bitmap_sub:
            why += f"{name} (picture subtitles can't be turned into text)"
        else:
            why += f"{name or 'this subtitle codec'}"
        notices.warn(f"subtitle stream #{s.index}{_language(s)} left out: {why}", dest)
        return None
    dec.open(strict=False)  # its ASS header (styles) is what the encoder formats cues with
    dst = output.add_stream(target)
    tb = Fraction(s.time_base) if s.time_base else Fraction(1, 1000)
    dst.codec_context.time_base = tb
    dst.time_base = tb
    if dec.subtitle_header:
        dst.codec_context.subtitle_header = dec.subtitle_header
    return ConvertedSubtitle(s, dst, copy=False)


def _language(s: av.stream.Stream) -> str:
    lang = next((v for k, v in s.metadata.items() if k.lower() == "language"), "")
    return f" ({lang})" if lang and lang != "und" else ""
