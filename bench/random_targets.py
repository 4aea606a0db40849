"""Random-400 targets over several seeds, so the target is as well measured as the meta runs.

    python bench/random_targets.py --seed 1 --only brush-marks analog > /dev/null

bench/meta.py trains each held-out style from scratch once (seed 0) and calls that run's style
loss the target; bench/meta_starts.py then averages the meta start's runs over two seeds. One
run from scratch is just as noisy: the same code and seed gave Krita brush marks 0.0323 in the
stored run and 0.0385 pinned to one thread (float reductions in another order). This trains
random-400 exactly as bench/meta.py does (draft preset, one-cycle schedule, no colour loss,
scored on the same 8 frames) for another seed and stores each style's scores in --results as
soon as it is done (resumable; split styles across cores with --only and separate --results).
bench/meta_starts_summary.py --targets then uses, per style, the mean over bench/meta.py's run
and these. With --config (e.g. `[adapt] crop = 180`, `batch_size = 1`) random-400 is trained under
another protocol; `--targets F --replace` then makes these runs alone the target, for meta runs
made with the same --config.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

from meta import bench_setup, heldout_with_targets  # bench/meta.py, beside this script

from vidstyle.adapt.adapt import initial_network
from vidstyle.adapt.data import RunSampler
from vidstyle.adapt.trainer import train_stylenet
from vidstyle.config import load_settings
from vidstyle.models.store import atomic_write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True, help="bench/meta.py's run is seed 0")
    parser.add_argument("--corpus", type=Path, default=Path("scratch/corpus"))
    parser.add_argument("--clip", type=Path, default=Path("samples/bigbuckbunny.mp4"))
    parser.add_argument("--baselines", type=Path, default=Path("bench/results/meta_heldout.json"))
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--only", nargs="+", help="styles whose file name contains one of these")
    parser.add_argument("--config", type=Path, help="TOML over the draft preset (e.g. crop)")
    args = parser.parse_args()
    settings = load_settings("draft", args.config)
    settings.adapt.start, settings.adapt.colour_weight = "random", 0.0
    settings.adapt.seed = args.seed
    a, side = settings.adapt, settings.render.max_side
    runtime, runs, vgg, frames = bench_setup(args.clip, settings)
    results = json.loads(args.results.read_text()) if args.results.is_file() else {}
    for item, style, scorer, _target in heldout_with_targets(
        args.corpus, args.baselines, vgg, frames, side, args.only
    ):
        entry = results.setdefault(item.sha256, {"style": item.path.name, "random": {}})
        if str(args.seed) in entry["random"]:
            continue
        t0 = time.perf_counter()
        net = initial_network(copy.deepcopy(settings), style)[0]
        train_stylenet(net, RunSampler(runs, a.crop, seed=a.seed), style, a, runtime, "off",
                       steps=400)  # fmt: skip
        scores = scorer(net)[0]
        entry["random"][str(args.seed)] = {
            **scores,
            "seconds": round(time.perf_counter() - t0),
            "crop": a.crop,
            "batch_size": a.batch_size,
        }
        text = json.dumps(results, indent=1)
        atomic_write(args.results, lambda tmp, text=text: tmp.write_text(text))
        print(json.dumps({item.path.name: entry}), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
