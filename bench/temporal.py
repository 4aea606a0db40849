"""Temporal consistency benchmark: render one clip with --temporal off, loss-only, warm and carry,
then score them side by side in one pass (one flow computation; `vidstyle eval`).

    python bench/temporal.py samples/bigbuckbunny.mp4 samples/starry_night.jpg --preset draft

Prints JSON: per mode the adaptation and render time, warping error (absolute, x input's own,
x off), style ratio and content distance; and whether issue 3's targets hold
for warm and carry (<= off/3, <= 3x input, style distance <= 1.1x off's). carry reuses the
off model (same training), so it costs no second adaptation.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from vidstyle.config import load_settings
from vidstyle.jobs import RunOptions, run_one
from vidstyle.metrics.report import evaluate

MODES = ("off", "loss-only", "warm", "carry")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", type=Path)
    parser.add_argument("style", type=Path)
    parser.add_argument("--preset", default="draft")
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--max-side", type=int, default=None)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--out-dir", type=Path, default=Path("bench/out"))
    parser.add_argument("--every", type=int, default=4, help="style metrics on every k-th frame")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    results: dict = {
        "clip": str(args.clip),
        "style": str(args.style),
        "preset": args.preset,
        "modes": {},
    }
    outputs = {}
    for mode in args.modes.split(","):
        settings = load_settings(
            args.preset,
            args.config,
            # --max-side as on the command line: the output's size and the painting's
            {
                "render": {
                    "temporal": mode,
                    "max_side": args.max_side,
                    "output_max_side": args.max_side,
                }
            },
        )
        out = args.out_dir / f"{args.clip.stem}.{mode}.mp4"
        started = time.perf_counter()
        run = run_one(
            RunOptions(
                input=args.clip,
                style=args.style,
                output=out,
                settings=settings,
                progress=sys.stderr.isatty(),
                overwrite=True,
            )
        )
        results["modes"][mode] = {
            "adapt_seconds": round(run.adapted_seconds, 1) if run.adapted_seconds else "cached",
            "render_fps": round(run.stats.fps, 2),
            "wall_seconds": round(time.perf_counter() - started, 1),
        }
        outputs[mode] = out
    report = evaluate(
        args.clip, outputs, args.style, every=args.every, progress=sys.stderr.isatty()
    )
    results["input_warping_error"] = report["input_warping_error"]
    results["cuts"] = report["cuts"]
    for mode, entry in report["outputs"].items():
        results["modes"][mode].update(
            warping_error=entry["warping_error"],
            warping_x_input=round(entry["warping_error_vs_input"], 2),
            style_ratio=round(entry["style_ratio"], 3),
            style_distance=entry["style_distance"],
            content_distance=round(entry["content_distance"], 3),
        )
    modes = results["modes"]
    if "off" in modes:
        off = modes["off"]
        results["targets"] = {
            mode: {
                "warping_x_off": round(m["warping_error"] / off["warping_error"], 3),
                "le_third_of_off": m["warping_error"] <= off["warping_error"] / 3,
                "le_3x_input": m["warping_x_input"] <= 3,
                "style_distance_x_off": round(m["style_distance"] / off["style_distance"], 3),
                "style_within_10pct_of_off": m["style_distance"] <= 1.1 * off["style_distance"],
            }
            for mode, m in modes.items()
            if mode in ("warm", "carry")
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
