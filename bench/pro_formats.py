"""What the deep frame path costs: the same 1080p footage as 8-bit H.264, 10-bit ProRes 422 HQ
and 10-bit HDR10-tagged ProRes (PQ, BT.2020), rendered the same way (draft network at a 384 px
work size, output at the source's 1920x1080, --strength 1, fresh weights: speed does not depend
on them).

    python bench/pro_formats.py samples/bigbuckbunny.mp4 --frames 48

The three sources are made once from the clip (scaled to 1920x1080) in bench/out/pro/. Prints
JSON: fps and busy-time fps per stage for each source, and each deep source's fps relative to
the 8-bit one.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import av
import numpy as np
import torch
from av.video.reformatter import ColorRange, Colorspace

from vidstyle.adapt import network_config
from vidstyle.config import load_settings
from vidstyle.io import VideoReader
from vidstyle.models.device import resolve_runtime
from vidstyle.models.stylenet import StyleNet
from vidstyle.pipeline.engine import render
from vidstyle.pipeline.job import RenderJob
from vidstyle.pipeline.stylizer import Stylizer

SIZE = (1920, 1080)
#: name -> (suffix, codec, pix_fmt, (primaries, trc, matrix), encoder options)
SOURCES = {
    "8bit_h264": (".mp4", "libx264", "yuv420p", (1, 1, 1), {"crf": "12"}),
    "10bit_prores": (".mov", "prores_ks", "yuv422p10le", (1, 1, 1), {"profile": "hq"}),
    "10bit_hdr10_prores": (".mov", "prores_ks", "yuv422p10le", (9, 16, 9), {"profile": "hq"}),
}


def make_source(clip: Path, name: str, frames: int, folder: Path) -> Path:
    suffix, codec, pix_fmt, (primaries, trc, matrix), options = SOURCES[name]
    path = folder / f"{clip.stem}_{frames}f_{name}{suffix}"
    if path.exists():
        return path
    tmp = path.with_name(f".{path.name}")
    sws_matrix = Colorspace.BT2020 if matrix == 9 else Colorspace.ITU709
    with VideoReader(clip, size=SIZE, end_index=frames) as reader, av.open(str(tmp), "w") as out:
        stream = out.add_stream(codec, rate=reader.info.rate or 24)
        stream.width, stream.height, stream.pix_fmt = *SIZE, pix_fmt
        cc = stream.codec_context
        cc.options = options
        cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = primaries, trc, matrix, 1
        for i, frame in enumerate(reader):
            rgb16 = frame.rgb.astype(np.uint16) * 257
            video = av.VideoFrame.from_ndarray(rgb16, format="rgb48le")
            video = video.reformat(
                format=pix_fmt, dst_colorspace=sws_matrix, dst_color_range=ColorRange.MPEG
            )
            video.color_primaries, video.color_trc, video.colorspace = primaries, trc, matrix
            video.pts = i
            out.mux(stream.encode(video))
        out.mux(stream.encode(None))
    tmp.rename(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("clip", type=Path)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--preset", default="draft")
    parser.add_argument("--work-side", type=int, default=384)
    parser.add_argument("--repeat", type=int, default=2, help="best of N runs per source")
    args = parser.parse_args()
    folder = Path(__file__).parent / "out" / "pro"
    folder.mkdir(parents=True, exist_ok=True)
    settings = load_settings(args.preset, None, {"render": {"max_side": args.work_side}})
    runtime = resolve_runtime(settings.render.device, settings.render.precision)
    torch.manual_seed(0)
    stylizer = Stylizer(StyleNet(network_config(settings)).eval(), runtime, settings.render)
    result: dict = {"clip": str(args.clip), "frames": args.frames, "device": runtime.describe()}
    with tempfile.TemporaryDirectory() as tmp:
        for name in SOURCES:
            source = make_source(args.clip, name, args.frames, folder)
            best = None
            for _ in range(args.repeat):
                out = Path(tmp) / f"out{source.suffix}"
                out.unlink(missing_ok=True)
                job = RenderJob(source, out, settings, progress=sys.stderr.isatty())
                stats = render(job, stylizer)
                if best is None or stats.fps > best["fps"]:
                    best = stats.to_dict()
            result[name] = {k: best[k] for k in ("fps", "stage_fps", "width", "height")}
    base = result["8bit_h264"]["fps"]
    for name in SOURCES:
        result[name]["relative_to_8bit"] = round(result[name]["fps"] / base, 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
