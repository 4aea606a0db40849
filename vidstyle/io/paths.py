"""Output paths: atomic replacement and early writability checks.

A killed or failed job must never leave a half-written file under the name the user asked for,
so every output is written to a hidden sibling and renamed onto the final name only on success.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time
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


#: When this process started: a temporary older than that belongs to no job still running here.
PROCESS_STARTED = time.time()


def stale_temporaries(final: str | os.PathLike[str], before: float | None = None) -> list[Path]:
    """Temporaries of `final` (files or folders named `.NAME.vidstyle-tmp-...`) last written
    before `before` (default: this process's start): what a killed run left behind. A run still
    writing one keeps touching it, so it is newer."""
    final = Path(final)
    parent = final.parent if str(final.parent) else Path(".")
    return _stale(parent, f".{final.name}{TMP_MARKER}", before)


def _stale(parent: Path, prefix: str, before: float | None) -> list[Path]:
    cutoff = PROCESS_STARTED if before is None else before
    try:
        entries = [e for e in parent.iterdir() if e.name.startswith(prefix)]
    except OSError:
        return []
    entries = [e for e in entries if TMP_MARKER in e.name]
    stale = []
    for entry in entries:
        try:
            if entry.lstat().st_mtime < cutoff:
                stale.append(entry)
        except OSError:
            continue
    return stale


def remove_stale(final: str | os.PathLike[str], before: float | None = None) -> list[Path]:
    """Remove what `stale_temporaries` finds; returns what was removed."""
    return _remove(stale_temporaries(final, before))


def remove_stale_matching(
    parent: str | os.PathLike[str], prefix: str, before: float | None = None
) -> list[Path]:
    """Remove stale temporaries in `parent` whose names start with `prefix` (the frames of an
    image sequence: `.shot.` matches `.shot.0007.png.vidstyle-tmp-...`)."""
    return _remove(_stale(Path(parent), prefix, before))


def _remove(entries: list[Path]) -> list[Path]:
    removed = []
    for entry in entries:
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                os.unlink(entry)
        except OSError:
            continue
        removed.append(entry)
    return removed


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
