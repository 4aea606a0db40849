"""End to end through the command line: models (adapt, --model, the cache), bad inputs, batch,
info, previews, and one run in a real `python -m vidstyle` process.

Runs go through `vidstyle.cli.main` in this process (conftest `vidstyle_cli`), with the tiny
network config and, unless a test is about adaptation, the model made once by `vidstyle adapt`.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from tests.synth import frame_id, make_audio_only, make_text_file
from vidstyle.io import probe

# the module, not the function `vidstyle.adapt.adapt` that the package re-exports
adapt_module = importlib.import_module("vidstyle.adapt.adapt")
pytestmark = pytest.mark.usefixtures("torch_one_thread", "isolated_cache")

REPO = Path(__file__).resolve().parent.parent


class TrainingCalled(AssertionError):
    pass


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Adaptation must not train in this test: `train_stylenet` raises TrainingCalled."""

    def refuse(*args, **kwargs):
        raise TrainingCalled("train_stylenet was called")

    monkeypatch.setattr(adapt_module, "train_stylenet", refuse)


def cached_models(cache: Path) -> list[str]:
    models = cache / "models"
    return sorted(p.name for p in models.glob("*.safetensors")) if models.is_dir() else []


# -- models: adapt, --model, the cache ---------------------------------------------------------


def test_adapt_writes_a_model_that_info_describes(vidstyle_cli, tiny_model: Path):
    assert tiny_model.is_file()
    assert tiny_model.with_suffix(".json").is_file()
    shown = vidstyle_cli("info", tiny_model)
    assert shown.code == 0, shown.err
    assert "network" in shown.out and "(4, 8, 8)" in shown.out
    assert "style.png" in shown.out
    card = json.loads(vidstyle_cli("info", tiny_model, "--json").out)
    assert card["network"]["channels"] == [4, 8, 8]
    assert card["network"]["residual_blocks"] == 1
    assert card["work_side"] == 64  # the --content clip's long side (under max_side 96)
    assert card["style"]["name"] == "style.png"


@pytest.mark.usefixtures("no_training")
def test_model_option_uses_the_model_and_never_trains(
    vidstyle_cli,
    style_image: Path,
    tiny_model: Path,
    tiny_opts: list[str],
    vfr_clip: Path,
    tmp_path: Path,
    isolated_cache: Path,
):
    out = tmp_path / "out.mp4"
    result = vidstyle_cli(vfr_clip, style_image, out, "--model", tiny_model, *tiny_opts)
    assert result.code == 0, result.err
    assert result.out.strip().endswith("model reused")
    assert probe(out).frame_count == 12
    assert cached_models(isolated_cache) == []


def test_second_run_with_same_style_and_settings_skips_adaptation(
    vidstyle_cli,
    style_image: Path,
    tiny_opts: list[str],
    cfr_clip: Path,
    tmp_path: Path,
    isolated_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    first = vidstyle_cli(cfr_clip, style_image, tmp_path / "one.mp4", *tiny_opts)
    assert first.code == 0, first.err
    assert "adapted in" in first.out
    assert len(cached_models(isolated_cache)) == 1

    def refuse(*args, **kwargs):
        raise TrainingCalled("train_stylenet was called")

    monkeypatch.setattr(adapt_module, "train_stylenet", refuse)
    second = vidstyle_cli(cfr_clip, style_image, tmp_path / "two.mp4", *tiny_opts)
    assert second.code == 0, second.err
    assert second.out.strip().endswith("model reused")
    assert probe(tmp_path / "two.mp4").frame_count == 12

    # the key is the style's bytes (not its name), and --no-cache always adapts
    other_style = tmp_path / "style.png"
    image = cv2.imread(str(style_image))
    cv2.imwrite(str(other_style), 255 - image)
    # (an exception the CLI does not expect ends as one line naming it)
    trained = vidstyle_cli(cfr_clip, other_style, tmp_path / "three.mp4", *tiny_opts)
    assert trained.code == 1 and "TrainingCalled" in trained.err
    trained = vidstyle_cli(cfr_clip, style_image, tmp_path / "four.mp4", *tiny_opts, "--no-cache")
    assert trained.code == 1 and "TrainingCalled" in trained.err


# -- bad inputs: one line on stderr, non-zero status, nothing written --------------------------


@pytest.fixture
def bad_inputs(tmp_path: Path, cfr_clip: Path, style_image: Path) -> Path:
    """A working folder holding a good clip and style, and the broken files the cases use."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(cfr_clip, work / "clip.mp4")
    shutil.copy(style_image, work / "style.png")
    make_text_file(work / "notes.mp4")
    make_audio_only(work / "song.m4a")
    (work / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really" * 20)
    return work


BAD_CASES = {
    # id: (input, style, output, extra options, exit status, text the message must contain)
    "missing input": ("nope.mp4", "style.png", "out.mp4", (), 1, "nope.mp4"),
    "text file named .mp4": ("notes.mp4", "style.png", "out.mp4", (), 1, "notes.mp4"),
    "audio-only file": ("song.m4a", "style.png", "out.mp4", (), 1, "song.m4a"),
    "unreadable style image": ("clip.mp4", "broken.png", "out.mp4", (), 1, "broken.png"),
    "missing style image": ("clip.mp4", "nostyle.png", "out.mp4", (), 1, "nostyle.png"),
    "output directory missing": ("clip.mp4", "style.png", "nodir/out.mp4", (), 1, "nodir"),
    "unknown preset": ("clip.mp4", "style.png", "out.mp4", ("--preset", "ultra"), 2, "ultra"),
    "bad --temporal": (
        "clip.mp4",
        "style.png",
        "out.mp4",
        ("--temporal", "sometimes"),
        2,
        "--temporal",
    ),
    "--start past the end": ("clip.mp4", "style.png", "out.mp4", ("--start", "5"), 1, "clip.mp4"),
}


@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize("case", list(BAD_CASES), ids=list(BAD_CASES))
def test_bad_input_gives_one_clear_line_and_writes_nothing(
    vidstyle_cli,
    tiny_config: Path,
    bad_inputs: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
):
    src, style, out, extra, status, named = BAD_CASES[case]
    monkeypatch.chdir(bad_inputs)
    before = sorted(os.listdir(bad_inputs))
    options = ["--config", str(tiny_config), "--preset", "draft", *extra]  # progress bars on
    result = vidstyle_cli(src, style, out, *options)
    assert result.code == status
    assert len(result.err_lines) == 1, result.err
    line = result.err_lines[0]
    assert line.startswith("vidstyle: error: ")
    assert named in line
    assert "None" not in line
    assert "Traceback" not in result.err
    assert result.out == ""
    assert sorted(os.listdir(bad_inputs)) == before  # no output, no temporary file


def test_output_that_is_the_input_is_refused(
    vidstyle_cli,
    style_image: Path,
    tiny_model: Path,
    tiny_opts: list[str],
    cfr_clip: Path,
    tmp_path: Path,
):
    """Rendering onto the input's own name would replace the source footage by the result."""
    clip = tmp_path / "clip.mp4"
    shutil.copy(cfr_clip, clip)
    original = clip.read_bytes()
    result = vidstyle_cli(clip, style_image, clip, "--model", tiny_model, *tiny_opts)
    assert result.code == 1
    assert len(result.err_lines) == 1 and "clip.mp4" in result.err_lines[0]
    assert clip.read_bytes() == original
    assert os.listdir(tmp_path) == ["clip.mp4"]


# -- batch -------------------------------------------------------------------------------------


def test_batch_renders_good_clips_reports_the_broken_one_and_skips_finished_work(
    vidstyle_cli,
    style_image: Path,
    tiny_model: Path,
    tiny_opts: list[str],
    cfr_clip: Path,
    gop_clip: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    clips, outs = tmp_path / "clips", tmp_path / "outs"
    clips.mkdir()
    shutil.copy(cfr_clip, clips / "a.mp4")
    shutil.copy(gop_clip, clips / "b.mkv")
    make_text_file(clips / "c.mp4")
    (clips / "readme.txt").write_text("not a video, not an input")

    result = vidstyle_cli("batch", clips, style_image, outs, "--model", tiny_model, *tiny_opts)
    assert result.code == 1
    assert "2 done, 0 skipped (already complete), 1 failed" in result.out
    assert sorted(os.listdir(outs)) == ["a.mp4", "b.mp4", "vidstyle-report.json"]
    assert probe(outs / "a.mp4").frame_count == 12
    assert probe(outs / "b.mp4").frame_count == 24
    report = json.loads((outs / "vidstyle-report.json").read_text())
    status = {Path(item["input"]).name: item["status"] for item in report["items"]}
    assert status == {"a.mp4": "done", "b.mkv": "done", "c.mp4": "failed"}
    failed = next(i for i in report["items"] if i["status"] == "failed")
    assert failed["error"]
    stamps = {name: (outs / name).stat().st_mtime_ns for name in ("a.mp4", "b.mp4")}

    # again, without a model: finished outputs are skipped before any adaptation
    def refuse(*args, **kwargs):
        raise TrainingCalled("train_stylenet was called")

    monkeypatch.setattr(adapt_module, "train_stylenet", refuse)
    again = vidstyle_cli("batch", clips, style_image, outs, *tiny_opts)
    assert again.code == 1
    assert "0 done, 2 skipped (already complete), 1 failed" in again.out
    assert {name: (outs / name).stat().st_mtime_ns for name in stamps} == stamps
    report = json.loads((outs / "vidstyle-report.json").read_text())
    assert [i["status"] for i in report["items"]] == ["skipped", "skipped", "failed"]


def test_batch_never_overwrites_an_input_or_one_output_with_another(
    vidstyle_cli,
    style_image: Path,
    tiny_model: Path,
    tiny_opts: list[str],
    cfr_clip: Path,
    tmp_path: Path,
):
    """Output folder = input folder: a.mp4 would be its own output (and looked "already
    complete"); b.mkv and b.mov both map to b.mp4."""
    folder = tmp_path / "shots"
    folder.mkdir()
    for name in ("a.mp4", "b.mkv", "b.mov"):
        shutil.copy(cfr_clip, folder / name)
    original = (folder / "a.mp4").read_bytes()
    result = vidstyle_cli("batch", folder, style_image, folder, "--model", tiny_model, *tiny_opts)
    assert result.code == 1
    assert "1 done, 0 skipped (already complete), 2 failed" in result.out
    report = json.loads((folder / "vidstyle-report.json").read_text())
    status = {Path(item["input"]).name: item["status"] for item in report["items"]}
    assert status == {"a.mp4": "failed", "b.mkv": "done", "b.mov": "failed"}
    assert (folder / "a.mp4").read_bytes() == original


# -- info --------------------------------------------------------------------------------------


def test_info_shows_frame_count_and_rate(vidstyle_cli, cfr_clip: Path, vfr_clip: Path):
    text = vidstyle_cli("info", cfr_clip)
    assert text.code == 0, text.err
    fields = dict(line.split(None, 1) for line in text.out.splitlines() if line.strip())
    assert fields["frame_count"] == "12"
    assert fields["rate"] == "25/1"
    data = json.loads(vidstyle_cli("info", cfr_clip, "--json").out)
    assert data["frame_count"] == 12
    assert data["rate"] == "25/1"
    vfr = json.loads(vidstyle_cli("info", vfr_clip, "--json").out)
    assert vfr["frame_count"] == 12
    assert vfr["is_vfr"] is True


def test_info_errors_are_one_line(vidstyle_cli, tmp_path: Path):
    missing = vidstyle_cli("info", tmp_path / "gone.mp4")
    assert missing.code == 1
    assert len(missing.err_lines) == 1 and "gone.mp4" in missing.err


def test_info_without_a_file_shows_the_meta_learned_start(vidstyle_cli):
    shown = vidstyle_cli("info")
    assert shown.code == 0
    assert "vidstyle-meta-start" in shown.out and "training.corpus_manifest_sha256" in shown.out


# -- preview -----------------------------------------------------------------------------------


def sheet_rows(path: Path, aspect: float) -> tuple[list[int], list[int]]:
    """Frame ids in the top (source) and bottom (result) rows of a contact sheet whose
    thumbnails have width/height `aspect` and are separated by 4 px white gaps."""
    sheet = cv2.imread(str(path))
    assert sheet is not None, f"{path} is not a readable image"
    sheet = sheet[..., ::-1]
    h = (sheet.shape[0] - 4) // 2
    w = round(h * aspect)
    n = (sheet.shape[1] + 4) // (w + 4)
    assert n >= 2

    def ids(top: int) -> list[int]:
        return [frame_id(sheet[top : top + h, i * (w + 4) : i * (w + 4) + w]) for i in range(n)]

    return ids(0), ids(h + 4)


@pytest.mark.parametrize("trim", [(), ("--start", "0.2")])
def test_preview_writes_a_contact_sheet_of_matching_frames(
    vidstyle_cli,
    style_image: Path,
    tiny_model: Path,
    tiny_opts: list[str],
    cfr_clip: Path,
    tmp_path: Path,
    trim: tuple[str, ...],
):
    """At strength 0 the result shows its source frame, so each column's two ids match."""
    out = tmp_path / "out.mp4"
    options = ("--model", tiny_model, *tiny_opts, "--preview", "--strength", "0", *trim)
    result = vidstyle_cli(cfr_clip, style_image, out, *options)
    assert result.code == 0, result.err
    sheet = tmp_path / "out.preview.jpg"
    assert "preview" in result.out and str(sheet) in result.out
    top, bottom = sheet_rows(sheet, 64 / 48)
    assert top == bottom
    assert top[0] == (5 if trim else 0)


def test_preview_of_an_image_sequence_output_has_a_plain_name(
    vidstyle_cli,
    style_image: Path,
    tiny_model: Path,
    tiny_opts: list[str],
    cfr_clip: Path,
    tmp_path: Path,
):
    (tmp_path / "seq").mkdir()
    pattern = tmp_path / "seq" / "shot.%04d.png"
    result = vidstyle_cli(
        cfr_clip, style_image, pattern, "--model", tiny_model, *tiny_opts, "--preview"
    )
    assert result.code == 0, result.err
    names = sorted(os.listdir(tmp_path / "seq"))
    assert "shot.preview.jpg" in names
    assert not [n for n in names if "%" in n]
    assert len([n for n in names if n.endswith(".png")]) == 12


# -- a real process ----------------------------------------------------------------------------


def test_python_m_vidstyle_runs_the_main_job(
    style_image: Path, tiny_model: Path, tiny_opts: list[str], cfr_clip: Path, tmp_path: Path
):
    out = tmp_path / "out.mp4"
    env = {
        **os.environ,
        "VIDSTYLE_CACHE": str(tmp_path / "cache"),
        "OMP_NUM_THREADS": "1",
        # the repo first, the caller's path kept (where PyAV may live: the GPU machine's wheels)
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    argv = [sys.executable, "-m", "vidstyle", cfr_clip, style_image, out, "--model", tiny_model]
    proc = subprocess.run(
        [str(a) for a in [*argv, *tiny_opts]],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{out}: 12 frames at 64x48")
    assert "Traceback" not in proc.stderr
    assert probe(out).frame_count == 12
    assert sorted(os.listdir(tmp_path)) == ["out.mp4"]
