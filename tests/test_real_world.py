"""Real-world footage and bad input (issue 15): DivX packed B-frames, repeated and missing
timestamps, truncated files, output at the source's size, one line for every failure, batch
going on past anything, no temporary left behind, and the smaller checks (--chunk 0, negative
--start, --model with another style, an existing output). Frame rates: tests/test_rates.py.

Every input is generated here with PyAV (tests/synth.py); runs use the tiny model.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from tests.synth import (
    frame_id,
    frame_image,
    make_clip,
    make_labelled_mkv,
    make_packed_bframes_avi,
    make_raw_h264,
    make_text_file,
    make_truncated_mp4,
)
from vidstyle.io import open_reader, probe
from vidstyle.io.paths import TMP_MARKER
from vidstyle.io.timeline import FramePlacer, repair_timestamps

pytestmark = pytest.mark.usefixtures("torch_one_thread", "isolated_cache")


# -- helpers -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def packed_avi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 frames at 24 fps, 64x48, DivX packed B-frames: decoded labels 1, 3, 2, 5, 4, ..."""
    folder = tmp_path_factory.mktemp("packed")
    return make_packed_bframes_avi(folder / "divx.avi", frames=24, audio=True)


@pytest.fixture
def run(vidstyle_cli, style_image: Path, tiny_model: Path, tiny_opts: list[str]):
    """run(src, out, *options) -> CliResult of the main job with the tiny model."""

    def invoke(src: Path | str, out: Path | str, *options: object):
        return vidstyle_cli(src, style_image, out, "--model", tiny_model, *tiny_opts, *options)

    return invoke


def packet_times(path: Path) -> list[Fraction]:
    """Presentation times of the video packets, sorted, from the first (MP4 shifts them all by
    its B-frame delay), straight from the demuxer."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        pts = sorted(p.pts for p in c.demux(stream) if p.size and p.pts is not None)
        return [(p - pts[0]) * stream.time_base for p in pts]


def ids(path: Path | str) -> list[int]:
    with open_reader(str(path)) as reader:
        return [frame_id(f.rgb) for f in reader]


def warnings_in(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("vidstyle: warning: ")]


def increasing(values: list) -> bool:
    return all(b > a for a, b in itertools.pairwise(values))


# -- timestamps you can trust ------------------------------------------------------------------


def test_packed_bframes_avi_decodes_every_frame_in_order(packed_avi: Path):
    with av.open(str(packed_avi)) as c:  # what FFmpeg's decoder says: swapped labels
        labels = [f.pts for f in c.decode(video=0)]
    assert not increasing(labels)
    with open_reader(packed_avi) as reader:
        frames = list(reader)
    assert [frame_id(f.rgb) for f in frames] == list(range(24))
    assert increasing([f.pts for f in frames])
    assert [f.index for f in frames] == list(range(24))
    with open_reader(packed_avi, start_index=13, end_index=20) as reader:  # mid-file too
        part = list(reader)
    assert [frame_id(f.rgb) for f in part] == list(range(13, 20))
    assert [f.pts for f in part] == [f.pts for f in frames[13:20]]


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("carry.mp4", ()),
        ("warm.mp4", ("--temporal", "warm")),
        ("off.mkv", ("--temporal", "off")),
        ("range.mp4", ("--start", "0.25", "--end", "0.75")),
    ],
)
def test_packed_bframes_main_job_keeps_every_frame(
    run, packed_avi: Path, tmp_path: Path, name: str, options: tuple
):
    out = tmp_path / name
    result = run(packed_avi, out, "--strength", "0", *options)
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    said = warnings_in(result.err)
    assert len(said) == 1 and "packed B-frames" in said[0] and str(packed_avi) in said[0]
    wanted = list(range(6, 18)) if "--start" in options else list(range(24))
    assert ids(out) == wanted
    times = packet_times(out)  # from 0, 1/24 s apart (to the millisecond in Matroska)
    assert [float(t) for t in times] == pytest.approx(
        [i / 24 for i in range(len(wanted))], abs=1e-3
    )
    assert probe(out).frame_count == len(wanted)
    with av.open(str(out)) as c:  # the sound still ends with the picture
        sound = c.streams.audio[0]
        packets = [p for p in c.demux(sound) if p.size]
        end = max(p.pts + p.duration for p in packets) * sound.time_base
    assert float(end) == pytest.approx(len(wanted) / 24, abs=0.05)


def test_lying_labels_are_caught_by_the_reader_itself(packed_avi, tmp_path, monkeypatch):
    """Without the DivX signature the container looks sane; the decoder's labels give the
    game away right after the seek, and the reader starts over from frame 0, counting."""
    import importlib

    probe_module = importlib.import_module("vidstyle.io.probe")
    monkeypatch.setattr(probe_module, "divx_packed_bframes", lambda data: False)
    copy = tmp_path / "unsigned.avi"  # a fresh name: a fresh scan
    shutil.copy(packed_avi, copy)
    with open_reader(copy, start_index=13, end_index=20) as reader:
        part = list(reader)
    assert [frame_id(f.rgb) for f in part] == list(range(13, 20))
    assert [f.index for f in part] == list(range(13, 20))
    assert increasing([f.pts for f in part])
    with open_reader(copy) as reader:
        assert [frame_id(f.rgb) for f in reader] == list(range(24))


def test_repeated_and_missing_timestamps_are_repaired(run, tmp_path: Path):
    """A broken muxer repeated two timestamps (80 and 200 ms) where 120 and 240 were due:
    every frame comes out, in order, at 40 ms steps; the sane timestamps are kept exactly."""
    src = make_labelled_mkv(tmp_path / "dups.mkv", [0, 40, 80, 80, 160, 200, 200, 280, 330])
    with open_reader(src) as reader:
        assert [f.pts for f in reader] == [0, 40, 80, 120, 160, 200, 240, 280, 330]
    out = tmp_path / "out.mkv"
    result = run(src, out, "--strength", "0")
    assert result.code == 0, result.err
    said = warnings_in(result.err)
    assert len(said) == 1 and "2 of 9 frames repeat a timestamp" in said[0]
    assert ids(out) == list(range(9))
    assert packet_times(out) == [
        Fraction(t, 1000) for t in (0, 40, 80, 120, 160, 200, 240, 280, 330)
    ]


def test_a_stream_without_timestamps_is_timed_from_its_rate(run, tmp_path: Path):
    src = make_raw_h264(tmp_path / "raw.h264", frames=10)
    out = tmp_path / "out.mp4"
    result = run(src, out, "--strength", "0")
    assert result.code == 0, result.err
    assert any("no frame has a timestamp" in w for w in warnings_in(result.err))
    assert ids(out) == list(range(10))
    assert packet_times(out) == [Fraction(i, 25) for i in range(10)]


def test_repair_keeps_sane_labels_and_fills_the_rest():
    tb = Fraction(1, 1000)
    fixed, note = repair_timestamps([0, 40, 80, 120], Fraction(25), tb)
    assert fixed.tolist() == [0, 40, 80, 120] and note is None
    fixed, note = repair_timestamps([0, 80, 40, 120], Fraction(25), tb)  # B-frames: reordered
    assert fixed.tolist() == [0, 40, 80, 120] and note is None
    fixed, note = repair_timestamps([0, 40, None, 120, 160, 160], Fraction(25), tb)
    assert fixed.tolist() == [0, 40, 80, 120, 160, 200]
    assert "2 of 6 frames have no timestamp or repeat one" in note
    fixed, note = repair_timestamps([0, 40, 40, 41], Fraction(25), tb)  # no room: from the rate
    assert fixed.tolist() == [0, 40, 80, 120] and "every frame" in note
    fixed, note = repair_timestamps([None] * 3, Fraction(30000, 1001), Fraction(1, 90000))
    assert fixed.tolist() == [0, 3003, 6006] and "no frame has a timestamp" in note
    fixed, _ = repair_timestamps([0, 120, None, 40], Fraction(25), tb)  # reordered and missing
    assert fixed.tolist() == [0, 40, 80, 120]


def place(labels: list, timeline: list[int], start: int = 0) -> tuple[list[int], FramePlacer]:
    placer: FramePlacer = FramePlacer(np.asarray(timeline, np.int64), start)
    order = []
    for n, label in enumerate(labels):
        order += [(index, item) for index, item in placer.push(label, n)]
    order += placer.finish()
    assert [item for _, item in order] == list(range(len(labels)))  # output order kept
    return [index for index, _ in order], placer


def test_frame_placer_trusts_labels_only_while_they_agree():
    timeline = list(range(1, 13))
    assert place(list(range(1, 13)), timeline)[0] == list(range(12))
    swapped, placer = place([1, 3, 2, 5, 4, 7, 6, 8], timeline)  # packed B-frames
    assert swapped == list(range(8)) and not placer.trusted
    assert "out of order" in placer.reason
    dropped, placer = place([1, 2, 5, 6, 7, 8], timeline)  # the decoder lost frames 2 and 3
    assert dropped == [0, 1, 4, 5, 6, 7] and placer.trusted and placer.dropped == 2
    none, placer = place([1, 2, None, 4], timeline)
    assert none == [0, 1, 2, 3] and placer.reason == "frames without a timestamp"
    repeated, _ = place([1, 2, 2, 4], timeline)
    assert repeated == [0, 1, 2, 3]
    assert place([6, 8, 7, 9], timeline, start=5)[0] == [5, 6, 7, 8]


# -- the same reader serves batch and the farm ----------------------------------------------------


def test_batch_with_packed_bframes_first_renders_everything(
    vidstyle_cli, style_image, tiny_model, tiny_opts, packed_avi, cfr_clip, tmp_path
):
    clips, outs = tmp_path / "clips", tmp_path / "outs"
    clips.mkdir()
    shutil.copy(packed_avi, clips / "a_divx.avi")  # sorted first
    shutil.copy(cfr_clip, clips / "b.mp4")
    result = vidstyle_cli("batch", clips, style_image, outs, "--model", tiny_model, *tiny_opts)
    assert result.code == 0, result.err
    assert "2 done, 0 skipped (already complete), 0 failed" in result.out
    assert probe(outs / "a_divx.mp4").frame_count == 24
    assert increasing(packet_times(outs / "a_divx.mp4"))
    report = json.loads((outs / "vidstyle-report.json").read_text())
    first = report["items"][0]
    assert first["status"] == "done" and "packed B-frames" in first["warnings"][0]


def test_farm_chunk_of_packed_bframes_has_its_frames_and_timestamps(
    packed_avi: Path, tmp_path: Path, tiny_model: Path, style_image: Path
):
    from vidstyle.config import load_settings
    from vidstyle.farm.plan import plan_job
    from vidstyle.farm.tasks import run_assemble, run_chunk

    settings = load_settings(
        "draft",
        None,
        {
            "network": {"channels": [4, 8, 8], "residual_blocks": 1, "outer_kernel": 3},
            "render": {"max_side": 96, "strength": 0.0},
            "encode": {"preset": "ultrafast"},
        },
    )
    out = tmp_path / "out.mp4"
    job = plan_job(
        packed_avi, style_image, out, settings, job_path=tmp_path / "job.json", chunk=8,
        overlap=2, model=tiny_model,
    )  # fmt: skip
    middle = job.chunks[1]
    run_chunk(job, 1)
    with open_reader(middle.path) as reader:
        frames = list(reader)
    assert [frame_id(f.rgb) for f in frames] == list(range(middle.file_start, middle.span.end))
    assert increasing([f.pts for f in frames])
    for index in range(len(job.chunks)):
        run_chunk(job, index)
    run_assemble(job)
    assert ids(out) == list(range(24))
    assert packet_times(out) == [Fraction(i, 24) for i in range(24)]

    # what workers stopped mid-chunk leave (a failed `farm run`) goes with the run
    from vidstyle.farm.tasks import remove_temporaries

    debris = Path(middle.path).with_name(f".{Path(middle.path).name}{TMP_MARKER}ab12.mkv")
    debris.write_bytes(b"")
    remove_temporaries(job)
    assert not debris.exists() and Path(middle.path).exists()


# -- the source's size ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "rotation", "codec", "pix_fmt"),
    [
        ((64, 48), 0, "libx264", None),
        ((65, 49), 0, "ffv1", "yuv444p"),  # odd and 4:4:4
        ((63, 47), 0, "ffv1", "yuv420p"),  # odd 4:2:0: written 4:4:4 to stay exact
        ((64, 48), 90, "libx264", None),  # a phone clip: stored 48x64, shown 64x48
    ],
)
def test_output_has_the_source_size(run, tmp_path: Path, size, rotation, codec, pix_fmt):
    suffix = ".mkv" if codec == "ffv1" else ".mp4"
    src = make_clip(
        tmp_path / f"src{suffix}", size=size, frames=4, audio=False, codec=codec,
        pix_fmt=pix_fmt, rotation=rotation,
    )  # fmt: skip
    out = tmp_path / "out.mp4"
    result = run(src, out, "--work-side", "32")
    assert result.code == 0, result.err
    assert f"at {size[0]}x{size[1]} (painted at " in result.out
    info = probe(out)
    assert (info.display_width, info.display_height) == size
    assert info.rotation == rotation
    assert info.frame_count == 4
    with av.open(str(out)) as c:  # really that size (no padding), seen by any player
        stored = c.streams.video[0].codec_context
        assert {stored.width, stored.height} == set(size)
        if pix_fmt:
            assert stored.pix_fmt == "yuv444p"


def test_smaller_deliverable_only_when_asked(run, tmp_path: Path):
    src = make_clip(tmp_path / "src.mp4", size=(128, 96), frames=3, audio=False)
    assert run(src, tmp_path / "a.mp4").code == 0  # tiny config: the network works at 96 px
    assert (probe(tmp_path / "a.mp4").display_width, probe(tmp_path / "a.mp4").height) == (128, 96)
    assert run(src, tmp_path / "b.mp4", "--max-side", "64").code == 0
    assert (probe(tmp_path / "b.mp4").width, probe(tmp_path / "b.mp4").height) == (64, 48)


def test_upscaled_output_keeps_the_sources_detail_at_strength_zero(run, tmp_path: Path):
    src = make_clip(tmp_path / "src.mkv", size=(128, 96), frames=3, audio=False, codec="ffv1")
    out = tmp_path / "out.mkv"
    result = run(src, out, "--work-side", "32", "--strength", "0", "--codec", "ffv1")
    assert result.code == 0, result.err
    with open_reader(out) as reader:
        frame = next(iter(reader)).rgb.astype(int)
    # painted at 32x24; the original's share takes its detail from the full-size frame
    assert np.abs(frame - frame_image(0, 128, 96)).mean() < 2.0


# -- one line for every failure; batch goes on ---------------------------------------------------


def test_batch_goes_on_past_an_unexpected_failure(
    vidstyle_cli, style_image, tiny_model, tiny_opts, cfr_clip, gop_clip, tmp_path, monkeypatch
):
    """The first file breaks the renderer in a way nobody planned for, the second is not a
    video at all: the third is still rendered, the report and the table say what happened."""
    import vidstyle.jobs as jobs

    clips, outs = tmp_path / "clips", tmp_path / "outs"
    clips.mkdir()
    shutil.copy(cfr_clip, clips / "a.mp4")
    make_text_file(clips / "b.mp4")
    shutil.copy(gop_clip, clips / "c.mkv")
    real_render = jobs.render

    def render(job, *args, **kwargs):
        if Path(job.source).name == "a.mp4":
            raise ZeroDivisionError("something nobody expected")
        return real_render(job, *args, **kwargs)

    monkeypatch.setattr(jobs, "render", render)
    result = vidstyle_cli("batch", clips, style_image, outs, "--model", tiny_model, *tiny_opts)
    assert result.code == 1
    assert "Traceback" not in result.err
    assert "1 done, 0 skipped (already complete), 2 failed" in result.out
    report = json.loads((outs / "vidstyle-report.json").read_text())
    status = {Path(i["input"]).name: (i["status"], i["error"]) for i in report["items"]}
    assert status["c.mkv"] == ("done", None)
    assert status["b.mp4"][0] == "failed"
    assert status["a.mp4"][0] == "failed"
    assert "internal error (ZeroDivisionError: something nobody expected)" in status["a.mp4"][1]
    assert sorted(os.listdir(outs)) == ["c.mp4", "vidstyle-report.json"]


def test_unexpected_error_in_a_farm_task_is_one_line_and_leaves_nothing(
    vidstyle_cli, cfr_clip, style_image, tiny_model, tmp_path, monkeypatch
):
    from vidstyle.pipeline import stylizer as stylizer_module

    job = tmp_path / "job.json"
    planned = vidstyle_cli(
        "farm", "plan", cfr_clip, style_image, tmp_path / "out.mp4", "-o", job, "--chunk", "6",
        "--model", tiny_model, "--preset", "draft", "--no-snap-cuts",
    )  # fmt: skip
    assert planned.code == 0, planned.err

    def broken(self, *args, **kwargs):
        raise RuntimeError("out of cheese")

    monkeypatch.setattr(stylizer_module.Stylizer, "network", broken)
    result = vidstyle_cli("farm", "task", job, "--index", "1", "-q")
    assert result.code == 1
    assert len(result.err_lines) == 1, result.err
    line = result.err_lines[0]
    assert line.startswith(f"vidstyle: error: {cfr_clip}: internal error (RuntimeError: out of")
    assert "traceback in " in line
    chunk_dir = Path(json.loads(job.read_text())["chunks"][1]["path"]).parent
    assert [p.name for p in chunk_dir.iterdir()] == []  # no chunk, no temporary

    debug = vidstyle_cli("farm", "task", job, "--index", "1", "-q", "--debug")
    assert debug.code == 1 and "Traceback" in debug.err and "out of cheese" in debug.err


def test_ray_worker_failure_is_summarised_in_one_line():
    ray = pytest.importorskip("ray")
    from vidstyle.farm.ray_runner import _failure

    try:
        raise KeyError("frame 7")
    except KeyError as cause:
        exc = ray.exceptions.RayTaskError("chunk_task", "Traceback ...\nKeyError: 'frame 7'", cause)
    error = _failure(ray, "chunk-0003", exc, 3)
    text = str(error)
    assert "\n" not in text
    assert "farm task chunk-0003 failed after 3 retries: KeyError: 'frame 7'" in text
    saved = Path(text.split("worker traceback in ")[1])
    assert "KeyError: 'frame 7'" in saved.read_text()


# -- nothing left behind ------------------------------------------------------------------------


def test_stale_temporary_of_a_killed_run_is_removed(run, cfr_clip: Path, tmp_path: Path):
    out = tmp_path / "out.mp4"
    stale = tmp_path / f".out.mp4{TMP_MARKER}dead0001.mp4"  # what SIGKILL left an hour ago
    stale.write_bytes(b"\0" * 100)
    old = time.time() - 3600
    os.utime(stale, (old, old))
    live = tmp_path / f".out.mp4{TMP_MARKER}live0002.mp4"  # another run writing right now
    live.write_bytes(b"\0" * 100)
    result = run(cfr_clip, out)
    assert result.code == 0, result.err
    assert sorted(os.listdir(tmp_path)) == sorted(["out.mp4", live.name])


def test_existing_output_is_refused_unless_overwrite(run, cfr_clip: Path, tmp_path: Path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"last week's render")
    refused = run(cfr_clip, out)
    assert refused.code == 1
    assert len(refused.err_lines) == 1 and "already exists" in refused.err and "-y" in refused.err
    assert out.read_bytes() == b"last week's render"
    replaced = run(cfr_clip, out, "-y")
    assert replaced.code == 0, replaced.err
    assert probe(out).frame_count == 12


# -- truncated inputs -----------------------------------------------------------------------------


def test_truncated_mp4_warns_with_the_counts(
    run, vidstyle_cli, style_image, tiny_model, tiny_opts, tmp_path: Path
):
    src, listed = make_truncated_mp4(tmp_path / "cut.mp4", frames=40, keep=0.8)
    have = probe(src).frame_count
    assert 0 < have < listed
    out = tmp_path / "out.mp4"
    result = run(src, out)
    assert result.code == 0, result.err
    said = warnings_in(result.err)
    assert len(said) == 1
    assert str(src) in said[0] and f"{have} of the {listed} frames" in said[0]
    assert probe(out).frame_count == have

    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(src, clips / "cut.mp4")
    batch = vidstyle_cli("batch", clips, style_image, tmp_path / "outs", "--model", tiny_model,
                         *tiny_opts)  # fmt: skip
    assert batch.code == 0, batch.err
    assert "warning:" in batch.out
    report = json.loads((tmp_path / "outs" / "vidstyle-report.json").read_text())
    assert f"{have} of the {listed} frames" in report["items"][0]["warnings"][0]


def test_truncated_matroska_is_noticed_by_its_duration(tmp_path: Path):
    from vidstyle import notices

    whole = make_clip(tmp_path / "whole.mkv", frames=40, audio=False)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    with notices.capture() as said:
        assert probe(whole).frame_count == 40
        have = probe(cut).frame_count
    assert have < 40
    assert len(said) == 1 and str(cut) in said[0] and "the 1.60 s the container declares" in said[0]


# -- the smaller checks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "status", "named"),
    [
        (("farm", "plan", "{clip}", "{style}", "{out}", "--chunk", "0"), 2, "--chunk"),
        (("farm", "plan", "{clip}", "{style}", "{out}", "--overlap", "-1"), 2, "--overlap"),
        (("{clip}", "{style}", "{out}", "--start", "-1"), 2, "--start"),
        (("{clip}", "{style}", "{out}", "--start", "0.4", "--end", "0.2"), 2, "--end"),
        (("{clip}", "{style}", "{out}", "--rate", "fast"), 2, "--rate"),
    ],
)
def test_bad_options_are_one_line(
    vidstyle_cli, tiny_config, cfr_clip, style_image, tmp_path, argv, status, named
):
    values = {"clip": cfr_clip, "style": style_image, "out": tmp_path / "out.mp4"}
    args = [str(a).format(**values) for a in argv]
    result = vidstyle_cli(*args, "--config", tiny_config, "--preset", "draft")
    assert result.code == status, result.err
    assert len(result.err_lines) == 1 and named in result.err_lines[0]
    assert "Traceback" not in result.err
    assert not (tmp_path / "out.mp4").exists()


def test_model_with_another_style_image_warns(run, vidstyle_cli, tiny_model, tiny_opts,
                                              cfr_clip, style_image, tmp_path):  # fmt: skip
    other = tmp_path / "other.png"
    cv2.imwrite(str(other), 255 - cv2.imread(str(style_image)))
    result = vidstyle_cli(cfr_clip, other, tmp_path / "out.mp4", "--model", tiny_model, *tiny_opts)
    assert result.code == 0, result.err
    said = warnings_in(result.err)
    assert len(said) == 1 and str(other) in said[0] and "style.png" in said[0]
    same = run(cfr_clip, tmp_path / "same.mp4")
    assert same.code == 0 and warnings_in(same.err) == []
    missing = vidstyle_cli(cfr_clip, tmp_path / "nope.png", tmp_path / "x.mp4", "--model",
                           tiny_model, *tiny_opts)  # fmt: skip
    assert missing.code == 1 and "nope.png" in missing.err
