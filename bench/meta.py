"""Meta-learned start vs training from scratch, on held-out styles (issue 14's benchmark).

    python bench/meta.py --corpus scratch/corpus --clip samples/bigbuckbunny.mp4

For every held-out style of the corpus (never seen in meta-training), with the draft preset's
network, crops, batch and loss weights, adapted on the same content clip:
- random-400: a random network trained for 400 steps exactly as `vidstyle adapt` trains one
  from scratch (one-cycle schedule), without the colour loss (as before it went in); its
  style loss is the style's *target*;
- meta: the meta-learned start with the style's predicted (gamma, beta), then adaptation as
  the product does it (gamma/beta at a high rate, body at a low one), scored at 0, 5, 10, 20,
  40, 80, 160 steps (and 400 if the target is still not reached).
Scores are on 8 fixed full frames of the clip (not training crops): the normalised Gram style
loss the training optimises, the content loss, and the colour distance (sliced Wasserstein in
CIE Lab, vidstyle.metrics.colour) of the paintings to the style image. Each style's result is
stored in --results as soon as it is done, so the benchmark resumes where it stopped (hours of
CPU in all). Prints JSON: per style and the summary against the issue's targets; --grid writes
a PNG: style | random-400 | 0 steps | the CPU default's steps.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from vidstyle.adapt.adapt import initial_network, style_tensor
from vidstyle.adapt.corpus import load_corpus
from vidstyle.adapt.data import RunSampler, content_runs
from vidstyle.adapt.trainer import TRAIN_STYLE_LAYERS, StyleTargets, train_stylenet
from vidstyle.config import load_settings
from vidstyle.io import fit_size, open_reader, probe
from vidstyle.metrics.colour import ColourDistance
from vidstyle.models.device import resolve_runtime
from vidstyle.models.losses import content_loss
from vidstyle.models.meta_start import load_start, shipped_path
from vidstyle.models.stylenet import StyleNet
from vidstyle.models.vgg import CONTENT_LAYER, VGG19Features

META_CHECKPOINTS = (0, 5, 10, 20, 40, 80, 160)
EVAL_FRAMES = 8


def eval_frames(clip: Path, side: int) -> torch.Tensor:
    info = probe(clip)
    size = fit_size(info.display_width, info.display_height, side)
    wanted = set(np.linspace(0, info.frame_count - 1, EVAL_FRAMES).round().astype(int).tolist())
    frames = []
    with open_reader(str(clip), size=size) as reader:
        for index, frame in enumerate(reader):
            if index in wanted:
                frames.append(torch.from_numpy(frame.rgb.copy()).permute(2, 0, 1))
    return torch.stack(frames).float() / 255


def bench_setup(clip: Path, settings):
    """What every held-out benchmark adapts and scores with, from the preset's settings: the
    CPU runtime, the clip's content runs at the work size, the loss VGG and the 8 eval frames."""
    a, side = settings.adapt, settings.render.max_side
    runtime = resolve_runtime("cpu", "auto")
    runs = content_runs([clip], max_side=side, runs=a.sample_runs, length=1, flow_max_side=side)
    vgg = VGG19Features((*TRAIN_STYLE_LAYERS, CONTENT_LAYER))
    return runtime, runs, vgg, eval_frames(clip, side)


class Scorer:
    """Style / content loss and colour distance of a network's paintings of the eval frames."""

    def __init__(self, vgg: VGG19Features, frames: torch.Tensor, style: torch.Tensor):
        self.vgg, self.frames = vgg, frames
        self.targets = StyleTargets(vgg, style)
        self.style_rgb = (style[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        with torch.no_grad():
            self.content = vgg(frames)[CONTENT_LAYER]

    @torch.no_grad()
    def __call__(self, net: StyleNet) -> tuple[dict, np.ndarray]:
        # Batch statistics over the eval frames stand in for the product's recalibration over
        # the footage; a copy, so the trained network's running statistics are untouched.
        painter = copy.deepcopy(net).train()
        out = painter(self.frames)
        feats = self.vgg(out)
        style = float(self.targets.loss(feats))
        content = float(content_loss(feats[CONTENT_LAYER], self.content))
        rgb = (out.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        colour = ColourDistance(self.style_rgb)
        for image in rgb:
            colour.update(image)
        return {"style": style, "content": content, "colour": colour.result()}, rgb[0]


def heldout_with_targets(
    corpus: Path, baselines: Path, vgg: VGG19Features, frames, side: int, only=None
):
    """The held-out styles that have a random-400 baseline in `baselines` (bench/meta.py's
    results), or those of them whose file name contains one of `only`: (corpus item, style
    tensor, its Scorer, the target style loss) for each."""
    known = json.loads(baselines.read_text())
    for item in load_corpus(corpus).styles("heldout"):
        target = known.get(item.sha256, {}).get("random", {}).get("style")
        wanted = not only or any(part in item.path.name for part in only)
        if target is not None and wanted:
            style = style_tensor(item.path, side)
            yield item, style, Scorer(vgg, frames, style), target


class Reached(Exception):
    """Raised from the step callback: the target is met, the rest of the run is not needed."""


def run_meta(make_net, make_sampler, style, settings, runtime, scorer, target, pictures):
    """Adapt from the meta start, scored after each checkpoint's number of steps; stop once
    the target is met. With constant learning rates one run is scored along the way (a run of
    N steps is the first N steps of a longer one); with a decaying schedule the schedule
    depends on the step count, so each count is its own run, as `--steps N` would do it."""
    if settings.meta_schedule != "constant":
        return _independent_runs(make_net, make_sampler, style, settings, runtime, scorer,
                                 target, pictures)  # fmt: skip
    net = make_net()
    sampler = make_sampler()
    scores = {0: scorer(net)}
    pictures[0] = scores[0][1]

    def on_step(step: int, _losses: dict) -> None:
        done = step + 1
        if done in META_CHECKPOINTS:
            scores[done] = scorer(net)
            pictures[done] = scores[done][1]
            if target is not None and scores[done][0]["style"] <= target and done >= 40:
                raise Reached

    with contextlib.suppress(Reached):
        train_stylenet(
            net,
            sampler,
            style,
            settings,
            runtime,
            "off",
            on_step,
            steps=META_CHECKPOINTS[-1],
            from_meta=True,
        )
    return {str(k): v[0] for k, v in scores.items()}


def _independent_runs(make_net, make_sampler, style, settings, runtime, scorer, target, pictures):
    net = make_net()
    scores = {0: scorer(net)}
    pictures[0] = scores[0][1]
    for steps in META_CHECKPOINTS[1:]:
        net = make_net()
        train_stylenet(net, make_sampler(), style, settings, runtime, "off", steps=steps,
                       from_meta=True)  # fmt: skip
        scores[steps] = scorer(net)
        pictures[steps] = scores[steps][1]
        if target is not None and scores[steps][0]["style"] <= target:
            break
    return {str(k): v[0] for k, v in scores.items()}


def steps_to(scores: dict, target: float) -> int | None:
    reached = [int(k) for k, v in scores.items() if v["style"] <= target]
    return min(reached) if reached else None


def summarise(results: dict, cpu_steps: int) -> dict:
    done = [r for r in results.values() if "random" in r and "meta" in r]
    if not done:
        return {"styles": 0}
    speedups, zero, colour_meta, colour_random = [], [], [], []
    for r in done:
        target = r["random"]["style"]
        first = steps_to(r["meta"], target)
        r["meta_steps_to_target"] = first
        # a start already at the target needs "0 steps": count it as 400x (no division by 0)
        speedups.append(400 / max(first, 1) if first is not None else 400 / 320)
        zero.append(r["meta"]["0"]["style"] / target)
        at = str(cpu_steps) if str(cpu_steps) in r["meta"] else max(r["meta"], key=int)
        colour_meta.append(r["meta"][at]["colour"])
        colour_random.append(r["random"]["colour"])
    speedups = np.array(speedups)
    return {
        "styles": len(done),
        "median_speedup": float(np.median(speedups)),
        "share_speedup_ge_5": float(np.mean(speedups >= 5)),
        "median_zero_step_style_vs_random400": float(np.median(zero)),
        "median_colour_meta_at_cpu_steps": float(np.median(colour_meta)),
        "median_colour_random400": float(np.median(colour_random)),
        "cpu_steps": cpu_steps,
        "targets": {
            "median_speedup_ge_10": bool(np.median(speedups) >= 10),
            "share_ge_5x_at_least_90pct": bool(np.mean(speedups >= 5) >= 0.9),
            "zero_steps_within_2x": bool(np.median(zero) <= 2),
            "colour_no_worse": bool(np.median(colour_meta) <= np.median(colour_random)),
        },
    }


def write_grid(results: dict, pictures: Path, path: Path, cpu_steps: int) -> None:
    rows = []
    for sha in results:
        names = [f"{sha[:12]}_{k}.png" for k in ("style", "random", "meta0", f"meta{cpu_steps}")]
        if all((pictures / n).is_file() for n in names):
            tiles = [cv2.imread(str(pictures / n)) for n in names]
            tiles = [cv2.resize(t, (192, round(192 * t.shape[0] / t.shape[1]))) for t in tiles]
            h = max(t.shape[0] for t in tiles)
            rows.append(
                np.hstack([cv2.copyMakeBorder(t, 0, h - t.shape[0], 0, 4, 0) for t in tiles])
            )
    if rows:
        width = max(r.shape[1] for r in rows)
        rows = [cv2.copyMakeBorder(r, 0, 4, 0, width - r.shape[1], 0) for r in rows]
        header = np.zeros((24, width, 3), np.uint8)
        for column, label in enumerate(("style", "random-400", "0 steps", f"{cpu_steps} steps")):
            cv2.putText(header, label, (column * 196 + 6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        (255, 255, 255), 1, cv2.LINE_AA)  # fmt: skip
        cv2.imwrite(str(path), np.vstack([header, *rows]))


def save_picture(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("scratch/corpus"))
    parser.add_argument("--clip", type=Path, default=Path("samples/bigbuckbunny.mp4"))
    parser.add_argument("--results", type=Path, default=Path("bench/results/meta_heldout.json"))
    parser.add_argument("--grid", type=Path, default=Path("bench/results/meta_grid.png"))
    parser.add_argument("--pictures", type=Path, default=Path("bench/out/meta"))
    parser.add_argument("--limit", type=int, default=0, help="stop after this many new styles")
    parser.add_argument("--phase", choices=("random", "meta", "all"), default="all")
    parser.add_argument("--only", nargs="+", help="styles whose file name contains one of these")
    parser.add_argument(
        "--config", type=Path, help="TOML over the draft preset (e.g. another [adapt] schedule)"
    )
    parser.add_argument(
        "--card", action="store_true", help="write the summary into the shipped start's card"
    )
    args = parser.parse_args()
    settings = load_settings("draft", args.config)
    a, side = settings.adapt, settings.render.max_side
    random_settings = copy.deepcopy(settings)
    random_settings.adapt.start = "random"
    # the target stays what training from scratch reached before the colour loss went in (the
    # stored baselines in bench/results/meta_heldout.json were made so)
    random_settings.adapt.colour_weight = 0.0
    runtime, runs, vgg, frames = bench_setup(args.clip, settings)
    corpus = load_corpus(args.corpus)
    results = json.loads(args.results.read_text()) if args.results.is_file() else {}
    start_sha = load_start(a.meta_start).sha256 if args.phase != "random" else None
    # how the meta phase adapts: the preset's schedule and rates (results depend on them)
    protocol = f"{a.meta_schedule} affine {a.meta_affine_lr:g} body {a.meta_body_lr:g}"
    new = 0
    for item in corpus.styles("heldout"):
        if args.only and not any(part in item.path.name for part in args.only):
            continue
        entry = results.setdefault(item.sha256, {"style": item.path.name, "source": item.source})
        if start_sha and (entry.get("meta_start"), entry.get("meta_protocol")) != (
            start_sha,
            protocol,
        ):
            entry.pop("meta", None)  # scored against another start or schedule: score again
        todo = [p for p in ("random", "meta") if args.phase in (p, "all") and p not in entry]
        if not todo:
            continue
        if args.limit and new >= args.limit:
            break
        new += 1
        style = style_tensor(item.path, side)
        scorer = Scorer(vgg, frames, style)
        key = item.sha256[:12]
        save_picture(args.pictures / f"{key}_style.png", scorer.style_rgb)
        if "random" in todo:
            t0 = time.perf_counter()
            net = initial_network(random_settings, style)[0]
            train_stylenet(
                net, RunSampler(runs, a.crop, seed=a.seed), style, a, runtime, "off", steps=400
            )
            scores, picture = scorer(net)
            entry["random"] = {**scores, "seconds": round(time.perf_counter() - t0, 1)}
            save_picture(args.pictures / f"{key}_random.png", picture)
        if "meta" in todo:
            t0 = time.perf_counter()
            target = entry.get("random", {}).get("style")
            pictures: dict = {}
            entry["meta"] = run_meta(
                lambda style=style: initial_network(settings, style)[0],
                lambda: RunSampler(runs, a.crop, seed=a.seed),
                style,
                a,
                runtime,
                scorer,
                target,
                pictures,
            )
            entry["meta_start"] = start_sha
            entry["meta_protocol"] = protocol
            entry["meta_seconds"] = round(time.perf_counter() - t0, 1)
            for step, picture in pictures.items():
                save_picture(args.pictures / f"{key}_meta{step}.png", picture)
        print(json.dumps({item.path.name: entry}), file=sys.stderr, flush=True)
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(results, indent=1))
    cpu_steps = a.cpu_steps if a.cpu_steps >= 0 else a.steps
    summary = summarise(results, cpu_steps)
    args.results.write_text(json.dumps(results, indent=1))
    write_grid(results, args.pictures, args.grid, cpu_steps)
    if args.card and summary.get("styles"):
        card_path = shipped_path().with_suffix(".json")
        card = json.loads(card_path.read_text())
        card["heldout"] = {
            **summary,
            "clip": args.clip.name,
            "measured_with": "python bench/meta.py --card (bench/results/meta_heldout.json)",
        }
        card_path.write_text(json.dumps(card, indent=2, sort_keys=True))
    print(json.dumps({"summary": summary, "styles": results}, indent=1))


if __name__ == "__main__":
    main()
