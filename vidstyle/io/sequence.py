"""Image sequences (`shot.%04d.png`, `shot.####.exr`, `frames/*.png`) with the same shapes as
VideoReader / VideoWriter. Frame i of a sequence has pts i in time base 1/rate."""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vidstyle import notices
from vidstyle.errors import MediaError
from vidstyle.io.frames import Frame
from vidstyle.io.images import (
    linear_to_srgb,
    read_plate,
    resize_to,
    srgb_to_linear,
    to_uint8,
    write_image,
)
from vidstyle.io.lifecycle import Atomic, Closing
from vidstyle.io.paths import check_writable, remove_stale_matching
from vidstyle.io.patterns import is_image_sequence, parse_numbered
from vidstyle.io.probe import DEFAULT_RATE, VideoInfo, probe_sequence, sequence_files
from vidstyle.io.reader import check_range, check_size

if TYPE_CHECKING:
    from vidstyle.io.working_space import WorkingSpace

_FRAME_DTYPES = (np.dtype(np.uint8), np.dtype(np.float32))
_ALPHA_SUFFIXES = (".png", ".tif", ".tiff", ".exr", ".webp")


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
        deep: bool = False,
        alpha: bool = False,
        space: WorkingSpace | None = None,
    ):
        self.pattern = os.fspath(pattern)
        self.files = sequence_files(self.pattern)
        self.info = probe_sequence(self.pattern, rate=rate)
        self.size = check_size(size) or (self.info.width, self.info.height)
        self.work_size = check_size(work_size) if work_size != self.size else None
        self.start_index, self.end_index = check_range(start_index, end_index, len(self.files))
        #: float32 working-space frames from 16-bit and EXR files (else uint8, as today)
        self.deep = bool(deep) and self.info.bit_depth > 8
        self.alpha = bool(alpha)
        self.space = None if space is None or space.identity else space

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
            number, path = self.files[i]
            rgb, alpha = self._picture(path)
            rgb = resize_to(rgb, self.size)
            if alpha is not None:
                alpha = resize_to(alpha, self.size)
            small = rgb if self.work_size is None else resize_to(rgb, self.work_size)
            full = None if self.work_size is None else rgb
            yield Frame(i, i, tb, small, full=full, alpha=alpha, number=number)

    def _picture(self, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
        """(RGB uint8 or float32 working values, alpha at the file's depth or None)."""
        rgb, alpha = read_plate(path)
        alpha = alpha if self.alpha else None
        if not self.deep or rgb.dtype == np.uint8:
            if rgb.dtype == np.float32:  # scene-linear, shown as sRGB on the 8-bit path
                return to_uint8(linear_to_srgb(rgb)), alpha
            return to_uint8(rgb), alpha
        if rgb.dtype == np.uint16:  # display-referred (PNG/TIFF): the working values as stored
            values = rgb.astype(np.float32)
            values *= np.float32(1 / 65535)
            return values, alpha
        if self.space is not None and self.space.transfer == "linear":
            return self.space.to_working(rgb), alpha  # a scene-linear plate
        return linear_to_srgb(rgb), alpha  # what write() made of display-referred values


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
        bit_depth: int | None = None,
        template: VideoInfo | None = None,
        codec: str | None = None,
        crf: int | None = None,
        preset: str | None = None,
        pix_fmt: str | None = None,
        audio_from: str | os.PathLike[str] | None = None,
        audio_window: tuple[float | None, float | None] = (None, None),
        audio: bool = True,
        time_offset: int = 0,
        threads: int = 0,
        options: dict[str, str] | None = None,
        space: WorkingSpace | None = None,
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
        if bit_depth is None:  # follow the source: 16-bit PNG/TIFF from deep sources
            bit_depth = 16 if template is not None and template.bit_depth > 8 else 8
        if bit_depth not in (8, 16):
            raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
        self.width, self.height = int(width), int(height)
        self.first_number = int(first_number)
        self.bit_depth = bit_depth
        self.space = None if space is None or space.identity else space
        suffix = os.path.splitext("frame" + numbered.suffix)[1].lower()
        self.exr = suffix == ".exr"
        self.holds_alpha = suffix in _ALPHA_SUFFIXES
        if template is not None and template.has_alpha and not self.holds_alpha:
            notices.warn(
                f"alpha channel dropped: {suffix} files can't hold it (use .png, .tif or .exr)",
                Path(self.pattern),
            )
        self.rate = Fraction(rate)
        self.count = 0
        self.last_path: Path | None = None
        self._closed = False

    def path_for(self, number: int) -> Path:
        return self._numbered.name(number)

    def write(
        self,
        rgb: np.ndarray,
        pts: int | None = None,
        duration: int | None = None,
        alpha: np.ndarray | None = None,
        number: int | None = None,
    ) -> None:
        """Write the next frame as file `number` (default: `first_number` + frames written).
        pts/duration are accepted for symmetry and ignored: a sequence's timing is its
        numbering and rate. `rgb` is uint8 or float32 working values (see VideoWriter)."""
        if self._closed:
            raise ValueError("write() on a closed ImageSequenceWriter")
        if rgb.shape != (self.height, self.width, 3) or rgb.dtype not in _FRAME_DTYPES:
            raise ValueError(
                f"expected ({self.height}, {self.width}, 3) uint8 or float32, "
                f"got {rgb.shape} {rgb.dtype}"
            )
        path = self.path_for(self.first_number + self.count if number is None else number)
        picture = rgb
        if rgb.dtype == np.float32 and self.exr:
            if self.space is not None and self.space.transfer == "linear":
                picture = self.space.from_working(rgb)  # back to the plate's scene-linear light
            else:  # display-referred working values, linearised for EXR
                picture = srgb_to_linear(rgb)
        elif rgb.dtype == np.float32 and self.bit_depth == 8:
            picture = to_uint8(rgb)
        write_image(
            path, picture, bit_depth=self.bit_depth, alpha=alpha if self.holds_alpha else None
        )
        self.last_path = path
        self.count += 1

    def close(self) -> None:
        self._closed = True

    def abort(self) -> None:
        """Stop; frames already written are complete files and are kept (resumable)."""
        self._closed = True
