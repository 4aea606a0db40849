"""Two or more meta-learned starts side by side, adapted the same way on held-out styles.

    python bench/meta_starts.py --start vidstyle/models/weights/meta-slim.safetensors \
        --start scratch/meta2/start.safetensors --steps 0 40 --seeds 2 > R.json

Decides whether a newer start is worth shipping. For every held-out style that
bench/meta.py has a random-400 baseline for (its style loss is the target), each start is
adapted with the draft preset's network, crops and losses under the given [adapt] settings
(without --config: the default preset's cosine schedule from 0.06, and draft's colour weight, 0;
a --config TOML replaces that protocol, e.g. `[adapt] meta_schedule = "cosine"`,
`meta_affine_lr = 0.06`, `colour_weight = 0.05` for the default preset's) for each step
count, once per seed (adaptation at high rates is noisy: one run per setting misleads).
Scores are bench/meta.py's: 8 fixed full frames, style loss relative to random-400's, content
loss, colour distance.
Prints JSON: per style, start and step count the runs' scores, and bench/meta_starts_summary.py's
summary against issue 14's targets.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

from meta import bench_setup, heldout_with_targets  # bench/meta.py, beside this script
from meta_starts_summary import summarise

from vidstyle.adapt.adapt import initial_network
from vidstyle.adapt.data import RunSampler
from vidstyle.adapt.trainer import train_stylenet
from vidstyle.config import load_settings
from vidstyle.models.meta_start import load_meta_start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=Path, action="append", required=True)
    parser.add_argument("--steps", type=int, nargs="+", default=[0, 40])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--corpus", type=Path, default=Path("scratch/corpus"))
    parser.add_argument("--clip", type=Path, default=Path("samples/bigbuckbunny.mp4"))
    parser.add_argument("--baselines", type=Path, default=Path("bench/results/meta_heldout.json"))
    parser.add_argument("--config", type=Path, help="TOML over the draft preset")
    parser.add_argument("--only", nargs="+", help="styles whose file name contains one of these")
    args = parser.parse_args()
    settings = load_settings("draft", args.config)
    if args.config is None:
        settings.adapt.meta_schedule, settings.adapt.meta_affine_lr = "cosine", 0.06
    a, side = settings.adapt, settings.render.max_side
    starts = {str(path): load_meta_start(path) for path in args.start}
    runtime, runs, vgg, frames = bench_setup(args.clip, settings)
    protocol = f"{a.meta_schedule} affine {a.meta_affine_lr:g} body {a.meta_body_lr:g}"
    protocol += f" colour {a.colour_weight:g}" if a.colour_weight else ""
    result: dict = {
        "protocol": protocol,
        "starts": {
            name: {"sha256": s.sha256, "steps": s.card.get("training", {}).get("steps")}
            for name, s in starts.items()
        },
        "styles": {},
    }
    for item, style, scorer, target in heldout_with_targets(
        args.corpus, args.baselines, vgg, frames, side, args.only
    ):
        row: dict = {}
        t0 = time.perf_counter()
        for name, start in starts.items():
            for steps in args.steps:
                scores = []
                for seed in range(args.seeds if steps else 1):
                    adapt = copy.deepcopy(a)
                    adapt.seed = a.seed + seed
                    net = initial_network(settings, style, start)[0]
                    if steps:
                        sampler = RunSampler(runs, adapt.crop, seed=adapt.seed)
                        train_stylenet(net, sampler, style, adapt, runtime, "off", steps=steps,
                                       from_meta=True)  # fmt: skip
                    score = scorer(net)[0]
                    scores.append(
                        {
                            "style_vs_random400": round(score["style"] / target, 3),
                            "content": round(score["content"], 3),
                            "colour": round(score["colour"], 2),
                        }
                    )
                row.setdefault(name, {})[str(steps)] = scores
        result["styles"][item.path.name] = row
        print(json.dumps({item.path.name: row, "seconds": round(time.perf_counter() - t0)}),
              file=sys.stderr, flush=True)  # fmt: skip
    result["summary"] = summarise(result, json.loads(args.baselines.read_text()))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
