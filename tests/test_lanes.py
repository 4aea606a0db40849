"""Warm chains side by side (--lanes): segments cover the video once, seams are cross-faded,
frames come out complete and in order, and the network really gets batches."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tests.synth import make_clip
from vidstyle.config import load_settings
from vidstyle.io import Frame, frame_timestamps, open_reader, probe
from vidstyle.models.device import resolve_runtime
from vidstyle.models.store import load_model
from vidstyle.pipeline.engine import render
from vidstyle.pipeline.job import RenderJob, lane_count
from vidstyle.pipeline.lanes import SeamMerger, plan_segments
from vidstyle.pipeline.span import Span
from vidstyle.pipeline.stylizer import Stylizer

pytestmark = pytest.mark.usefixtures("torch_one_thread", "isolated_cache")


def test_segments_cover_the_range_once_each_starting_early_by_the_overlap():
    segments = plan_segments(Span(5, 105), lanes=3, overlap=4, frame_bytes=100)
    assert [(s.start, s.end) for s in segments] == [(5, 39), (39, 73), (73, 105)]
    assert [s.warmup_start for s in segments] == [5, 35, 69]


def test_segment_length_follows_the_memory_budget_but_never_drops_below_four_overlaps():
    huge_frame = 1 << 40
    segments = plan_segments(Span(0, 100), lanes=4, overlap=5, frame_bytes=huge_frame)
    assert {s.end - s.start for s in segments[:-1]} == {20}


def test_lane_count_is_one_by_default_and_shrinks_for_short_clips():
    render_cfg = load_settings("draft", overrides={"render": {"temporal": "warm"}}).render
    assert lane_count(render_cfg, cuda=False, frames=10_000) == 1
    assert lane_count(render_cfg, cuda=True, frames=10_000) == 1  # measured faster (job.py)
    render_cfg.lanes = 4
    assert lane_count(render_cfg, cuda=True, frames=10_000) == 4
    assert lane_count(render_cfg, cuda=True, frames=70) == 2  # 32 frames a lane at least
    for batched_mode in ("off", "carry"):  # these batch frames instead
        render_cfg.temporal = batched_mode
        assert lane_count(render_cfg, cuda=True, frames=10_000) == 1


def _frame(index: int) -> Frame:
    return Frame(index, index, Fraction(1, 25), np.zeros((2, 2, 3), np.uint8))


def test_merger_releases_frames_in_order_and_crossfades_the_overlap():
    segments = [Span(0, 10), Span(10, 20, warmup=4)]
    merger = SeamMerger(segments)
    released = []
    lane0, lane1 = iter(range(0, 10)), iter(range(6, 20))
    for _ in range(14):  # lockstep, as the lanes run
        for seg, lane, value in ((0, lane0, 0), (1, lane1, 200)):
            index = next(lane, None)
            if index is not None:
                rgb = np.full((2, 2, 3), value, np.uint8)
                released += merger.add(seg, _frame(index), rgb)
    assert [f.index for _, f in released] == list(range(20))
    values = [int(rgb[0, 0, 0]) for rgb, _ in released]
    # the newcomer's share rises 1/5 .. 4/5 over the 4 overlap frames
    assert values == [0] * 6 + [40, 80, 120, 160] + [200] * 10
    assert merger.waiting == 0


@pytest.fixture
def long_clip(tmp_path: Path) -> Path:
    return make_clip(tmp_path / "long.mp4", frames=100, audio=True)


def _frames(path: Path) -> np.ndarray:
    with open_reader(str(path)) as reader:
        return np.stack([f.rgb for f in reader]).astype(np.float32)


def test_lanes_render_every_frame_once_batched_and_continue_each_chain(
    tiny_model: Path, tiny_config: Path, long_clip: Path, tmp_path: Path, monkeypatch
):
    settings = load_settings("draft", tiny_config, {"render": {"temporal": "warm"}})
    net, _ = load_model(tiny_model)
    stylizer = Stylizer(net, resolve_runtime("cpu", "fp32"), settings.render)
    single = render(RenderJob(long_clip, tmp_path / "one.mp4", settings, progress=False), stylizer)

    batch_sizes = []
    network = Stylizer.network

    def counting(self, frames, *args, **kwargs):
        batch_sizes.append(frames.shape[0])
        return network(self, frames, *args, **kwargs)

    monkeypatch.setattr(Stylizer, "network", counting)
    settings.render.lanes = 3
    out = tmp_path / "lanes.mp4"
    stats = render(RenderJob(long_clip, out, settings, progress=False), stylizer)

    # segments [0, 34), [34, 68), [68, 100); the last two start 8 frames early
    assert stats.frames == 100 and stats.processed == 100 + 8 + 8
    assert max(batch_sizes) == 3 and sum(batch_sizes) == stats.processed
    src, dst = probe(long_clip), probe(out)
    assert dst.frame_count == 100 and dst.rate == src.rate and dst.audio
    assert single.processed == 100
    a, b = _frames(tmp_path / "one.mp4"), _frames(out)
    # Segment 0 runs the same chain as the single-lane render (batched with the others).
    assert np.abs(a[:26] - b[:26]).mean() < 1.0
    # Frames come out in order and the seams do not jump: the change from frame to frame
    # across a segment boundary is like anywhere else in the clip.
    steps = np.abs(np.diff(b, axis=0)).mean(axis=(1, 2, 3))  # steps[i]: frame i -> i + 1
    assert max(steps[33], steps[67]) < 2 * np.median(steps)


def test_lanes_from_the_command_line_keep_timing_and_audio(
    vidstyle_cli, style_image: Path, tiny_model: Path, tiny_opts: list[str], long_clip: Path,
    tmp_path: Path,
):  # fmt: skip
    out = tmp_path / "out.mp4"
    result = vidstyle_cli(
        long_clip, style_image, out, "--model", tiny_model, *tiny_opts, "--temporal", "warm",
        "--lanes", "3",
    )  # fmt: skip
    assert result.code == 0, result.err
    src, dst = probe(long_clip), probe(out)
    assert dst.frame_count == src.frame_count == 100
    assert frame_timestamps(out) == frame_timestamps(long_clip)
    assert dst.audio
