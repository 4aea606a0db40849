"""Media I/O: probing, streaming readers and atomic writers for videos and image sequences,
style images, output paths. Everything user-facing raises MediaError / StyleImageError with
one line naming the file."""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Any

from vidstyle.io.encoders import available_encoders
from vidstyle.io.frames import Frame, fit_size
from vidstyle.io.images import load_image, read_rgb, write_image
from vidstyle.io.paths import IMAGE_SUFFIXES, VIDEO_SUFFIXES, atomic_path, check_writable
from vidstyle.io.patterns import is_image_sequence
from vidstyle.io.probe import AudioInfo, VideoInfo, frame_timestamps, probe
from vidstyle.io.reader import VideoReader
from vidstyle.io.sequence import ImageSequenceReader, ImageSequenceWriter
from vidstyle.io.writer import VideoWriter, writer_options


def open_reader(
    path_or_pattern: str | os.PathLike[str], *, rate: Fraction | None = None, **kw: Any
) -> VideoReader | ImageSequenceReader:
    """A reader for a video file or an image sequence (`rate` only applies to sequences:
    a video's own timestamps always win)."""
    if is_image_sequence(path_or_pattern):
        return ImageSequenceReader(path_or_pattern, rate=rate, **kw)
    return VideoReader(path_or_pattern, **kw)


def open_writer(
    path_or_pattern: str | os.PathLike[str], **kw: Any
) -> VideoWriter | ImageSequenceWriter:
    """A writer for a video file or a numbered image sequence, same keyword arguments."""
    if is_image_sequence(path_or_pattern):
        return ImageSequenceWriter(path_or_pattern, **kw)
    return VideoWriter(path_or_pattern, **kw)


__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "AudioInfo",
    "Frame",
    "ImageSequenceReader",
    "ImageSequenceWriter",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "atomic_path",
    "available_encoders",
    "check_writable",
    "fit_size",
    "frame_timestamps",
    "is_image_sequence",
    "load_image",
    "open_reader",
    "open_writer",
    "probe",
    "read_rgb",
    "write_image",
    "writer_options",
]
