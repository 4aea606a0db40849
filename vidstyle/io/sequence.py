"""Image sequences (`shot.%04d.png`, `shot.####.exr`, `frames/*.png`) with the same shapes as
VideoReader / VideoWriter. Frame i of a sequence has pts i in time base 1/rate."""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from vidstyle.errors import MediaError
from vidstyle.io.frames import Frame
from vidstyle.io.images import read_rgb, resize_to, write_image
from vidstyle.io.lifecycle import Atomic, Closing
from vidstyle.io.paths import check_writable, remove_stale_matching
from vidstyle.io.patterns import is_image_sequence, list_sequence, parse_numbered
from vidstyle.io.probe import VideoInfo
from vidstyle.io.reader import check_range, check_size

DEFAULT_RATE = Fraction(24)


def _listing(pattern: str | os.PathLike[str]) -> list[tuple[int | None, Path]]:
    files = list_sequence(pattern)
    if not files:
        raise MediaError("no image files match this sequence pattern", Path(os.fspath(pattern)))
    return files


def probe_sequence(pattern: str | os.PathLike[str], *, rate: Fraction | None = None) -> VideoInfo:
    """Describe a sequence from its file list and its first image."""
    files = _listing(pattern)
    first = read_rgb(files[0][1])
    rate = Fraction(rate) if rate else DEFAULT_RATE
    n = len(files)
    h, w = first.shape[:2]
    suffix = files[0][1].suffix.lower().lstrip(".")
    depth = _bit_depth(files[0][1])
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
        pix_fmt={8: "rgb24", 16: "rgb48le", 32: "gbrpf32le"}.get(depth, "rgb24"),
        bit_depth=depth,
        color_range=0,
        colorspace=0,  # RGB
        color_primaries=2,
        color_trc=2,
        sample_aspect_ratio=None,
        audio=(),
        is_vfr=False,
        is_image_sequence=True,
    )


def _bit_depth(path: Path) -> int:
    if path.suffix.lower() == ".exr":
        return 16
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        return 8
    return {np.dtype(np.uint16): 16, np.dtype(np.float32): 32}.get(img.dtype, 8)


class ImageSequenceReader(Closing):
    """Iterate frames [start_index, end_index) of an image sequence as upright RGB Frames."""

    def __init__(
        self,
        pattern: str | os.PathLike[str],
        *,
        rate: Fraction | None = None,
        size: tuple[int, int] | None = None,
        start_index: int = 0,
        end_index: int | None = None,
        threads: int = 0,
        work_size: tuple[int, int] | None = None,
    ):
        self.pattern = os.fspath(pattern)
        self.files = _listing(self.pattern)
        self.info = probe_sequence(self.pattern, rate=rate)
        self.size = check_size(size) or (self.info.width, self.info.height)
        self.work_size = check_size(work_size) if work_size != self.size else None
        self.start_index, self.end_index = check_range(start_index, end_index, len(self.files))

    @property
    def numbers(self) -> list[int | None]:
        """The frame number in each file name (None for globbed names without digits)."""
        return [n for n, _ in self.files]

    def __len__(self) -> int:
        return self.end_index - self.start_index

    def close(self) -> None:
        pass

    def __iter__(self) -> Iterator[Frame]:
        tb = self.info.time_base
        for i in range(self.start_index, self.end_index):
            rgb = resize_to(read_rgb(self.files[i][1]), self.size)
            if self.work_size is None:
                yield Frame(i, i, tb, rgb)
            else:
                yield Frame(i, i, tb, resize_to(rgb, self.work_size), full=rgb)


class ImageSequenceWriter(Atomic):
    """Write frames as `pattern % number`, numbering from `first_number`; each file is written
    to a temporary name and renamed, so a killed job leaves only complete frames.

    Accepts VideoWriter's keyword arguments so `open_writer` can pass them through; the ones
    that only mean something for video files (codec, crf, audio, ...) are ignored."""

    def __init__(
        self,
        pattern: str | os.PathLike[str],
        *,
        width: int,
        height: int,
        rate: Fraction = DEFAULT_RATE,
        time_base: Fraction | None = None,
        first_number: int = 1,
        bit_depth: int = 8,
        template: VideoInfo | None = None,
        codec: str | None = None,
        crf: int | None = None,
        preset: str | None = None,
        pix_fmt: str | None = None,
        audio_from: str | os.PathLike[str] | None = None,
        audio_window: tuple[float | None, float | None] = (None, None),
        time_offset: int = 0,
        threads: int = 0,
        options: dict[str, str] | None = None,
    ):
        self.pattern = os.fspath(pattern)
        numbered = parse_numbered(self.pattern)
        if numbered is None or not is_image_sequence(self.pattern) or "*" in self.pattern:
            raise MediaError(
                "an output sequence needs a numbered pattern like out.%04d.png or out.####.png",
                Path(self.pattern),
            )
        self._numbered = numbered
        check_writable(numbered.name(first_number))
        # frames' temporaries left by a run that was killed (.shot.0007.png.vidstyle-tmp-...)
        remove_stale_matching(numbered.directory, f".{numbered.prefix}")
        if bit_depth not in (8, 16):
            raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
        self.width, self.height = int(width), int(height)
        self.first_number = int(first_number)
        self.bit_depth = bit_depth
        self.rate = Fraction(rate)
        self.count = 0
        self.last_path: Path | None = None
        self._closed = False

    def path_for(self, number: int) -> Path:
        return self._numbered.name(number)

    def write(self, rgb: np.ndarray, pts: int | None = None, duration: int | None = None) -> None:
        """Write the next frame (pts/duration are accepted for symmetry and ignored: a
        sequence's timing is its numbering and rate)."""
        if self._closed:
            raise ValueError("write() on a closed ImageSequenceWriter")
        if rgb.shape != (self.height, self.width, 3) or rgb.dtype != np.uint8:
            raise ValueError(
                f"expected ({self.height}, {self.width}, 3) uint8, got {rgb.shape} {rgb.dtype}"
            )
        path = self.path_for(self.first_number + self.count)
        write_image(path, rgb, bit_depth=self.bit_depth)
        self.last_path = path
        self.count += 1

    def close(self) -> None:
        self._closed = True

    def abort(self) -> None:
        """Stop; frames already written are complete files and are kept (resumable)."""
        self._closed = True
