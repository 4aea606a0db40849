"""Contact sheets: a few input frames above the same frames stylized, in one JPEG to glance at."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vidstyle.io import open_reader

THUMB_SIDE = 384


def _frames_at(path: str | Path, indices: list[int], size: tuple[int, int]) -> list[np.ndarray]:
    wanted = set(indices)
    found: dict[int, np.ndarray] = {}
    with open_reader(str(path), size=size) as reader:
        for frame in reader:
            if frame.index in wanted:
                found[frame.index] = frame.rgb
            if len(found) == len(wanted):
                break
    return [found[i] for i in indices if i in found]


def contact_sheet(
    source: str | Path, result: str | Path, count: int = 4, source_start: int = 0
) -> np.ndarray:
    """RGB image: `count` evenly spaced source frames (top row) and result frames (bottom).
    `source_start`: the source frame that became the result's first (a --start render)."""
    with open_reader(str(result)) as reader:
        info = reader.info
    frames = info.frame_count
    indices = sorted({round(i) for i in np.linspace(0, max(0, frames - 1), min(count, frames))})
    scale = THUMB_SIDE / max(info.display_width, info.display_height)
    size = (
        max(2, round(info.display_width * scale) // 2 * 2),
        max(2, round(info.display_height * scale) // 2 * 2),
    )
    top = _frames_at(source, [i + source_start for i in indices], size)
    bottom = _frames_at(result, indices, size)
    n = min(len(top), len(bottom))
    gap = np.full((size[1], 4, 3), 255, np.uint8)

    def row(images: list[np.ndarray]) -> np.ndarray:
        parts = []
        for image in images[:n]:
            parts += [image, gap]
        return np.concatenate(parts[:-1], axis=1)

    return np.concatenate(
        [row(top), np.full((4, row(top).shape[1], 3), 255, np.uint8), row(bottom)], axis=0
    )


def write_preview(
    source: str | Path, result: str | Path, path: Path | None = None, source_start: int = 0
) -> Path:
    """Write the contact sheet beside the result (OUT.preview.jpg) and return its path."""
    path = path or Path(str(result)).with_suffix(".preview.jpg")
    sheet = contact_sheet(source, result, source_start=source_start)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path
