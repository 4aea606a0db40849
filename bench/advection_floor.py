"""How low can a stroke texture score on the warping error? Compare a render's E_warp with the
E_warp it would have if every frame were exactly the previous one moved along the flow.

    python bench/advection_floor.py samples/bigbuckbunny.mp4 bench/out/bigbuckbunny.carry.mp4

For each pair (t, t+1) of the output (at its own size, input resized to it), with flow and mask
as in vidstyle.metrics.warping: `measured` is the pair's E_t; `floor` is E_t with O_{t+1}
replaced by O_t advected into frame t+1 (bicubic, the carry's own warp). The floor is not 0: the
metric resamples O_{t+1} bilinearly, which at sub-pixel motion softens sharp strokes. Pairs across
hard cuts are left out. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from vidstyle.flow import DISFlow, bidirectional_flow, is_scene_cut, reliability_mask, warp
from vidstyle.io import VideoReader
from vidstyle.metrics.warping import pair_error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    flow = DISFlow("medium", max_side=None)
    measured, floor = [], []
    with VideoReader(args.output) as out_reader:
        size = out_reader.size
        with VideoReader(args.input, size=size) as in_reader:
            prev_in = prev_out = None
            for frame_in, frame_out in zip(in_reader, out_reader, strict=True):
                cur_in, cur_out = frame_in.rgb, frame_out.rgb.astype(np.float32) / 255
                if prev_in is not None:
                    fwd, bwd = bidirectional_flow(flow, prev_in, cur_in)
                    mask = reliability_mask(fwd, bwd, check_bounds=False)
                    if not is_scene_cut(prev_in, cur_in, mask=mask):
                        measured.append(pair_error(prev_out, cur_out, fwd, mask))
                        advected = np.clip(warp(prev_out, bwd, mode="bicubic"), 0, 1)
                        floor.append(pair_error(prev_out, advected, fwd, mask))
                prev_in, prev_out = cur_in, cur_out
    result = {
        "output": str(args.output),
        "size": list(size),
        "pairs": len(measured),
        "measured": float(np.mean(measured)),
        "advection_floor": float(np.mean(floor)),
    }
    result["floor_share"] = round(result["advection_floor"] / result["measured"], 3)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
