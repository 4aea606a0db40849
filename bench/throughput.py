"""Throughput benchmark: the real pipeline on a clip, and optionally the naive loop beside it.

    python bench/throughput.py samples/bigbuckbunny.mp4 --preset draft --max-side 384 --naive

Prints JSON: end-to-end fps, busy-time fps of each stage (decode, flow, network, encode), peak
RSS, peak GPU memory, the device; with --naive, the same work done the naive way in the same run
(decode -> flow -> stylize one frame -> encode, one after the other, same model and precision)
and the ratio; with --naive-fp32 also a naive loop as most tools write it (fp32, NCHW, no fused
batch norm). Speed does not depend on the weights, so by default the network is the preset's
architecture with fresh weights (no adaptation); --model uses a real adapted model.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vidstyle.adapt import network_config
from vidstyle.config import RECURRENT_MODES, load_settings
from vidstyle.flow import link_to_previous, make_flow, shrink
from vidstyle.io import VideoReader, VideoWriter, probe, writer_options
from vidstyle.models.device import resolve_runtime
from vidstyle.models.store import load_model
from vidstyle.models.stylenet import StyleNet
from vidstyle.pipeline.engine import render
from vidstyle.pipeline.job import RenderJob, lane_count, work_size
from vidstyle.pipeline.span import Span
from vidstyle.pipeline.stylizer import Stylizer


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_net(settings, model: Path | None) -> StyleNet:
    if model is not None:
        return load_model(model)[0]
    torch.manual_seed(0)
    return StyleNet(network_config(settings)).eval()


def naive_writer(out: Path, size: tuple[int, int], info, settings) -> VideoWriter:
    """The encoder both naive loops use: the pipeline's settings, no background thread."""
    return VideoWriter(out, **writer_options(size, info, settings.encode))


def naive_loop(clip: Path, out: Path, stylizer: Stylizer, settings, frames: int | None) -> float:
    """decode -> (flow) -> stylize -> encode, strictly one after the other. Returns fps."""
    info = probe(clip)
    size = work_size(info.display_width, info.display_height, settings.render.max_side)
    flow = make_flow(settings.render.flow, max_side=None)
    temporal = settings.render.temporal
    chained = temporal in RECURRENT_MODES
    started = time.perf_counter()
    count = 0
    with (
        VideoReader(clip, size=size, end_index=frames) as reader,
        naive_writer(out, size, info, settings) as writer,
    ):
        previous_small = previous = None
        for frame in reader:
            x = stylizer.upload([frame.rgb])
            small = shrink(frame.rgb, settings.render.flow_max_side)
            link = None
            if chained and previous is not None:
                link = link_to_previous(flow, small, previous_small)
                link = None if link.cut else link
            if temporal == "carry":
                raw = stylizer.network(x)
                if link is not None:
                    raw = stylizer.carry(raw, previous, link)
            elif link is not None:
                raw = stylizer.network(x, *stylizer.warm_inputs(previous, link))
            else:
                raw = stylizer.network(x)
            previous, previous_small = raw, small
            writer.write(stylizer.download(stylizer.finish(raw, x))[0], frame.pts)
            count += 1
    return count / (time.perf_counter() - started)


def naive_fp32_loop(clip: Path, out: Path, net: StyleNet, settings, frames: int | None) -> float:
    """The loop most per-frame tools run: fp32 eager model, NCHW, no fusion, no warm start."""
    info = probe(clip)
    size = work_size(info.display_width, info.display_height, settings.render.max_side)
    net = net.eval()
    started = time.perf_counter()
    count = 0
    with (
        torch.no_grad(),
        VideoReader(clip, size=size, end_index=frames) as reader,
        naive_writer(out, size, info, settings) as writer,
    ):
        for frame in reader:
            x = torch.from_numpy(frame.rgb).permute(2, 0, 1)[None].float() / 255
            y = net(x)[0].permute(1, 2, 0).mul(255).round().clamp(0, 255).byte().numpy()
            writer.write(np.ascontiguousarray(y), frame.pts)
            count += 1
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", type=Path)
    parser.add_argument("--preset", default="draft")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--model", type=Path, help="adapted model (default: fresh weights)")
    parser.add_argument("--max-side", type=int)
    parser.add_argument("--temporal", default=None)
    parser.add_argument("--lanes", type=int, default=None, help="warm chains side by side")
    parser.add_argument("--device", default=None)
    parser.add_argument("--precision", default=None)
    parser.add_argument("--frames", type=int, help="only the first N frames")
    parser.add_argument("--naive", action="store_true", help="also time the naive loop")
    parser.add_argument("--naive-fp32", action="store_true", help="also time a plain fp32 loop")
    parser.add_argument("--repeat", type=int, default=1, help="alternate runs, report the best")
    args = parser.parse_args()
    settings = load_settings(
        args.preset,
        args.config,
        {
            "render": {
                "max_side": args.max_side,
                "temporal": args.temporal,
                "device": args.device,
                "precision": args.precision,
                "lanes": args.lanes,
            }
        },
    )
    runtime = resolve_runtime(settings.render.device, settings.render.precision)
    net = make_net(settings, args.model)
    stylizer = Stylizer(make_net(settings, args.model), runtime, settings.render)
    progress = sys.stderr.isatty()
    frames = min(args.frames or 1 << 62, probe(args.clip).frame_count)
    result: dict = {
        "clip": str(args.clip),
        "preset": settings.preset,
        "temporal": settings.render.temporal,
        "device": runtime.describe(),
        "torch_threads": torch.get_num_threads(),
        "lanes": lane_count(settings.render, runtime.is_cuda, frames),
        "network": [*list(settings.network.channels), settings.network.residual_blocks],
    }
    with tempfile.TemporaryDirectory() as tmp:
        best: dict = {}
        for _ in range(args.repeat):
            if runtime.is_cuda:
                torch.cuda.reset_peak_memory_stats()
            out = Path(tmp) / "pipeline.mp4"
            job = RenderJob(args.clip, out, settings, frames=Span(0, frames), progress=progress)
            stats = render(job, stylizer)
            if not best or stats.fps > best["fps"]:
                best = stats.to_dict()
            if args.naive:
                fps = naive_loop(
                    args.clip, Path(tmp) / "naive.mp4", stylizer, settings, args.frames
                )
                result["naive_fps"] = max(result.get("naive_fps", 0), round(fps, 2))
            if args.naive_fp32:
                fps = naive_fp32_loop(args.clip, Path(tmp) / "fp32.mp4", net, settings, args.frames)
                result["naive_fp32_fps"] = max(result.get("naive_fp32_fps", 0), round(fps, 2))
        result["pipeline"] = best
        result["fps"] = best["fps"]
        for key in ("naive_fps", "naive_fp32_fps"):
            if key in result:
                result[key.replace("_fps", "_speedup")] = round(best["fps"] / result[key], 2)
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    if runtime.is_cuda:
        result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
