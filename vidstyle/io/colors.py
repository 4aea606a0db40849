"""Colour matrix / range decisions shared by the reader and the writer.

swscale guesses BT.601 limited range for untagged YUV, which shifts colours of HD footage
(usually BT.709). We decide the matrix once, the way players do (tag first, then size), and
use the same decision when converting back to YUV and when tagging the output, so a
read -> write round trip keeps colours and the output says what it contains.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
from av.video.reformatter import ColorRange, Colorspace

# FFmpeg AVColorSpace values (what PyAV reports as ints).
SPC_RGB, SPC_BT709, SPC_UNSPECIFIED = 0, 1, 2
SPC_FCC, SPC_BT470BG, SPC_SMPTE170M, SPC_SMPTE240M = 4, 5, 6, 7
SPC_BT2020_NCL, SPC_BT2020_CL = 9, 10
# AVColorRange
RANGE_UNSPECIFIED, RANGE_MPEG, RANGE_JPEG = 0, 1, 2
# AVColorPrimaries / AVColorTransferCharacteristic
PRI_BT709, PRI_UNSPECIFIED = 1, 2
TRC_BT709, TRC_UNSPECIFIED = 1, 2

# AVColorSpace -> swscale matrix
_SWS_MATRIX: dict[int, Colorspace] = {
    SPC_BT709: Colorspace.ITU709,
    SPC_FCC: Colorspace.FCC,
    SPC_BT470BG: Colorspace.ITU601,
    SPC_SMPTE170M: Colorspace.ITU601,
    SPC_SMPTE240M: Colorspace.SMPTE240M,
    SPC_BT2020_NCL: Colorspace.BT2020,
    SPC_BT2020_CL: Colorspace.BT2020,
}
# swscale matrix -> the AVColorSpace tag we write for it
_TAG_FOR_MATRIX: dict[Colorspace, int] = {
    Colorspace.ITU709: SPC_BT709,
    Colorspace.FCC: SPC_FCC,
    Colorspace.ITU601: SPC_SMPTE170M,
    Colorspace.SMPTE240M: SPC_SMPTE240M,
    Colorspace.BT2020: SPC_BT2020_NCL,
}


def is_hd(width: int, height: int) -> bool:
    """The players' rule for untagged video (mpv, libplacebo): HD sizes are BT.709."""
    return width >= 1280 or height > 576


def is_rgb_pix_fmt(pix_fmt: str | None) -> bool:
    if not pix_fmt:
        return False
    try:
        return bool(av.VideoFormat(pix_fmt).is_rgb)
    except (ValueError, av.FFmpegError):
        return False


def matrix_for(colorspace: int, width: int, height: int) -> Colorspace:
    """The YUV<->RGB matrix to use for a stream tagged `colorspace` of the given coded size."""
    known = _SWS_MATRIX.get(int(colorspace))
    if known is not None:
        return known
    return Colorspace.ITU709 if is_hd(width, height) else Colorspace.ITU601


def is_full_range(color_range: int, pix_fmt: str | None) -> bool:
    return int(color_range) == RANGE_JPEG or bool(pix_fmt and pix_fmt.startswith("yuvj"))


def sws_range(full: bool) -> ColorRange:
    return ColorRange.JPEG if full else ColorRange.MPEG


@dataclass(frozen=True)
class OutputColor:
    """What the writer converts RGB into and tags on the stream."""

    matrix: Colorspace
    full_range: bool
    colorspace: int  # AVColorSpace tag
    color_range: int  # AVColorRange tag
    color_primaries: int
    color_trc: int


def output_color(
    *,
    colorspace: int | None,
    color_range: int | None,
    color_primaries: int | None,
    color_trc: int | None,
    source_width: int,
    source_height: int,
    source_pix_fmt: str | None = None,
    rgb_output: bool = False,
    limited_only: bool = False,
) -> OutputColor:
    """Decide the output's conversion and tags from a template's tags (None: no template).

    The matrix guess uses the *source* size because that is what the reader used to decode it;
    the output may be resized to a size where a player would guess differently, so the guess
    is always written out explicitly. `limited_only`: the codec can only say limited range
    (ProRes), so a full-range source is converted to limited range and tagged so."""
    cs = SPC_UNSPECIFIED if colorspace is None else int(colorspace)
    if cs == SPC_RGB and not is_rgb_pix_fmt(source_pix_fmt):
        cs = SPC_UNSPECIFIED
    matrix = matrix_for(cs, source_width, source_height)
    full = (color_range is not None and is_full_range(color_range, source_pix_fmt)) or bool(
        source_pix_fmt and source_pix_fmt.startswith("yuvj")
    )
    prim = PRI_UNSPECIFIED if color_primaries is None else int(color_primaries)
    trc = TRC_UNSPECIFIED if color_trc is None else int(color_trc)
    if colorspace is None and matrix is Colorspace.ITU709:
        # No template: say plainly that this is ordinary HD video.
        prim, trc = PRI_BT709, TRC_BT709
    if rgb_output:
        return OutputColor(matrix, True, SPC_RGB, RANGE_JPEG, prim, trc)
    if limited_only:
        full = False
    return OutputColor(
        matrix=matrix,
        full_range=full,
        colorspace=_TAG_FOR_MATRIX[matrix] if cs not in _SWS_MATRIX else cs,
        color_range=RANGE_JPEG if full else RANGE_MPEG,
        color_primaries=prim,
        color_trc=trc,
    )
