"""Still images: style images and image-sequence frames, as RGB uint8.

OpenCV decodes PNG/JPEG/WebP/TIFF/BMP (16-bit, alpha, EXIF orientation). This OpenCV build
has no OpenEXR (cv2.haveImageReader/Writer(".exr") are False even with
OPENCV_IO_ENABLE_OPENEXR=1), so EXR goes through FFmpeg's exr decoder/encoder via PyAV:
half-float, linear light, converted from/to sRGB-encoded uint8.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from vidstyle.errors import MediaError, StyleImageError
from vidstyle.io.paths import remove_quietly, temp_sibling

_MAY_HAVE_ALPHA = (b"\x89PNG", b"RIFF", b"II*\x00", b"MM\x00*")


def resize_to(
    image: np.ndarray, size: tuple[int, int], enlarge: int = cv2.INTER_CUBIC
) -> np.ndarray:
    """`image` at (width, height) `size`: area averaging when shrinking (no aliasing), `enlarge`
    interpolation otherwise; the same array when the size already matches."""
    h, w = image.shape[:2]
    if (w, h) == size:
        return image
    shrink = size[0] * size[1] < w * h
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink else enlarge)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x.astype(np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(
        np.float32
    )


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Any depth -> uint8 (16-bit rounded, float clipped to [0, 1])."""
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return ((img.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(img.dtype, np.floating):
        return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    info = np.iinfo(img.dtype)
    return (img.astype(np.float64) / info.max * 255 + 0.5).clip(0, 255).astype(np.uint8)


def _flatten_alpha(bgra: np.ndarray) -> np.ndarray:
    """Composite over white: transparent parts of a style image should read as paper."""
    color = bgra[..., :3].astype(np.float32)
    peak = 65535.0 if bgra.dtype == np.uint16 else (1.0 if bgra.dtype.kind == "f" else 255.0)
    alpha = bgra[..., 3:4].astype(np.float32) / peak
    out = color * alpha + peak * (1.0 - alpha)
    return out.astype(bgra.dtype) if bgra.dtype.kind != "f" else out


def _decode_cv2(data: np.ndarray) -> np.ndarray | None:
    """BGR(A) decode with EXIF orientation applied where OpenCV can (not for alpha images)."""
    head = data[:4].tobytes()
    if head.startswith(_MAY_HAVE_ALPHA) or head[:2] in (b"II", b"MM"):
        raw = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        if raw is None:
            return None
        if raw.ndim == 3 and raw.shape[2] == 4:
            return _flatten_alpha(raw)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    return img


def _decode_av(path: Path, linear: bool = False) -> np.ndarray | None:
    """RGB float/uint via FFmpeg, for what OpenCV lacks (EXR, DPX, ...). EXR is linear:
    sRGB-encoded for display, or kept linear (with its alpha) when `linear`."""
    try:
        with av.open(str(path)) as c:
            frame = next(c.decode(video=0))
    except (av.FFmpegError, OSError, StopIteration, UnicodeDecodeError):
        return None
    name = frame.format.name
    if name.startswith(("gbrpf", "gbrapf")):
        planes = _float_planes(frame)
        if not linear:
            planes = planes[..., :3]
            return linear_to_srgb(planes) if path.suffix.lower() == ".exr" else planes
        return planes
    return frame.to_ndarray(format="rgb24")


def _float_planes(frame: av.VideoFrame) -> np.ndarray:
    """A planar float frame (gbrpf16le, gbrapf32le, ...) as RGB(A) float32, values kept as
    they are: swscale's conversion would clip scene-linear highlights to 1.0."""
    dtype = np.float16 if "f16" in frame.format.name else np.float32
    size = np.dtype(dtype).itemsize
    planes = []
    for plane in frame.planes:
        rows = np.frombuffer(bytes(plane), dtype=dtype).reshape(-1, plane.line_size // size)
        planes.append(rows[: frame.height, : frame.width])
    order = [2, 0, 1] + ([3] if len(planes) == 4 else [])  # planes are G, B, R(, A)
    return np.dstack([planes[i] for i in order]).astype(np.float32)


def read_rgb(path: str | os.PathLike[str], error: type[Exception] = MediaError) -> np.ndarray:
    """Decode an image file to RGB uint8 (H, W, 3); `error` (one line naming the file) if not."""
    p = Path(path)
    try:
        data = np.fromfile(str(p), dtype=np.uint8)
    except FileNotFoundError:
        raise error("file not found", p) from None
    except IsADirectoryError:
        raise error("is a directory, not an image", p) from None
    except PermissionError:
        raise error("permission denied", p) from None
    except OSError as e:
        raise error(f"can't read ({e.strerror})", p) from None
    if data.size == 0:
        raise error("empty file", p)
    if p.suffix.lower() == ".exr":
        rgb = _decode_av(p)
    else:
        bgr = _decode_cv2(data)
        if bgr is None:
            rgb = _decode_av(p)
        else:
            if bgr.ndim == 2:
                bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if rgb is None:
        raise error("not a readable image", p)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    return np.ascontiguousarray(to_uint8(rgb[..., :3]))


def read_plate(
    path: str | os.PathLike[str], error: type[Exception] = MediaError
) -> tuple[np.ndarray, np.ndarray | None]:
    """A sequence frame at its own depth: (RGB, alpha or None), uint8, uint16 or float32
    (EXR: scene-linear, values above 1 kept). Colour is not composited over anything: the
    alpha travels beside it. 8-bit pictures without alpha decode as `read_rgb` does."""
    p = Path(path)
    if p.suffix.lower() == ".exr":
        planes = _decode_av(p, linear=True)
        if planes is None:
            raise error("not a readable image", p)
    else:
        raw = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        if raw is None or (raw.dtype == np.uint8 and (raw.ndim == 2 or raw.shape[2] == 3)):
            return read_rgb(p, error), None
        if raw.ndim == 2:
            raw = cv2.cvtColor(raw, cv2.COLOR_GRAY2BGR)
        code = cv2.COLOR_BGRA2RGBA if raw.shape[2] == 4 else cv2.COLOR_BGR2RGB
        planes = cv2.cvtColor(raw, code)
    if planes.ndim == 2:
        planes = np.repeat(planes[..., None], 3, axis=2)
    alpha = np.ascontiguousarray(planes[..., 3]) if planes.shape[2] == 4 else None
    return np.ascontiguousarray(planes[..., :3]), alpha


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """A style image as RGB uint8 (H, W, 3), upright (EXIF), alpha composited over white."""
    return read_rgb(path, error=StyleImageError)


def write_image(
    path: str | os.PathLike[str],
    rgb: np.ndarray,
    bit_depth: int = 8,
    alpha: np.ndarray | None = None,
) -> None:
    """Write an RGB picture atomically (temporary sibling + rename): a killed job never leaves
    a truncated frame. `rgb` is uint8 or float32 display values in [0, 1]; for EXR, float32
    is taken as scene-linear as it is, uint8 as sRGB (linearised). PNG/TIFF may be 16-bit;
    EXR is half-float. `alpha` (H, W) is written where the format holds it."""
    p = Path(path)
    tmp = temp_sibling(p)
    try:
        if p.suffix.lower() == ".exr":
            _write_exr(tmp, rgb, alpha)
        else:
            _write_cv2(tmp, p, rgb, bit_depth, alpha)
        os.replace(tmp, p)
    except BaseException:
        remove_quietly(tmp)
        raise


def to_uint16(values: np.ndarray) -> np.ndarray:
    """uint8/uint16/float values as uint16 (8-bit scaled by 257, float clipped to [0, 1] and
    rounded)."""
    if values.dtype == np.uint16:
        return values
    if values.dtype == np.uint8:
        return values.astype(np.uint16) * np.uint16(257)
    out = np.clip(values.astype(np.float32, copy=False), 0.0, 1.0) * np.float32(65535)
    return np.rint(out, out=out).astype(np.uint16)


def _at_depth(values: np.ndarray, bit_depth: int) -> np.ndarray:
    """uint8/uint16/float values as the integer type of `bit_depth` (rounded, clipped)."""
    return to_uint16(values) if bit_depth == 16 else to_uint8(values)


def _write_cv2(
    tmp: Path, p: Path, rgb: np.ndarray, bit_depth: int, alpha: np.ndarray | None
) -> None:
    holds_alpha = p.suffix.lower() in (".png", ".tif", ".tiff", ".webp")
    planes = [rgb[..., 2], rgb[..., 1], rgb[..., 0]]
    if alpha is not None and holds_alpha:
        planes.append(alpha)
    if p.suffix.lower() in (".jpg", ".jpeg", ".bmp", ".webp"):
        bit_depth = 8
    image = np.dstack([_at_depth(np.asarray(c), bit_depth) for c in planes])
    if not cv2.imwrite(str(tmp), image):
        raise MediaError("could not write image", p)


def _write_exr(path: Path, rgb: np.ndarray, alpha: np.ndarray | None = None) -> None:
    if rgb.dtype == np.uint8:
        linear = srgb_to_linear(rgb.astype(np.float32) / 255.0)
    else:
        linear = rgb.astype(np.float32, copy=False)
    fmt = "gbrpf32le"
    if alpha is not None:
        a = alpha.astype(np.float32)
        if alpha.dtype != np.float32:
            a /= float(np.iinfo(alpha.dtype).max)
        linear = np.dstack([linear, a])
        fmt = "gbrapf32le"
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(linear), format=fmt, channel_last=True)
    cc = av.CodecContext.create("exr", "w")
    cc.width, cc.height = rgb.shape[1], rgb.shape[0]
    cc.pix_fmt = fmt
    cc.time_base = Fraction(1, 25)
    cc.options = {"format": "half", "compression": "zip16"}
    frame.pts = 0
    packets = cc.encode(frame) + cc.encode(None)
    with open(path, "wb") as f:
        for packet in packets:
            f.write(bytes(packet))
