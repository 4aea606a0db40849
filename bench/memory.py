"""Memory stays flat with video length: peak RSS of a 60 s render vs a 10 s render.

    python bench/memory.py samples/bigbuckbunny.mp4 --max-side 384

Builds a 10 s and a 60 s clip by looping real footage (re-encoded once, audio-free), then runs
bench/throughput.py on each in its own process (so each peak RSS is that render's alone) and
prints both JSON results and the ratio of peak RSS (issue 4's target: within 10%).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

from vidstyle.io import VideoReader, VideoWriter, fit_size, probe


def looped_clip(
    source: Path, seconds: float, out: Path, max_side: int, size: tuple[int, int] | None = None
) -> Path:
    """`seconds` of `source` played forwards and backwards (no jump at the loop point), at
    `size` if given (upscaled too: bench/gpu.sh makes its 1080p clip this way)."""
    info = probe(source)
    size = size or fit_size(info.display_width, info.display_height, max_side)
    with VideoReader(source, size=size) as reader:
        frames = [f.rgb for f in reader]
    frames = frames + frames[::-1]
    rate = info.rate or Fraction(25)
    total = round(seconds * rate)
    with VideoWriter(
        out, width=size[0], height=size[1], rate=rate, time_base=1 / rate, preset="veryfast"
    ) as writer:
        for i in range(total):
            writer.write(frames[i % len(frames)], i)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", type=Path)
    parser.add_argument("--max-side", type=int, default=384)
    parser.add_argument("--preset", default="draft")
    parser.add_argument("--temporal", default="warm")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in (10, 60):
            clip = looped_clip(args.clip, seconds, Path(tmp) / f"{seconds}s.mp4", args.max_side)
            run = subprocess.run(
                [
                    sys.executable,
                    str(Path(__file__).with_name("throughput.py")),
                    str(clip),
                    "--preset",
                    args.preset,
                    "--max-side",
                    str(args.max_side),
                    "--temporal",
                    args.temporal,
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            data = json.loads(run.stdout)
            results[f"{seconds}s"] = {
                "frames": data["pipeline"]["frames"],
                "fps": data["fps"],
                "peak_rss_mb": data["peak_rss_mb"],
            }
    results["peak_rss_ratio_60s_vs_10s"] = round(
        results["60s"]["peak_rss_mb"] / results["10s"]["peak_rss_mb"], 3
    )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
