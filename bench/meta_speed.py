"""Meta-training speed on this machine's device, in steps per second: how to size chunks.

    python bench/meta_speed.py [--device auto] [--steps 40]

Why: meta-training takes hours on one CPU core (about 2.3 steps/s), and a lent GPU comes for
minutes; whether a GPU lease can do a session's worth of meta-training, and whether the
full-width network's start is within reach there, is a matter of its step rate. One step costs
the same whatever the pictures show, so the corpus here is synthetic (stripes and gradients at
the work size, in a temporary folder): nothing to gather or carry to a GPU machine.
Prints JSON: for the slim network with the draft preset's crops (two of 128 px) and with one
180 px crop, and for the full-width (`best`) network with two 256 px crops, the steps per
second after a few warm-up steps, and the device.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from vidstyle.adapt.corpus import load_corpus
from vidstyle.adapt.meta_train import MetaSettings, MetaTrainer
from vidstyle.config import load_settings
from vidstyle.models.device import resolve_runtime

WARMUP_STEPS = 5
#: (name, preset, crop, batch size): the cases timed
CASES = (
    ("slim, 2 x 128 px (draft)", "draft", 128, 2),
    ("slim, 1 x 180 px", "draft", 180, 1),
    ("full width, 2 x 256 px", "best", 256, 2),
)


def synthetic_corpus(root: Path, styles: int = 12, contents: int = 8) -> Path:
    """Stripes/checks styles and gradient scenes, 384x216, with a manifest like the real one's."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:216, 0:384]
    items = []
    for kind, count in (("style", styles), ("content", contents)):
        for i in range(count):
            if kind == "style":
                period = int(rng.integers(3, 12))
                mask = (x // period + y // period) % 2
                a, b = rng.integers(0, 256, size=(2, 3))
                image = np.where(mask[..., None] == 1, a, b)
            else:
                image = np.stack([x / 384, y / 216, 1 - x / 384], -1) * rng.integers(64, 256, 3)
            path = root / kind / f"{kind}{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), image.astype(np.uint8))
            split = "heldout" if kind == "style" and i == 0 else "train"
            items.append(
                {
                    "file": f"{kind}/{path.name}",
                    "kind": kind,
                    "split": split,
                    "source": "synthetic",
                    "licence": "generated",
                    "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                }
            )
    (root / "manifest.json").write_text(json.dumps({"version": 1, "items": items}))
    return root


def steps_per_second(trainer: MetaTrainer, steps: int, cuda: bool) -> float:
    for _ in range(WARMUP_STEPS):
        trainer.train_step()
    if cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()  # returns float losses: one sync a step, as in real training
    if cuda:
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per case")
    args = parser.parse_args()
    runtime = resolve_runtime(args.device)
    result: dict = {"device": runtime.describe(), "torch_threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        corpus = load_corpus(synthetic_corpus(Path(tmp) / "corpus"))
        for name, preset, crop, batch in CASES:
            settings = load_settings(preset)
            meta = MetaSettings(
                network=settings.network,
                work_side=384,
                crop=crop,
                batch_size=batch,
                checkpoint_seconds=1e9,
            )
            trainer = MetaTrainer(corpus, meta, runtime, Path(tmp) / name.replace(" ", "_"))
            rate = steps_per_second(trainer, args.steps, runtime.is_cuda)
            result[name] = {"steps_per_s": round(rate, 2), "steps_timed": args.steps}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
