"""Make the README's picture: consecutive frames of the input, a per-frame render and a
warm-started render, one row each.

    python bench/strip.py samples/bigbuckbunny.mp4 OFF.mp4 WARM.mp4 docs/images/strip.jpg --first 40
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from vidstyle.io import VideoReader


def row(path: Path, first: int, count: int, size: tuple[int, int]) -> np.ndarray:
    with VideoReader(path, size=size, start_index=first, end_index=first + count) as reader:
        frames = [f.rgb for f in reader]
    gap = np.full((size[1], 4, 3), 255, np.uint8)
    parts = [p for f in frames for p in (f, gap)][:-1]
    return np.concatenate(parts, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", type=Path, nargs="+", help="input, then renders")
    parser.add_argument("out", type=Path)
    parser.add_argument("--first", type=int, default=40)
    parser.add_argument("--count", type=int, default=4)
    parser.add_argument("--width", type=int, default=320, help="width of one frame")
    args = parser.parse_args()
    with VideoReader(args.videos[0]) as reader:
        w, h = reader.info.display_width, reader.info.display_height
    size = (args.width, round(args.width * h / w / 2) * 2)
    rows = [row(v, args.first, args.count, size) for v in args.videos]
    gap = np.full((4, rows[0].shape[1], 3), 255, np.uint8)
    sheet = np.concatenate([p for r in rows for p in (r, gap)][:-1], axis=0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    jpeg = args.out.suffix.lower() in (".jpg", ".jpeg")
    params = [cv2.IMWRITE_JPEG_QUALITY, 88] if jpeg else []
    cv2.imwrite(str(args.out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), params)
    print(args.out)


if __name__ == "__main__":
    main()
