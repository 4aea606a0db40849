"""A/B throughput of two checkouts of vidstyle on the same clip, runs alternating.

    git worktree add /tmp/before HEAD~3
    python bench/ab.py --before /tmp/before --after . --rounds 3 -- \
        samples/bigbuckbunny.mp4 --preset draft --max-side 384

Each round runs bench/throughput.py once from each checkout (its own code on PYTHONPATH, the
same interpreter), alternating so that a busy machine slows both alike. Prints JSON: every
run's fps, the median of each side and after/before.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path


def run_once(checkout: Path, args: list[str]) -> float:
    env = dict(os.environ, PYTHONPATH=str(checkout.resolve()))
    script = checkout / "bench" / "throughput.py"
    out = subprocess.run(
        [sys.executable, str(script), *args], env=env, check=True, capture_output=True, text=True
    ).stdout
    return float(json.loads(out)["fps"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("throughput_args", nargs=argparse.REMAINDER)
    ns = parser.parse_args()
    args = [a for a in ns.throughput_args if a != "--"]
    fps: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(ns.rounds):
        for side in ("before", "after"):
            fps[side].append(run_once(getattr(ns, side), args))
    medians = {side: statistics.median(values) for side, values in fps.items()}
    result = {
        "args": args,
        "before": str(ns.before),
        "after": str(ns.after),
        "fps": fps,
        "median_fps": medians,
        "after_over_before": round(medians["after"] / medians["before"], 3),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
