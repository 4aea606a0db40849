"""Merge bench/meta_starts.py results (e.g. halves of the held-out styles run on separate cores)
and score each start against issue 14's targets.

    python bench/meta_starts_summary.py A.json B.json > bench/results/meta_starts_N.json

Per start and step count, over the styles (each style's seeds averaged first): the median style
loss relative to random-400's, the share of styles at or under random-400's (after 40 steps
that is "10x fewer steps than random-400's 400"), and the median colour distance beside
random-400's median colour on the same styles (from bench/meta.py's --baselines file).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def merge(paths: list[Path]) -> dict:
    merged: dict = {"styles": {}}
    for path in paths:
        part = json.loads(path.read_text())
        for key in ("protocol", "starts"):
            if merged.setdefault(key, part[key]) != part[key]:
                raise SystemExit(f"{path}: another {key} than the first file's")
        merged["styles"] |= part["styles"]
    return merged


def summarise(merged: dict, baselines: dict) -> dict:
    random_colour = {v["style"]: v["random"]["colour"] for v in baselines.values() if "random" in v}
    rows = merged["styles"]
    summary = {}
    for start in merged["starts"]:
        per_steps = {}
        for steps in next(iter(rows.values()))[start]:
            ratio = [
                np.mean([r["style_vs_random400"] for r in row[start][steps]])
                for row in rows.values()
            ]
            colour = [np.mean([r["colour"] for r in row[start][steps]]) for row in rows.values()]
            per_steps[steps] = {
                "median_style_vs_random400": round(float(np.median(ratio)), 3),
                "share_at_or_under_random400": round(float(np.mean(np.array(ratio) <= 1.0)), 3),
                "median_colour": round(float(np.median(colour)), 2),
            }
        summary[start] = per_steps
    return {
        "styles": len(rows),
        "median_colour_random400": round(float(np.median([random_colour[n] for n in rows])), 2),
        "by_start": summary,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+")
    parser.add_argument("--baselines", type=Path, default=Path("bench/results/meta_heldout.json"))
    args = parser.parse_args()
    merged = merge(args.results)
    merged["summary"] = summarise(merged, json.loads(args.baselines.read_text()))
    print(json.dumps(merged, indent=1))


if __name__ == "__main__":
    main()
