"""Why the carry blend has two backends: the same blend with torch and with OpenCV, per frame.

    python bench/carry_blend.py --size 384x216 --threads 1

The carry blend (vidstyle/pipeline/contrast.py) takes torch tensors or numpy arrays. A CPU
render passes arrays (OpenCV), a CUDA render tensors on the GPU; this times both on this
machine's CPU (and the torch one on CUDA when there is a GPU) with the default settings' blend
(carry 0.94, fine band 0.85, contrast window 8 px, tone window 32 px). Prints JSON: ms a frame.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import cv2
import numpy as np
import torch

from vidstyle.config import RenderSettings
from vidstyle.pipeline.contrast import carry_blend


def per_call_ms(fn: Callable[[], object], repeat: int, sync: Callable[[], None]) -> float:
    fn()
    sync()
    best = float("inf")
    for _ in range(3):  # best of three rounds: a shared machine slows some of them
        started = time.perf_counter()
        for _ in range(repeat):
            fn()
        sync()
        best = min(best, (time.perf_counter() - started) / repeat)
    return round(best * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="384x216", help="WxH of the frames")
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    r = RenderSettings()
    blend = (r.carry, r.carry_sigma, r.carry_detail, r.carry_tone_sigma)
    rng = np.random.default_rng(0)
    paint, carried = (rng.random((height, width, 3), dtype=np.float32) for _ in range(2))
    mask = (rng.random((height, width)) > 0.2).astype(np.float32)

    def tensors(device: str) -> tuple[torch.Tensor, ...]:
        p, c = (torch.from_numpy(a).permute(2, 0, 1)[None].contiguous() for a in (paint, carried))
        return p.to(device), c.to(device), torch.from_numpy(mask)[None, None].to(device)

    result: dict = {"size": [width, height], "threads": args.threads}
    no_sync = lambda: None  # noqa: E731
    result["opencv_cpu_ms"] = per_call_ms(
        lambda: carry_blend(paint, carried, mask, *blend), args.repeat, no_sync
    )
    on_cpu = tensors("cpu")
    result["torch_cpu_ms"] = per_call_ms(lambda: carry_blend(*on_cpu, *blend), args.repeat, no_sync)
    if torch.cuda.is_available():
        on_gpu = tensors("cuda")
        result["torch_cuda_ms"] = per_call_ms(
            lambda: carry_blend(*on_gpu, *blend), args.repeat, torch.cuda.synchronize
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
