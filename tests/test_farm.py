"""Render-farm layer: job plan, chunk tasks (idempotent, atomic), assemble, Ray runner.

Chunk renders use a random tiny style network at strength 0 where the test needs to know which
source frame it got back (the output then is the input, so `frame_id` reads it); the Ray test
runs the real adapt task with the tiny config.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tests.synth import frame_id, make_clip, make_sequence
from vidstyle.config import Settings, load_settings, settings_from_dict
from vidstyle.errors import ConfigError, MediaError
from vidstyle.farm.plan import Chunk, Job, chunks_for_frames, layout, parse_frames, plan_job
from vidstyle.farm.tasks import (
    blended_frames,
    chunk_complete,
    run_assemble,
    run_chunk,
)
from vidstyle.io import VideoWriter, frame_timestamps, open_reader, probe
from vidstyle.io.paths import TMP_MARKER
from vidstyle.models.store import ModelCard, save_model
from vidstyle.models.stylenet import StyleNet, StyleNetConfig
from vidstyle.pipeline.span import Span

TINY = {
    "network": {"channels": [4, 8, 8], "residual_blocks": 1, "outer_kernel": 3},
    "adapt": {"start": "random", "random_steps": 3, "batch_size": 1, "crop": 32, "sample_runs": 2},
    "render": {"max_side": 96},
    "encode": {"preset": "ultrafast"},
}


def tiny_settings(**render) -> Settings:
    over = json.loads(json.dumps(TINY))
    over["render"].update(render)
    return load_settings("draft", None, over)


@pytest.fixture(scope="module")
def farm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("farm")


@pytest.fixture(scope="module")
def style_image(farm_dir: Path) -> Path:
    import cv2

    rng = np.random.default_rng(0)
    path = farm_dir / "style.png"
    cv2.imwrite(str(path), rng.integers(0, 256, (48, 48, 3), dtype=np.uint8))
    return path


@pytest.fixture(scope="module")
def tiny_model(farm_dir: Path) -> Path:
    """A random (untrained) tiny network: chunk tasks need a model, not a good one."""
    import torch

    torch.manual_seed(0)
    config = StyleNetConfig((4, 8, 8), 1, 3)
    return save_model(StyleNet(config).eval(), ModelCard(config, 96), farm_dir / "tiny.safetensors")


@pytest.fixture(scope="module")
def vfr_audio_clip(farm_dir: Path) -> Path:
    """64x48, 30 frames, variable frame rate, with audio."""
    return make_clip(farm_dir / "vfr.mp4", frames=30, vfr=True, audio=True)


def plan(tmp_path: Path, source, style, model, *, name="job.json", **kw) -> Job:
    settings = kw.pop("settings", None) or tiny_settings(strength=0.0)
    output = kw.pop("output", tmp_path / "out.mp4")
    options = {"chunk": 10, "overlap": 3, "model": model, **kw}
    return plan_job(source, style, output, settings, job_path=tmp_path / name, **options)


# -- plan ----------------------------------------------------------------------------------


def test_default_overlap_lets_the_chains_start_fade_to_a_quarter():
    from vidstyle.config import load_settings
    from vidstyle.farm.plan import default_overlap

    def overlap(temporal: str, chunk: int = 40, **render) -> int:
        settings = load_settings("draft", None, {"render": {"temporal": temporal, **render}})
        return default_overlap(settings, chunk)

    assert overlap("carry", chunk=100) == 23  # 0.94 ** 23 = 0.24
    assert 0.94**23 <= 0.25 < 0.94**22
    assert overlap("carry") == 20  # at most half of a 40-frame chunk
    assert overlap("carry", carry=0.85) == 9
    assert overlap("carry", chunk=10) == 5  # at most half a chunk
    assert overlap("warm") == 8
    assert overlap("off") == overlap("loss-only") == 0


@pytest.mark.parametrize(
    ("n", "chunk", "overlap", "cuts", "snap"),
    [(250, 40, 8, [], 0), (250, 40, 8, [30, 76, 137, 187, 242], 10), (7, 3, 2, [], 0),
     (5, 40, 8, [], 0), (100, 10, 9, [12, 13, 50], 2), (100, 10, 6, [8, 12, 22, 28], 2)],
)  # fmt: skip
def test_layout_covers_every_frame_exactly_once(n, chunk, overlap, cuts, snap):
    spans = layout(n, chunk, overlap, cuts, snap)
    covered = [f for start, end, _, _ in spans for f in range(start, end)]
    assert covered == list(range(n))
    for i, (start, end, warm_from, at_cut) in enumerate(spans):
        assert end > start
        if start == 0 or at_cut:
            assert warm_from == start  # no warm-up before frame 0 or across a cut
        else:  # inside the previous chunk: its last frames are this one's cross-fade
            assert spans[i - 1][0] <= warm_from < start
            reach = max(spans[i - 1][0], start - 2 * overlap)  # a cut inside the previous chunk
            earlier = [c for c in cuts if reach <= c < start]
            assert warm_from == (earlier[-1] if earlier else start - overlap)
        if at_cut:
            assert start in cuts


def test_layout_uses_hard_cuts_for_boundaries_and_warm_ups():
    cuts = [30, 76, 137, 187, 242]
    spans = layout(250, 40, 8, cuts, snap=10)
    # 40 -> 30, 80 -> 76 and 240 -> 242 (within a quarter chunk); 120, 160, 200 stay put
    assert [s for s, _, _, _ in spans] == [0, 30, 76, 120, 160, 200, 242]
    assert [s for s, _, _, at_cut in spans if at_cut] == [30, 76, 242]
    # chunk 200's chain starts at the cut 13 frames earlier (the previous chunk's chain restarts
    # there too: an exact seam); 120 and 160 have no cut within 2 * 8 frames: 8 warm-up frames
    assert [w for s, _, w, _ in spans if s in (120, 160, 200)] == [112, 152, 187]


def test_plan_contents_and_commands(tmp_path, vfr_audio_clip, style_image, tiny_model):
    job = plan(tmp_path, vfr_audio_clip, style_image, None, chunk=10, overlap=3)
    data = json.loads((tmp_path / "job.json").read_text())
    assert data["version"] == 1
    for key in ("input", "style", "output", "work_dir", "model"):
        assert os.path.isabs(data[key]), key
    assert data["source"]["frame_count"] == 30
    assert Fraction(data["source"]["time_base"]) == probe(vfr_audio_clip).time_base
    rebuilt = settings_from_dict(data["settings"]).to_dict()
    assert json.loads(json.dumps(rebuilt)) == data["settings"]
    assert rebuilt["network"]["channels"] == (4, 8, 8) and rebuilt["render"]["strength"] == 0
    assert [t["kind"] for t in data["tasks"]] == ["adapt", "chunk", "chunk", "chunk", "assemble"]
    assert data["tasks"][-1]["depends_on"] == ["chunk-0000", "chunk-0001", "chunk-0002"]
    assert all(t["depends_on"] == ["adapt"] for t in data["tasks"][1:-1])
    chunk_task = data["tasks"][2]
    assert chunk_task["command"][:3] == [sys.executable, "-m", "vidstyle"]
    assert chunk_task["command"][3:] == ["farm", "task", str(tmp_path / "job.json"), "--index", "1"]
    assert chunk_task["frames"] == "11-20"
    assert Path(job.model).parent == tmp_path / "job.vidstyle"
    assert [(c.span.start, c.span.end, c.span.warmup_start) for c in job.chunks] == [
        (0, 10, 0), (10, 20, 7), (20, 30, 17)
    ]  # fmt: skip
    # a chunk is one flat object in the file (docs/farm.md), and reads back as it was
    assert data["chunks"][1] == {
        "index": 1, "start": 10, "end": 20, "warmup_start": 7, "path": job.chunks[1].path,
        "keep_warmup": True, "at_cut": False,
    }  # fmt: skip
    assert Job.load(tmp_path / "job.json").chunks == job.chunks
    # the same plan again gives the same job id (finished chunks are reused); another overlap
    # gives another one (stale chunks are never picked up)
    assert plan(tmp_path, vfr_audio_clip, style_image, None).job_id == job.job_id
    assert plan(tmp_path, vfr_audio_clip, style_image, None, overlap=2).job_id != job.job_id


def test_frame_tokens_map_to_chunks(tmp_path, vfr_audio_clip, style_image, tiny_model):
    job = plan(tmp_path, vfr_audio_clip, style_image, tiny_model, chunk=10, overlap=3)
    pick = lambda spec: [c.index for c in chunks_for_frames(job, spec)]  # noqa: E731
    assert pick("11-20") == [1]  # OpenCue #FRAME_START#-#FRAME_END#, 1-based
    assert pick("21-40") == [2]  # the farm's last chunk overshoots: clamped
    assert pick("1-30") == [0, 1, 2]
    assert pick("1-10, 21-30") == [0, 2]  # Flamenco style
    assert pick("15-18") == []  # no chunk starts here: another task renders it
    assert parse_frames("5") == [(5, 5)]
    with pytest.raises(ConfigError):
        pick("31-40")
    with pytest.raises(ConfigError):
        pick("banana")
    assert [t.kind for t in job.tasks] == ["chunk", "chunk", "chunk", "assemble"]  # --model


def test_frame_parallel_modes_need_no_warm_up(tmp_path, vfr_audio_clip, style_image, tiny_model):
    settings = tiny_settings(temporal="off")
    job = plan(tmp_path, vfr_audio_clip, style_image, tiny_model, settings=settings, overlap=5)
    assert job.overlap == 0
    assert all(c.span.warmup == 0 and not c.keep_warmup for c in job.chunks)


# -- chunk tasks ---------------------------------------------------------------------------


def test_chunk_task_is_idempotent(tmp_path, vfr_audio_clip, style_image, tiny_model, monkeypatch):
    job = plan(tmp_path, vfr_audio_clip, style_image, tiny_model)
    first = run_chunk(job, 1)
    assert not first.skipped and first.frames == 13  # 10 own + 3 warm-up (cross-fade)
    mtime = os.stat(job.chunks[1].path).st_mtime_ns

    def no_render(*a, **k):
        raise AssertionError("render() called for a finished chunk")

    monkeypatch.setattr("vidstyle.pipeline.engine.render", no_render)
    again = run_chunk(Job.load(tmp_path / "job.json"), 1)
    assert again.skipped
    assert os.stat(job.chunks[1].path).st_mtime_ns == mtime


def test_tasks_refuse_another_vidstyle_version(tmp_path, vfr_audio_clip, style_image, tiny_model):
    from vidstyle.errors import VidstyleError

    job = plan(tmp_path, vfr_audio_clip, style_image, tiny_model)
    job.vidstyle_version = "0.0.1"
    job.save(tmp_path / "job.json")
    with pytest.raises(VidstyleError, match=r"planned with vidstyle 0\.0\.1"):
        run_chunk(Job.load(tmp_path / "job.json"), 0)


def test_killed_chunk_task_leaves_nothing_and_reruns(tmp_path, style_image, tiny_model):
    clip = make_clip(tmp_path / "long.mp4", size=(96, 72), frames=60, audio=False)
    job = plan(tmp_path, clip, style_image, tiny_model, chunk=60, overlap=0)
    chunk = job.chunks[0]
    target = Path(chunk.path)
    command = job.task("chunk-0000").command
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        temp = _wait_for(lambda: _temps(target), proc, timeout=60)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert temp and not target.exists()  # only a hidden temporary is left
    assert not chunk_complete(job, chunk)
    with pytest.raises(MediaError, match=r"chunk 0 .* is missing"):
        run_assemble(job)
    result = run_chunk(job, 0)
    assert result.frames == 60 and chunk_complete(job, chunk)
    assert not _temps(target)  # the killed attempt's temporary was cleaned up


def _temps(target: Path) -> list[Path]:
    return [p for p in target.parent.iterdir() if p.name.startswith(f".{target.name}{TMP_MARKER}")]


def _wait_for(found, proc, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the task ended (status {proc.returncode}) before it could be killed")
        time.sleep(0.002)
    pytest.fail("timed out waiting for the task to start writing")


def test_assemble_keeps_frames_timestamps_and_audio(tmp_path, vfr_audio_clip, style_image,
                                                    tiny_model):  # fmt: skip
    job = plan(tmp_path, vfr_audio_clip, style_image, tiny_model, chunk=10, overlap=3)
    for i in range(len(job.chunks)):
        run_chunk(job, i)
    result = run_assemble(job)
    out, src = probe(job.output), probe(vfr_audio_clip)
    assert result.frames == out.frame_count == src.frame_count == 30
    assert frame_timestamps(job.output) == frame_timestamps(vfr_audio_clip)  # VFR kept exactly
    assert len(out.audio) == 1
    assert out.duration == pytest.approx(src.duration, abs=0.03)
    with open_reader(job.output) as reader:
        assert [frame_id(f.rgb) for f in reader] == list(range(30))  # in order, none lost
    assert run_assemble(job).skipped  # done already
    Path(job.chunks[2].path).unlink()
    with pytest.raises(MediaError, match=r"chunk 2 \(frames 21-30\) is missing"):
        run_assemble(job, force=True)


def test_cross_fade_spreads_a_seam_jump_over_the_overlap(tmp_path):
    """Chunk 0 all black, chunk 1 all grey 90, overlap 8: the seam becomes a ramp 10, 20, ..."""
    chunks = [
        Chunk(0, Span(0, 12), str(tmp_path / "a.mkv")),
        Chunk(1, Span(12, 20, warmup=8), str(tmp_path / "b.mkv"), keep_warmup=True),
    ]
    for chunk, level in zip(chunks, (0, 90), strict=True):
        with VideoWriter(chunk.path, width=16, height=16, rate=Fraction(25),
                         time_base=Fraction(1, 25), codec="ffv1") as writer:  # fmt: skip
            for i in range(chunk.file_start, chunk.span.end):
                writer.write(np.full((16, 16, 3), level, np.uint8), i)
    job = Job("x", "in.mp4", None, "s.png", "out.mp4", str(tmp_path), "m", True, {},
              {"frame_count": 20}, 10, 8, "blend", "mkv", [], chunks)  # fmt: skip
    frames = list(blended_frames(job))
    assert [i for i, _, _ in frames] == list(range(20))
    levels = [int(rgb[0, 0, 0]) for _, rgb, _ in frames]
    assert levels == [0] * 4 + [10, 20, 30, 40, 50, 60, 70, 80] + [90] * 8


# -- image sequences -----------------------------------------------------------------------


@pytest.mark.parametrize("chunk_format", ["png", "exr"])
def test_image_sequence_input_and_chunks(tmp_path, style_image, tiny_model, chunk_format):
    pattern = make_sequence(tmp_path / "plate", "shot.%04d.png", frames=14, first=1001)
    job = plan(tmp_path, pattern, style_image, tiny_model, rate=Fraction(24), chunk=7,
               overlap=2, chunk_format=chunk_format, output=tmp_path / "out.%04d.png")  # fmt: skip
    assert job.first_frame == 1001
    assert [c.index for c in chunks_for_frames(job, "1008-1014")] == [1]
    for i in range(2):
        run_chunk(job, i)
    # chunk 1 runs from frame 5 (two warm-up frames, kept for the cross-fade), named by
    # source frame number
    names = sorted(p.name for p in Path(job.chunks[1].path).parent.iterdir())
    assert names == [f"frame.{n:06d}.{chunk_format}" for n in range(6, 15)]
    assert run_chunk(job, 1).skipped
    run_assemble(job)
    out = sorted((tmp_path).glob("out.*.png"))
    assert [p.name for p in out] == [f"out.{n:04d}.png" for n in range(1001, 1015)]
    with open_reader(str(tmp_path / "out.%04d.png")) as reader:
        assert [frame_id(f.rgb) for f in reader] == list(range(14))


def test_image_sequence_to_video_keeps_rate(tmp_path, style_image, tiny_model):
    pattern = make_sequence(tmp_path / "plate", "f_%03d.png", frames=9, first=1)
    glob = str(tmp_path / "plate" / "*.png")
    assert Path(pattern).parent == Path(glob).parent
    job = plan(tmp_path, glob, style_image, tiny_model, rate=Fraction(24000, 1001), chunk=5,
               overlap=2)  # fmt: skip
    for i in range(len(job.chunks)):
        run_chunk(job, i)
    run_assemble(job)
    info = probe(job.output)
    assert info.frame_count == 9 and info.rate == Fraction(24000, 1001)


# -- CLI -----------------------------------------------------------------------------------


def test_cli_plan_task_assemble(tmp_path, vfr_audio_clip, style_image, tiny_model):
    from typer.testing import CliRunner

    from vidstyle.farm.cli import farm_app

    runner = CliRunner()
    job_file = tmp_path / "cli.json"
    args = ["plan", str(vfr_audio_clip), str(style_image), str(tmp_path / "cli.mp4"),
            "--chunk", "15", "--overlap", "4", "-o", str(job_file), "--model", str(tiny_model),
            "--max-side", "64", "--preset", "draft"]  # fmt: skip
    res = runner.invoke(farm_app, args)
    assert res.exit_code == 0, res.output
    assert "2 chunks" in res.output
    for spec in ("1-15", "16-30"):
        res = runner.invoke(farm_app, ["task", str(job_file), "--frames", spec, "-q"])
        assert res.exit_code == 0, res.output
    res = runner.invoke(farm_app, ["assemble", str(job_file), "-q"])
    assert res.exit_code == 0, res.output
    assert probe(tmp_path / "cli.mp4").frame_count == 30
    res = runner.invoke(farm_app, ["task", str(job_file), "--index", "7"])
    assert res.exit_code == 1 and "no chunk 7" in res.output


# -- Ray -----------------------------------------------------------------------------------

try:
    import ray
except ImportError:  # the optional extra
    ray = None
needs_ray = pytest.mark.skipif(
    ray is None, reason="ray is not installed: pip install 'vidstyle[farm]'"
)


def _ray_pids() -> list[int]:
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                    if fh.read(5) == b"ray::":
                        pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _pid_writing(prefix: str) -> tuple[int, str] | None:
    """The Ray worker that has a file starting with `prefix` open (a chunk's temporary)."""
    for pid in _ray_pids():
        try:
            for fd in os.scandir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(fd.path)
                except OSError:
                    continue
                if target.startswith(prefix):
                    return pid, target
        except OSError:
            continue
    return None


@pytest.mark.slow  # tens of seconds on 2 cores: left out of `pytest -m "not slow"`
@needs_ray
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc")
def test_ray_run_retries_a_killed_chunk_task(tmp_path, style_image, monkeypatch):
    from vidstyle.farm.ray_runner import run_on_ray

    monkeypatch.setenv("VIDSTYLE_CACHE", str(tmp_path / "cache"))
    clip = make_clip(tmp_path / "shot.mp4", size=(96, 72), frames=120, audio=True)
    job = plan(tmp_path, clip, style_image, None, chunk=40, overlap=8,
               settings=tiny_settings())  # fmt: skip
    victim = job.chunks[1]
    prefix = str(Path(victim.path).parent / f".{Path(victim.path).name}{TMP_MARKER}")
    killed: list[tuple[int, str]] = []
    stop = threading.Event()

    def killer() -> None:  # SIGKILL the worker rendering chunk 1 once it has started writing
        while not stop.is_set() and not killed:
            found = _pid_writing(prefix)
            if found:
                os.kill(found[0], signal.SIGKILL)
                killed.append(found)
            time.sleep(0.005)

    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, _node_ip_address="127.0.0.1",
             logging_level="error", log_to_driver=False)  # fmt: skip
    watcher = threading.Thread(target=killer, daemon=True)
    watcher.start()
    try:
        result = run_on_ray(tmp_path / "job.json", max_retries=2, progress=False)
        stop.set()
        watcher.join()
        again = run_on_ray(tmp_path / "job.json", progress=False)  # all done: a no-op
    finally:
        stop.set()
        ray.shutdown()
    assert killed, "the chunk task finished before it could be killed"
    assert result.frames == 120 and result.done == len(job.tasks)
    assert all(chunk_complete(job, c) for c in job.chunks)
    assert not _temps(Path(victim.path))  # the retry cleaned the killed attempt's temporary
    assert frame_timestamps(job.output) == frame_timestamps(clip)
    assert len(probe(job.output).audio) == 1
    assert again.done == 0 and again.skipped == len(job.tasks)


def test_missing_ray_is_one_clear_line(monkeypatch):
    import builtins

    from vidstyle.errors import VidstyleError
    from vidstyle.farm import ray_runner

    real_import = builtins.__import__

    def fake_import(name, *a, **k):
        if name == "ray":
            raise ImportError("no ray")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(VidstyleError, match=r"pip install 'vidstyle\[farm\]'"):
        ray_runner.import_ray()
