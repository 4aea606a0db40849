"""Merge bench/meta_starts.py results and score each start against issue 14's targets.

The parts may be halves of the held-out styles or separate step counts, each run on its core.

    python bench/meta_starts_summary.py A.json B.json > bench/results/meta_starts_N.json

Per start and step count, over the styles (each style's seeds averaged first): the median style
loss relative to random-400's, the share of styles at or under random-400's (after 40 steps
that is "10x fewer steps than random-400's 400"), and the median colour distance beside
random-400's median colour on the same styles (from bench/meta.py's --baselines file).

With --targets (bench/random_targets.py results for more seeds) each style's target becomes
the mean of bench/meta.py's seed-0 run and those seeds' runs, as the meta side is averaged over
its seeds; the ratios are rescaled to it and the summary is given for both targets. With
--replace the --targets runs alone are the target: random-400 trained under another protocol
(bench/random_targets.py --config, e.g. other crops) than bench/meta.py's run, to compare with
meta runs made under that same protocol.
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
        for name, row in part["styles"].items():  # halves of the styles, or of the step counts
            for start, per_steps in row.items():
                merged["styles"].setdefault(name, {}).setdefault(start, {}).update(per_steps)
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


def seed_mean_targets(baselines: dict, extra: list[dict], replace: bool = False) -> dict:
    """bench/meta.py's baselines with each style's random scores averaged over all seeds run,
    the seeds kept beside them (`random_seeds`); with `replace`, over the `extra` runs only."""
    out = {}
    for sha, entry in baselines.items():
        if "random" not in entry:
            continue
        seeds = [] if replace else [entry["random"]]
        seeds += [e[sha]["random"][s] for e in extra if sha in e for s in sorted(e[sha]["random"])]
        if not seeds:
            continue
        mean = {k: float(np.mean([r[k] for r in seeds])) for k in ("style", "content", "colour")}
        out[sha] = {"style": entry["style"], "random": mean, "random_seeds": seeds}
    return out


def retarget(merged: dict, baselines: dict, targets: dict) -> dict:
    """The same runs with every ratio taken against `targets` instead of `baselines`."""
    old = {v["style"]: v["random"]["style"] for v in baselines.values() if "random" in v}
    new = {v["style"]: v["random"]["style"] for v in targets.values()}
    out = json.loads(json.dumps(merged))
    for name, row in out["styles"].items():
        factor = old[name] / new[name]
        for per_steps in row.values():
            for runs in per_steps.values():
                for run in runs:
                    run["style_vs_random400"] = round(run["style_vs_random400"] * factor, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+")
    parser.add_argument("--baselines", type=Path, default=Path("bench/results/meta_heldout.json"))
    parser.add_argument("--targets", type=Path, nargs="+", help="bench/random_targets.py results")
    parser.add_argument(
        "--replace", action="store_true", help="the --targets runs alone are the target"
    )
    args = parser.parse_args()
    merged = merge(args.results)
    baselines = json.loads(args.baselines.read_text())
    merged["summary"] = summarise(merged, baselines)
    if args.targets:
        extra = [json.loads(p.read_text()) for p in args.targets]
        targets = seed_mean_targets(baselines, extra, args.replace)
        missing = sorted(set(merged["styles"]) - {v["style"] for v in targets.values()})
        if missing:
            raise SystemExit(f"--targets: no random-400 run for {', '.join(missing)}")
        retargeted = retarget(merged, baselines, targets)
        seeds = len(next(iter(targets.values()))["random_seeds"])
        which = "the --targets runs alone" if args.replace else "bench/meta.py's and --targets'"
        merged = {
            "targets": f"random-400 averaged over {seeds} seeds ({which})",
            "random400": {v["style"]: v for v in targets.values()},
            **retargeted,
            "summary": summarise(retargeted, targets),
            "summary_seed0_targets": merged["summary"],
        }
    print(json.dumps(merged, indent=1))


if __name__ == "__main__":
    main()
