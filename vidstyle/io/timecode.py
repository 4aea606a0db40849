"""SMPTE start timecode: read from a source, advanced for a render that starts later, written
so FFmpeg's muxers store it (a `tmcd` track in MP4/MOV, a TIMECODE tag in Matroska).

Editors line a render up with the camera original by its timecode, so a trimmed range or a farm
chunk must say where *it* starts, not where the source did. Drop-frame timecode (29.97/59.94,
written with ';' before the frames) skips labels, not frames: 2 (4 at 59.94) frame numbers at the
start of every minute except each tenth, so plain arithmetic on the label would drift.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction

import av

from vidstyle import notices

#: The metadata key FFmpeg's demuxers use (mov/mp4 tmcd, MXF, Matroska's TIMECODE tag) and its
#: muxers read (mov creates the tmcd track from it, Matroska writes it as a tag).
KEY = "timecode"

_PATTERN = re.compile(r"^\s*(\d{1,2}):(\d{2}):(\d{2})([:;.,])(\d{2,3})\s*$")


@dataclass(frozen=True)
class Timecode:
    """hh:mm:ss:ff counted at `fps` (the rounded frame rate: 24, 25, 30, 60...)."""

    hours: int
    minutes: int
    seconds: int
    frames: int
    drop: bool = False

    def __str__(self) -> str:
        sep = ";" if self.drop else ":"
        return f"{self.hours:02d}:{self.minutes:02d}:{self.seconds:02d}{sep}{self.frames:02d}"


def parse(text: str) -> Timecode | None:
    """'01:00:00:00' / '00:59:59;28' (also '.' or ',' before the frames, which FFmpeg reads as
    drop-frame too); None when it is not a timecode."""
    m = _PATTERN.match(text or "")
    if m is None:
        return None
    h, mi, s, sep, f = m.groups()
    tc = Timecode(int(h), int(mi), int(s), int(f), drop=sep != ":")
    if tc.minutes > 59 or tc.seconds > 59:
        return None
    return tc


def nominal_fps(rate: Fraction | float) -> int:
    """The frame count per timecode second: 30 for 30000/1001, 24 for 23.976, 25 for 25."""
    return max(1, round(Fraction(rate).limit_denominator(1_000_000)))


def _dropped_per_minute(fps: int, drop: bool) -> int:
    """Labels skipped each minute (except every tenth): 2 at 30, 4 at 60; 0 for non-drop or
    rates drop-frame does not apply to (FFmpeg refuses those too)."""
    return fps // 30 * 2 if drop and fps % 30 == 0 else 0


def to_frames(tc: Timecode, fps: int) -> int:
    """Frames elapsed since 00:00:00:00 (for drop-frame: real frames, labels skipped)."""
    drop = _dropped_per_minute(fps, tc.drop)
    total_minutes = 60 * tc.hours + tc.minutes
    labels = (3600 * tc.hours + 60 * tc.minutes + tc.seconds) * fps + tc.frames
    return labels - drop * (total_minutes - total_minutes // 10)


def from_frames(count: int, fps: int, drop: bool = False) -> Timecode:
    """The timecode `count` frames after 00:00:00:00, wrapping at 24 hours."""
    skip = _dropped_per_minute(fps, drop)
    if skip:
        per_minute = 60 * fps - skip  # real frames in a minute that drops labels
        per_ten = 10 * per_minute + skip  # ... and in ten minutes (the tenth drops none)
        count %= 24 * 6 * per_ten
        tens, rest = divmod(count, per_ten)
        count += 9 * skip * tens  # ffmpeg's av_timecode_adjust_ntsc_framenum2
        if rest > skip:
            count += skip * ((rest - skip) // per_minute)
    else:
        count %= 24 * 3600 * fps
    seconds, frames = divmod(count, fps)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return Timecode(hours % 24, minutes, seconds, frames, drop=bool(skip))


def advance(text: str, frames: int, rate: Fraction | float) -> str | None:
    """`text` moved on by `frames` (negative: back) at `rate` fps; None when `text` is not a
    timecode or its frame field does not fit the rate."""
    tc = parse(text)
    if tc is None:
        return None
    if frames == 0:
        return text.strip()  # untouched
    fps = nominal_fps(rate)
    if tc.frames >= fps:
        return None
    return str(from_frames(to_frames(tc, fps) + int(frames), fps, tc.drop))


def frames_in(seconds: Fraction | float, rate: Fraction | float) -> int:
    """Whole frames shown in `seconds` at `rate` (the frames a trimmed render skipped)."""
    return round(Fraction(seconds) * Fraction(rate))


def _lookup(metadata: Mapping[str, str]) -> str:
    for k, v in metadata.items():
        if k.lower() == KEY and parse(v) is not None:
            return v.strip()
    return ""


def read(container: av.container.InputContainer, video: av.stream.Stream | None = None) -> str:
    """The source's start timecode: the video stream's tag (mov/mp4 link the tmcd track to it,
    Matroska keeps a per-track TIMECODE), a tmcd data stream, then the container's (MXF,
    Matroska's global tag); "" when there is none."""
    streams: Iterable[av.stream.Stream] = (video,) if video is not None else ()
    data = [s for s in container.streams if s.type == "data"]
    for s in (*streams, *data):
        found = _lookup(s.metadata)
        if found:
            return found
    return _lookup(container.metadata)


def for_output(source: str, skipped_seconds: Fraction | float, rate: Fraction | float) -> str:
    """The start timecode of an output whose time 0 is `skipped_seconds` into the source
    (the writer's time offset); "" when the source has none or it can't be advanced."""
    if not source:
        return ""
    moved = advance(source, frames_in(skipped_seconds, rate), rate)
    return moved or ""


def apply(
    stream: av.stream.Stream,
    source: str,
    skipped_seconds: Fraction,
    rate: Fraction,
    path: str | os.PathLike[str] | None = None,
) -> str:
    """Tag the output video stream (before the header is written) with the timecode the
    render starts at; returns it ("" when none). One warning when the source has one that
    can't be carried over."""
    tc = for_output(source, skipped_seconds, rate)
    if tc:
        stream.metadata[KEY] = tc
    elif source:
        notices.warn(
            f"the source's start timecode {source!r} does not fit {float(rate):.3f} fps; "
            "the output has none",
            path,
        )
    return tc
