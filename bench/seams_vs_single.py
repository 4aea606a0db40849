"""Farm seams against the same video rendered in one piece: warping error pair by pair.

A seam report's "window max" compares pairs near a seam with the clip's median pair, so a
fast-moving moment that happens to fall in a cross-fade window reads as a bad seam. Here every
frame pair of each farm output is divided by the same pair of the unchunked render (same model,
same settings): 1.0 everywhere means the chunks are invisible to this metric.

    python bench/seams_vs_single.py INPUT SINGLE.mp4 FARM.mp4 [FARM2.mp4 ...]

Prints JSON: per farm output, E_warp of both and the largest and median pair ratio (pairs
across hard cuts left out).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vidstyle.io import VideoReader, probe
from vidstyle.metrics.warping import WarpingError


def frames(path: Path) -> Iterator[np.ndarray]:
    """Streamed: the warping error takes all videos in lockstep, one frame at a time."""
    with VideoReader(path) as reader:
        for frame in reader:
            yield frame.rgb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path)
    parser.add_argument("single", type=Path)
    parser.add_argument("farm", type=Path, nargs="+")
    args = parser.parse_args()
    info = probe(args.single)
    size = (info.display_width, info.display_height)  # compared at the renders' size
    videos = {"single": frames(args.single), **{str(p): frames(p) for p in args.farm}}
    results = WarpingError.multi(frames(args.input), videos, size=size, skip_cuts=True)
    reference = np.asarray(results["single"].per_pair)
    report: dict = {"single": str(args.single), "single_warping_error": results["single"].mean}
    for path in args.farm:
        ratio = np.asarray(results[str(path)].per_pair) / np.maximum(reference, 1e-12)
        report[str(path)] = {
            "warping_error": results[str(path)].mean,
            "pair_ratio_max": round(float(ratio.max()), 3),
            "pair_ratio_median": round(float(np.median(ratio)), 3),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
