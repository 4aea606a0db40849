"""End to end, what a rendered video keeps from its source: frames, timing, audio, size,
rotation, trims, colour; and that a failed render leaves nothing behind.

Every test renders a tiny synthetic clip through the real command line (in this process) with
the tiny model made once by `vidstyle adapt` (conftest `tiny_model`), so no test trains.
Outputs are checked with PyAV directly (timestamps, audio) or with the io layer's reader
(upright frames).
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.synth import frame_id, frame_image, make_clip, make_sequence
from vidstyle.io import fit_size, open_reader, probe
from vidstyle.pipeline import stylizer as stylizer_module

pytestmark = pytest.mark.usefixtures("torch_one_thread", "isolated_cache")

AAC_FRAME = 1024 / 48000  # audio is cut at packet boundaries: one AAC frame of slack


@pytest.fixture
def render(vidstyle_cli, style_image: Path, tiny_model: Path, tiny_opts: list[str]):
    """render(src, out, *options) -> CliResult of `vidstyle SRC STYLE OUT --model tiny ...`,
    asserting success."""

    def run(src: Path | str, out: Path | str, *options: object):
        result = vidstyle_cli(src, style_image, out, "--model", tiny_model, *tiny_opts, *options)
        assert result.code == 0, result.err
        return result

    return run


def video_times(path: Path) -> list[Fraction]:
    """Presentation times (s) of every video packet, sorted, straight from the demuxer."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        pts = sorted(p.pts for p in c.demux(stream) if p.size and p.pts is not None)
        return [p * stream.time_base for p in pts]


def audio_span(path: Path) -> tuple[float, float] | None:
    """(first, last) presentation second of the first audio stream; None without audio."""
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return None
        stream = c.streams.audio[0]
        packets = [p for p in c.demux(stream) if p.size and p.pts is not None]
        start = min(p.pts for p in packets) * stream.time_base
        end = max(p.pts + p.duration for p in packets) * stream.time_base
        return float(start), float(end)


def frames_of(path: Path | str) -> np.ndarray:
    """All frames, upright RGB, as one float32 array (N, H, W, 3)."""
    with open_reader(str(path)) as reader:
        return np.stack([f.rgb for f in reader]).astype(np.float32)


def ids_of(path: Path | str) -> list[int]:
    return [frame_id(f.astype(np.uint8)) for f in frames_of(path)]


def chroma(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel BT.709 (Cb, Cr) of RGB frames, in 8-bit levels."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return np.stack([(b - y) / 1.8556, (r - y) / 1.5748], axis=-1)


# -- timing, frames, audio ---------------------------------------------------------------------


def test_output_keeps_frame_count_rate_duration_and_audio(render, cfr_clip: Path, tmp_path: Path):
    (tmp_path / "o").mkdir()
    out = tmp_path / "o" / "out.mp4"
    result = render(cfr_clip, out)
    src, dst = probe(cfr_clip), probe(out)
    assert dst.frame_count == src.frame_count == 12
    assert dst.rate == src.rate == 25
    assert abs(dst.duration - src.duration) <= 1 / 25
    assert (dst.display_width, dst.display_height) == (64, 48)
    assert video_times(out) == video_times(cfr_clip)
    span = audio_span(out)
    assert span is not None, "the source's audio was dropped"
    assert span[1] == pytest.approx(src.duration, abs=AAC_FRAME + 0.005)
    assert "12 frames at 64x48" in result.out
    assert os.listdir(tmp_path / "o") == ["out.mp4"]  # no temporary file left beside it


def test_no_audio_option_drops_the_audio(render, cfr_clip: Path, tmp_path: Path):
    out = tmp_path / "silent.mp4"
    render(cfr_clip, out, "--no-audio")
    assert audio_span(out) is None
    assert probe(out).frame_count == 12


def test_vfr_timestamps_are_kept(render, vfr_clip: Path, tmp_path: Path):
    out = tmp_path / "vfr-out.mp4"
    render(vfr_clip, out)
    src, dst = video_times(vfr_clip), video_times(out)
    assert len(dst) == len(src) == 12
    assert [float(t) for t in dst] == pytest.approx([float(t) for t in src], abs=1e-3)
    assert probe(out).is_vfr
    assert probe(out).duration == pytest.approx(probe(vfr_clip).duration, abs=0.02)
    assert audio_span(out) is not None


def test_ntsc_rate_clip_keeps_exact_timing_and_audio(render, ntsc_clip: Path, tmp_path: Path):
    """36 frames at 45000/1499 fps, 320x240, AAC (as realshort.mp4); painted at 96 px (the
    tiny config), written at the source's size."""
    src_path = ntsc_clip
    out = tmp_path / "real.mp4"
    render(src_path, out)
    src, dst = probe(src_path), probe(out)
    assert dst.frame_count == src.frame_count == 36
    assert dst.rate == src.rate == Fraction(45000, 1499)
    assert (dst.display_width, dst.display_height) == (320, 240)
    assert [float(t) for t in video_times(out)] == pytest.approx(
        [float(t) for t in video_times(src_path)], abs=1e-4
    )
    assert abs(dst.duration - src.duration) <= 1 / float(src.rate)
    assert audio_span(out) is not None


# -- sizes and rotation ------------------------------------------------------------------------


@pytest.mark.parametrize("max_side", [0, 32])
def test_odd_input_size(render, tmp_path: Path, max_side: int):
    src = make_clip(tmp_path / "odd.mkv", size=(65, 49), frames=4, codec="ffv1", audio=False)
    out = tmp_path / "odd-out.mp4"
    render(src, out, "--max-side", max_side)
    # 0 = the source's size exactly (odd sizes too); otherwise what the io layer fits it to
    expected = (65, 49) if max_side == 0 else fit_size(65, 49, max_side)
    info = probe(out)
    assert (info.display_width, info.display_height) == expected
    assert info.frame_count == 4
    frames = frames_of(out)
    assert frames.shape == (4, expected[1], expected[0], 3)


def test_rotated_input_keeps_its_tag_and_is_stylized_upright(
    render, tmp_path: Path, style_image: Path
):
    """The network must see the picture upright: the rotated clip's result, read upright, is
    the upright clip's result (lossless ffv1 both ways, so they can be compared exactly)."""
    upright = make_clip(tmp_path / "up.mkv", frames=4, audio=False, codec="ffv1")
    turned = make_clip(tmp_path / "rot.mkv", frames=4, audio=False, codec="ffv1", rotation=90)
    render(upright, tmp_path / "up-out.mkv", "--codec", "ffv1")
    render(turned, tmp_path / "rot-out.mkv", "--codec", "ffv1")
    info = probe(tmp_path / "rot-out.mkv")
    assert info.rotation == 90
    assert (info.display_width, info.display_height) == (64, 48)
    a, b = frames_of(tmp_path / "up-out.mkv"), frames_of(tmp_path / "rot-out.mkv")
    assert a.shape == b.shape == (4, 48, 64, 3)
    assert np.abs(a - b).mean() < 1.0
    # and at strength 0 the picture comes back upright (frame ids sit bottom-left)
    render(turned, tmp_path / "rot-s0.mp4", "--strength", 0)
    assert probe(tmp_path / "rot-s0.mp4").rotation == 90
    assert ids_of(tmp_path / "rot-s0.mp4") == [0, 1, 2, 3]


# -- trims -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "first", "count"),
    [(("--start", 0.2, "--end", 0.4), 5, 5), (("--start", 0.32), 8, 4), (("--end", 0.12), 0, 3)],
)
def test_start_end_trim_frames_and_audio_and_start_at_zero(
    render, cfr_clip: Path, tmp_path: Path, options: tuple, first: int, count: int
):
    out = tmp_path / "trim.mp4"
    render(cfr_clip, out, "--strength", 0, *options)
    assert ids_of(out) == list(range(first, first + count))
    times = video_times(out)
    assert times[0] == 0
    info = probe(out)
    assert info.start_time == 0
    assert info.duration == pytest.approx(count / 25, abs=1 / 25)
    span = audio_span(out)
    assert span is not None
    assert abs(span[0]) <= AAC_FRAME + 0.005
    assert span[1] == pytest.approx(count / 25, abs=AAC_FRAME + 0.005)


# -- temporal modes ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["off", "loss-only", "carry"])
def test_other_temporal_modes_give_complete_outputs(
    render, cfr_clip: Path, tmp_path: Path, mode: str
):
    out = tmp_path / f"{mode}.mp4"
    render(cfr_clip, out, "--temporal", mode)
    info = probe(out)
    assert info.frame_count == 12
    assert info.rate == 25
    assert video_times(out) == video_times(cfr_clip)
    assert audio_span(out) is not None


# -- image sequences ---------------------------------------------------------------------------


def test_image_sequence_input(render, tmp_path: Path):
    """A `frames/%04d.png` sequence in. The CLI has no option for a sequence's frame rate, so
    it plays at the io layer's default, 24 fps."""
    pattern = make_sequence(tmp_path / "frames", name="%04d.png", frames=8)
    out = tmp_path / "from-seq.mp4"
    render(pattern, out, "--strength", 0)
    info = probe(out)
    assert info.frame_count == 8
    assert info.rate == 24
    assert info.duration == pytest.approx(8 / 24, abs=1 / 24)
    assert ids_of(out) == list(range(8))


def test_image_sequence_output(render, cfr_clip: Path, tmp_path: Path):
    (tmp_path / "out").mkdir()
    render(cfr_clip, tmp_path / "out" / "%04d.png", "--strength", 0)
    names = sorted(os.listdir(tmp_path / "out"))
    assert names == [f"{i:04d}.png" for i in range(1, 13)]
    frames = frames_of(tmp_path / "out" / "%04d.png")
    assert frames.shape == (12, 48, 64, 3)
    assert [frame_id(f.astype(np.uint8)) for f in frames] == list(range(12))


# -- colour and strength -----------------------------------------------------------------------


def test_preserve_color_keeps_the_input_chroma(render, cfr_clip: Path, tmp_path: Path):
    render(cfr_clip, tmp_path / "keep.mp4", "--preserve-color")
    render(cfr_clip, tmp_path / "style.mp4")
    src = chroma(frames_of(cfr_clip))
    kept = chroma(frames_of(tmp_path / "keep.mp4"))
    styled = chroma(frames_of(tmp_path / "style.mp4"))
    # mean Cb/Cr within a couple of levels, and pixel by pixel close (chroma subsampling and
    # clipping where stylized luma is extreme account for the rest)
    assert np.abs(kept.mean(axis=(0, 1, 2)) - src.mean(axis=(0, 1, 2))).max() < 2.5
    assert np.abs(kept - src).mean() < 5.0
    # the test means something only if stylizing changes the colours at all
    assert np.abs(styled - src).mean() > 3 * np.abs(kept - src).mean()


def test_strength_zero_returns_the_input_frames(render, cfr_clip: Path, tmp_path: Path):
    out = tmp_path / "s0.mp4"
    render(cfr_clip, out, "--strength", 0)
    out_frames, src_frames = frames_of(out), frames_of(cfr_clip)
    assert out_frames.shape == src_frames.shape
    assert np.abs(out_frames - src_frames).mean() < 3.0  # one more lossy encode
    assert ids_of(out) == list(range(12))
    reference = frame_image(0, 64, 48).astype(np.float32)
    assert np.abs(out_frames[0] - reference).mean() < 6.0


# -- failures leave nothing behind -------------------------------------------------------------


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize(
    ("mode", "error", "exit_code"),
    [("warm", Boom, 1), ("off", Boom, 1), ("warm", KeyboardInterrupt, 130)],
)
def test_failure_mid_render_leaves_no_output_and_no_temp_file(
    vidstyle_cli,
    style_image: Path,
    tiny_model: Path,
    tiny_opts: list[str],
    cfr_clip: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    error: type[BaseException],
    exit_code: int | None,
):
    """The network fails after 9 of 12 frames (mid-batch in frame-parallel mode): the output
    that was there before (-y: to be replaced) is untouched and no temporary file remains; an
    unexpected error is one line naming the input and the log with its traceback."""
    out_dir = tmp_path / "outputs"
    out_dir.mkdir()
    out = out_dir / "out.mp4"
    out.write_bytes(b"an earlier result")
    original = stylizer_module.Stylizer.network
    seen = 0

    def failing_network(self, frames, *args, **kwargs):
        nonlocal seen
        seen += frames.shape[0]
        if seen > 9:
            raise error()
        return original(self, frames, *args, **kwargs)

    monkeypatch.setattr(stylizer_module.Stylizer, "network", failing_network)
    args = (cfr_clip, style_image, out, "--model", tiny_model, *tiny_opts, "--temporal", mode)
    result = vidstyle_cli(*args, "-y")
    assert result.code == exit_code
    assert len(result.err_lines) == 1, result.err
    assert "Traceback" not in result.err
    if error is Boom:
        line = result.err_lines[0]
        assert line.startswith(f"vidstyle: error: {cfr_clip}: internal error (Boom)")
        log = Path(line.split("traceback in ")[1].split(" (--debug")[0])
        assert "Boom" in log.read_text() and "failing_network" in log.read_text()
    assert seen > 9, "the failure was never triggered"
    assert os.listdir(out_dir) == ["out.mp4"]
    assert out.read_bytes() == b"an earlier result"
