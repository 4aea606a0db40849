"""`vidstyle eval`: score one or more stylized videos of the same input in a single pass.

Flow is computed once on the input and shared by every output (it is the expensive part), so
`off`, `loss-only` and `warm` renders are compared with exactly the same flow and masks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from tqdm import tqdm

from vidstyle.errors import MediaError
from vidstyle.io import load_image, open_reader, probe
from vidstyle.metrics.perceptual import PerceptualDistance
from vidstyle.metrics.warping import MultiWarpingError


def evaluate(
    input_path: str | Path,
    outputs: Mapping[str, str | Path],
    style: str | Path | None = None,
    *,
    size: int = 384,
    every: int = 1,
    flow_size: int | None = None,
    skip_cuts: bool = True,
    device: str = "cpu",
    progress: bool = True,
) -> dict:
    """Warping error of the input and of each output; with `style`, style/content distances.

    `size`: long side for the perceptual distances; `flow_size`: long side for the warping error
    (None: the smallest long side among the input and the outputs, so a 384 px render is
    compared with the input's own floor at 384 px rather than upscaled); `every`: score the
    perceptual distances on every k-th frame.
    """
    input_path = Path(input_path)
    source_info = probe(input_path)
    count = source_info.frame_count
    long_sides = [max(source_info.display_width, source_info.display_height)]
    for name, path in outputs.items():
        info = probe(path)
        if info.frame_count != count:
            raise MediaError(
                f"output {name!r} has {info.frame_count} frames, the input has {count}", path
            )
        long_sides.append(max(info.display_width, info.display_height))
    if flow_size is None:
        flow_size = min(long_sides)
    warping = MultiWarpingError(size=flow_size, skip_cuts=skip_cuts)
    style_image = load_image(style) if style is not None else None
    perceptual = (
        {
            name: PerceptualDistance(style_image, size=size, device=device, every=every)
            for name in outputs
        }
        if style_image is not None
        else {}
    )
    readers = {name: open_reader(str(path)) for name, path in outputs.items()}
    source = open_reader(str(input_path))
    try:
        iterators = {name: iter(r) for name, r in readers.items()}
        for frame in tqdm(
            source, total=count, desc="evaluating", unit="frame", disable=not progress, leave=False
        ):
            current = {name: next(it).rgb for name, it in iterators.items()}
            warping.update(frame.rgb, current)
            for name, metric in perceptual.items():
                metric.update(frame.rgb, current[name])
    finally:
        source.close()
        for reader in readers.values():
            reader.close()
    results = warping.result()
    floor = results["input"].mean
    report: dict = {
        "input": str(input_path),
        "frames": count,
        "flow_size": list(results["input"].size or ()),
        "cuts": results["input"].cuts,
        "cut_pairs_skipped": skip_cuts,
        "outputs": {},
    }
    for name, path in outputs.items():
        entry = {
            "path": str(path),
            "warping_error": results[name].mean,
            "warping_error_vs_input": results[name].mean / floor if floor else math.nan,
        }
        if name in perceptual:
            entry.update(perceptual[name].result())
        report["outputs"][name] = entry
    report["input_warping_error"] = floor
    return report


def format_report(report: dict) -> str:
    """The short table `vidstyle eval` prints."""
    first = next(iter(report["outputs"].values()), {})
    rows = [
        ("input (floor)", report["input_warping_error"], 1.0, None, None, None),
    ]
    if "input_colour_distance" in first:
        rows[0] = (*rows[0][:5], first["input_colour_distance"])
    for name, entry in report["outputs"].items():
        rows.append(
            (
                name,
                entry["warping_error"],
                entry["warping_error_vs_input"],
                entry.get("style_ratio"),
                entry.get("content_distance"),
                entry.get("colour_distance"),
            )
        )
    width = max(len(r[0]) for r in rows)
    lines = [
        f"{'video':<{width}}  {'E_warp':>10}  {'x input':>7}  {'style ratio':>11}  {'content':>7}"
        f"  {'colour':>6}"
    ]
    for name, e, ratio, style, content, colour in rows:
        s = f"{style:11.3f}" if style is not None else f"{'-':>11}"
        c = f"{content:7.3f}" if content is not None else f"{'-':>7}"
        k = f"{colour:6.1f}" if colour is not None else f"{'-':>6}"
        lines.append(f"{name:<{width}}  {e:10.6f}  {ratio:7.2f}  {s}  {c}  {k}")
    cuts = report["cuts"]
    if cuts:
        how = "left out" if report["cut_pairs_skipped"] else "included"
        lines.append(f"scene cuts at frames {cuts} ({how} in E_warp)")
    lines.append(
        "style ratio = style distance of the output / of the input frames (lower = more "
        "stylized); content = relu4_2 distance (0 = unchanged); colour = sliced Wasserstein "
        "distance to the style image's Lab colours (0 = same palette)"
    )
    return "\n".join(lines)
