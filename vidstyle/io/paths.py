"""Output paths: atomic replacement and early writability checks.

A killed or failed job must never leave a half-written file under the name the user asked for,
so every output is written to a hidden sibling and renamed onto the final name only on success.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from vidstyle.errors import MediaError

#: What batch mode treats as a video file (lower-case suffixes).
VIDEO_SUFFIXES: frozenset[str] = frozenset(
    {
        ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mxf", ".mts", ".m2ts", ".ts",
        ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ogv", ".y4m",
    }
)  # fmt: skip

#: Still-image suffixes that can form an image sequence.
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr", ".webp", ".bmp"}
)

TMP_MARKER = ".vidstyle-tmp-"


def temp_sibling(final: Path) -> Path:
    """A hidden, unique name next to `final`, keeping its suffix so muxers/encoders guess the
    format from it (`.clip.mp4.vidstyle-tmp-ab12cd.mp4`)."""
    final = Path(final)
    token = secrets.token_hex(4)
    return final.with_name(f".{final.name}{TMP_MARKER}{token}{final.suffix}")


def remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary sibling of `final`; rename it onto `final` if the block succeeds,
    delete it if the block raises (including KeyboardInterrupt). `final` is untouched on failure.

    If the block succeeds without creating the temporary file, `final` is left alone."""
    final = Path(final)
    tmp = temp_sibling(final)
    try:
        yield tmp
    except BaseException:
        remove_quietly(tmp)
        raise
    if tmp.exists():
        os.replace(tmp, final)


def check_writable(path: str | os.PathLike[str]) -> None:
    """Fail early (before any decoding or training) if `path` can't be written."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise MediaError("output path is a directory", p)
    if not parent.exists():
        raise MediaError(f"output directory {parent} does not exist", p)
    if not parent.is_dir():
        raise MediaError(f"{parent} is not a directory", p)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise MediaError(f"output directory {parent} is not writable", p)
