"""Image-sequence names: printf patterns (`shot.%04d.png`), hash patterns (`shot.####.exr`)
and globs (`frames/*.png`). Kept apart from the readers so `probe` can dispatch without
import cycles."""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path

from vidstyle.io.paths import IMAGE_SUFFIXES

_PRINTF = re.compile(r"%(0?)(\d*)d")
_HASHES = re.compile(r"#+")
_GLOB_CHARS = re.compile(r"[*?\[]")


def _suffix(s: str) -> str:
    return os.path.splitext(s)[1].lower()


def is_image_sequence(path_or_pattern: str | os.PathLike[str]) -> bool:
    """True for a printf/hash pattern or a glob whose name ends in an image suffix."""
    s = os.fspath(path_or_pattern)
    name = os.path.basename(s)
    if _suffix(name) not in IMAGE_SUFFIXES:
        return False
    return bool(_PRINTF.search(name) or _HASHES.search(name) or _GLOB_CHARS.search(s))


@dataclass(frozen=True)
class NumberedPattern:
    """One frame-number field: `prefix` + number (zero-padded to `width`) + `suffix`."""

    directory: Path
    prefix: str
    width: int
    suffix: str

    def name(self, number: int) -> Path:
        num = f"{number:0{self.width}d}" if self.width > 0 else str(number)
        return self.directory / f"{self.prefix}{num}{self.suffix}"


def parse_numbered(pattern: str | os.PathLike[str]) -> NumberedPattern | None:
    """Parse the last printf (`%04d`, `%d`) or hash (`####`) field of the file name."""
    p = Path(os.fspath(pattern))
    name = p.name
    matches = [(m, "printf") for m in _PRINTF.finditer(name)]
    matches += [(m, "hash") for m in _HASHES.finditer(name)]
    if not matches:
        return None
    m, kind = max(matches, key=lambda mk: mk[0].start())
    if kind == "printf":
        width = int(m.group(2)) if m.group(2) else 0
    else:
        width = len(m.group(0)) if len(m.group(0)) > 1 else 0
    return NumberedPattern(p.parent, name[: m.start()], width, name[m.end() :])


def list_sequence(pattern: str | os.PathLike[str]) -> list[tuple[int | None, Path]]:
    """The existing files of a sequence, sorted by frame number (numbered patterns) or
    naturally by name (globs), each with its frame number when it has one."""
    s = os.fspath(pattern)
    numbered = parse_numbered(s)
    if numbered is not None and not _GLOB_CHARS.search(s):
        d = numbered.directory if str(numbered.directory) else Path(".")
        if not d.is_dir():
            return []
        rx = re.compile(
            re.escape(numbered.prefix)
            + (r"(-?\d+)" if numbered.width == 0 else rf"(-?\d{{{numbered.width},}})")
            + re.escape(numbered.suffix)
            + r"\Z"
        )
        found = []
        for entry in os.scandir(d):
            m = rx.match(entry.name)
            if m and entry.is_file():
                found.append((int(m.group(1)), d / entry.name))
        found.sort(key=lambda t: t[0])
        return found
    files = [Path(f) for f in glob.glob(s) if os.path.isfile(f)]
    files.sort(key=lambda f: _natural_key(f.name))
    return [(_trailing_number(f.name), f) for f in files]


def _natural_key(name: str) -> list[object]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _trailing_number(name: str) -> int | None:
    m = re.search(r"(\d+)\D*\Z", name)
    return int(m.group(1)) if m else None
