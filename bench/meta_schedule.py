"""Learning-rate schedules for the few-step adaptation from the meta-learned start.

    python bench/meta_schedule.py --corpus scratch/corpus > bench/results/meta_schedule.json

On the held-out styles that bench/meta.py has a random-400 baseline for (its style loss is the
target), adapts the shipped start with the draft preset's network, crops and losses for 20 and
40 steps under: a constant rate (gamma/beta 0.03), cosine decay from 0.03, cosine decay from
0.06 (body 1e-3 in all; each run its own, as `--steps N` runs it). Prints JSON: per style and
setting the style loss relative to the target, content and colour distance.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import numpy as np
from meta import bench_setup, heldout_with_targets  # bench/meta.py, beside this script

from vidstyle.adapt.adapt import initial_network
from vidstyle.adapt.data import RunSampler
from vidstyle.adapt.trainer import train_stylenet
from vidstyle.config import load_settings

VARIANTS = (("constant", 0.03), ("cosine", 0.03), ("cosine", 0.06))
STEPS = (20, 40)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("scratch/corpus"))
    parser.add_argument("--clip", type=Path, default=Path("samples/bigbuckbunny.mp4"))
    parser.add_argument("--baselines", type=Path, default=Path("bench/results/meta_heldout.json"))
    args = parser.parse_args()
    settings = load_settings("draft")
    a, side = settings.adapt, settings.render.max_side
    runtime, runs, vgg, frames = bench_setup(args.clip, settings)
    result: dict = {"styles": {}}
    for item, style, scorer, target in heldout_with_targets(
        args.corpus, args.baselines, vgg, frames, side
    ):
        row = {}
        for schedule, affine in VARIANTS:
            for steps in STEPS:
                adapt = copy.deepcopy(a)
                adapt.meta_schedule, adapt.meta_affine_lr = schedule, affine
                net = initial_network(settings, style)[0]
                train_stylenet(net, RunSampler(runs, a.crop, seed=a.seed), style, adapt,
                               runtime, "off", steps=steps, from_meta=True)  # fmt: skip
                scores = scorer(net)[0]
                row[f"{schedule} {affine:g} x{steps}"] = {
                    "style_vs_random400": round(scores["style"] / target, 3),
                    "content": round(scores["content"], 3),
                    "colour": round(scores["colour"], 2),
                }
        result["styles"][item.path.name] = row
        print(json.dumps({item.path.name: row}), file=sys.stderr, flush=True)
    names = [f"{s} {lr:g} x{n}" for s, lr in VARIANTS for n in STEPS]
    medians = {}
    for name in names:
        values = [r[name]["style_vs_random400"] for r in result["styles"].values()]
        medians[name] = round(float(np.median(values)), 2)
    result["median_style_vs_random400"] = medians
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
