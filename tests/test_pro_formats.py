"""Pro formats (issue 17): what the stylization does not touch passes through. 10-bit video and
16-bit PNG keep their levels, scene-linear EXR keeps values above 1.0, HDR comes back as it went
in at --strength 0, alpha is carried untouched, and image sequences keep their frame numbers
(1001...), also through a farm chunk. Every input is generated here with PyAV/OpenCV; runs use
a tiny untrained network (the network's paint is irrelevant at --strength 0)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from av.video.reformatter import ColorRange, Colorspace

from vidstyle.io import open_reader, probe, write_image
from vidstyle.io.images import read_plate
from vidstyle.models.store import ModelCard, save_model
from vidstyle.models.stylenet import StyleNet, StyleNetConfig

PQ, HLG, BT709_TRC = 16, 18, 1
BT2020, BT709 = 9, 1


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random (untrained) tiny network: at --strength 0 only the frame path matters."""
    import torch

    torch.manual_seed(0)
    config = StyleNetConfig((4, 8, 8), 1, 3)
    folder = tmp_path_factory.mktemp("pro-model")
    return save_model(StyleNet(config).eval(), ModelCard(config, 96), folder / "tiny.safetensors")


@pytest.fixture
def run(vidstyle_cli, style_image: Path, tiny_model: Path, tiny_opts: list[str]):
    """run(src, out, *options) -> CliResult of the main job at --strength 0."""

    def invoke(src: Path | str, out: Path | str, *options: object):
        args = ["--model", tiny_model, *tiny_opts, "--strength", "0", "--work-side", "256"]
        return vidstyle_cli(src, style_image, out, *args, *options)

    return invoke


# -- generated media -------------------------------------------------------------------------


def ramp16(width: int, height: int, lo: int = 256, hi: int = 767) -> np.ndarray:
    """Grey ramp, one 10-bit level per pixel from `lo` to `hi` along each row, as 16-bit RGB."""
    levels = np.linspace(lo, hi, width).round().astype(np.uint16)
    row = levels << 6 | levels >> 4  # 10-bit -> 16-bit, as swscale scales
    return np.repeat(np.repeat(row[None, :, None], height, axis=0), 3, axis=2)


def alpha_ramp16(width: int, height: int) -> np.ndarray:
    """A vertical alpha gradient (transparent at the top), 16-bit."""
    column = np.linspace(0, 65535, height).round().astype(np.uint16)
    return np.repeat(column[:, None], width, axis=1)


def make_video(
    path: Path,
    codec: str,
    pix_fmt: str,
    *,
    frames: int = 3,
    size: tuple[int, int] = (512, 96),
    trc: int = BT709_TRC,
    primaries: int = BT709,
    alpha: bool = False,
    options: dict[str, str] | None = None,
) -> Path:
    """A short clip of the 10-bit ramp (moving one pixel per frame) with the given tags."""
    width, height = size
    matrix = Colorspace.BT2020 if primaries == BT2020 else Colorspace.ITU709
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=24)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        cc = stream.codec_context
        cc.options = dict(options or {})
        cc.color_primaries, cc.color_trc = primaries, trc
        cc.colorspace = 9 if primaries == BT2020 else 1
        cc.color_range = 1
        for i in range(frames):
            rgb = np.roll(ramp16(width, height), i, axis=1)
            layout = "rgb48le"
            if alpha:
                rgb, layout = np.dstack([rgb, alpha_ramp16(width, height)]), "rgba64le"
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format=layout)
            frame = frame.reformat(
                format=pix_fmt, dst_colorspace=matrix, dst_color_range=ColorRange.MPEG
            )
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def plane(path: Path, index: int, frame_number: int = 0) -> np.ndarray:
    """Plane `index` (0 = luma, 3 = alpha) of a decoded frame, as stored (no conversion)."""
    with av.open(str(path)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i == frame_number:
                p = frame.planes[index]
                dtype = np.uint16 if frame.format.components[0].bits > 8 else np.uint8
                size = np.dtype(dtype).itemsize
                rows = np.frombuffer(bytes(p), dtype=dtype).reshape(-1, p.line_size // size)
                return rows[: p.height, : p.width].copy()
    raise AssertionError(f"{path} has no frame {frame_number}")


def distinct_levels(luma: np.ndarray) -> int:
    return len(np.unique(luma[luma.shape[0] // 2]))


# -- depth -----------------------------------------------------------------------------------


def test_ten_bit_prores_keeps_its_levels(run, tmp_path: Path):
    src = make_video(tmp_path / "ramp.mov", "prores_ks", "yuv422p10le")
    out = tmp_path / "out.mov"
    result = run(src, out, "--codec", "prores_ks")
    assert result.code == 0, result.err
    source_levels = distinct_levels(plane(src, 0))
    assert source_levels > 400  # the ramp has one level per pixel
    assert probe(out).bit_depth == 10
    kept = distinct_levels(plane(out, 0))
    assert kept >= 0.95 * source_levels, f"{kept} of {source_levels} levels kept"
    # and the picture itself: within ProRes's own error
    diff = np.abs(plane(out, 0).astype(int) - plane(src, 0).astype(int))
    assert diff.mean() < 1.0 and diff.max() <= 4


def test_ten_bit_frames_are_float_through_the_pipeline(tmp_path: Path):
    src = make_video(tmp_path / "ramp.mov", "prores_ks", "yuv422p10le", frames=1)
    with open_reader(src, deep=True) as reader:
        frame = next(iter(reader))
    assert frame.rgb.dtype == np.float32 and frame.deep
    row = frame.rgb[48, :, 1]
    assert len(np.unique(np.round(row * 1023))) > 400  # finer than 8 bits
    with open_reader(src) as reader:  # metrics and training still get 8-bit frames
        assert next(iter(reader)).rgb.dtype == np.uint8


def test_hdr10_comes_back_as_it_went_in(run, tmp_path: Path):
    src = make_video(tmp_path / "hdr.mov", "prores_ks", "yuv422p10le", trc=PQ, primaries=BT2020)
    out = tmp_path / "out.mov"
    result = run(src, out, "--codec", "prores_ks")
    assert result.code == 0, result.err
    diff = np.abs(plane(out, 0).astype(int) - plane(src, 0).astype(int))
    assert diff.mean() < 1.0 and diff.max() <= 4


def test_hdr_is_painted_in_the_display_referred_working_space(tmp_path: Path):
    """The network sees PQ footage as a picture (reference white near the top of the range),
    not as PQ code values (where diffuse white sits at 0.58)."""
    from vidstyle.io.working_space import working_space_for

    src = make_video(
        tmp_path / "hdr.mov", "prores_ks", "yuv422p10le", frames=1, trc=PQ, primaries=BT2020
    )
    info = probe(src)
    space = working_space_for(info.color_trc, info.color_primaries)
    assert not space.identity
    with open_reader(src, deep=True, space=space) as reader:
        working = next(iter(reader)).rgb
    with open_reader(src, deep=True) as reader:
        code = next(iter(reader)).rgb
    assert working.mean() > code.mean() + 0.05


def test_sixteen_bit_png_sequence_keeps_levels_and_numbers(run, tmp_path: Path):
    plates = tmp_path / "plates"
    plates.mkdir()
    ramp = np.repeat(np.arange(0, 65536, 97, dtype=np.uint16)[None, :600, None], 64, axis=0)
    ramp = np.repeat(ramp, 3, axis=2)
    for number in (1001, 1002, 1003):
        cv2.imwrite(str(plates / f"plate.{number}.png"), ramp)
    out = tmp_path / "out" / "o.####.png"
    out.parent.mkdir()
    result = run(plates / "plate.####.png", out, "--rate", "24")
    assert result.code == 0, result.err
    written = sorted(p.name for p in out.parent.iterdir())
    assert written == ["o.1001.png", "o.1002.png", "o.1003.png"]
    back = cv2.imread(str(out.parent / "o.1002.png"), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16
    kept = len(np.unique(back[32, :, 1]))
    assert kept >= 0.95 * len(np.unique(ramp[32, :, 1]))


def test_start_number_renumbers_a_sequence(run, tmp_path: Path):
    plates = tmp_path / "plates"
    plates.mkdir()
    for number in (1001, 1002):
        cv2.imwrite(str(plates / f"p.{number}.png"), np.full((16, 24, 3), 90, np.uint8))
    out = tmp_path / "o.%04d.png"
    assert run(plates / "p.####.png", out, "--rate", "24", "--start-number", "1").code == 0
    assert sorted(p.name for p in tmp_path.glob("o.*.png")) == ["o.0001.png", "o.0002.png"]


# -- scene-linear EXR and alpha ----------------------------------------------------------------


def linear_plate(width: int = 48, height: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Scene-linear RGB from 0 to 4.0 (highlights well above 1.0) and an alpha gradient."""
    x = np.linspace(0.0, 4.0, width, dtype=np.float32)
    rgb = np.stack([np.tile(x, (height, 1)) * k for k in (1.0, 0.5, 0.25)], axis=2)
    alpha = np.tile(np.linspace(0, 1, height, dtype=np.float32)[:, None], (1, width))
    return rgb.astype(np.float32), alpha


def test_exr_highlights_alpha_and_numbers_survive(run, tmp_path: Path):
    plates = tmp_path / "plates"
    plates.mkdir()
    rgb, alpha = linear_plate()
    for number in (1001, 1002, 1003):
        write_image(plates / f"shot.{number}.exr", rgb, alpha=alpha)
    assert probe(str(plates / "shot.####.exr"), rate=Fraction(24)).has_alpha
    out = tmp_path / "out" / "st.####.exr"
    out.parent.mkdir()
    result = run(plates / "shot.####.exr", out, "--rate", "24")
    assert result.code == 0, result.err
    names = sorted(p.name for p in out.parent.iterdir())
    assert names == ["st.1001.exr", "st.1002.exr", "st.1003.exr"]
    back, back_alpha = read_plate(out.parent / "st.1002.exr")
    assert back.max() > 3.9
    np.testing.assert_allclose(back, rgb, rtol=2e-3, atol=2e-3)  # half-float precision
    assert back_alpha is not None
    np.testing.assert_allclose(back_alpha, alpha, atol=1e-3)


def test_png_alpha_passes_through_untouched(run, tmp_path: Path):
    plates = tmp_path / "plates"
    plates.mkdir()
    rng = np.random.default_rng(1)
    alpha = rng.integers(0, 256, (32, 48), dtype=np.uint8)
    for number in (1, 2):
        bgra = np.dstack([np.full((32, 48, 3), 120, np.uint8), alpha])
        cv2.imwrite(str(plates / f"a.{number:04d}.png"), bgra)
    out = tmp_path / "o.%04d.png"
    assert run(plates / "a.%04d.png", out, "--rate", "24").code == 0
    back = cv2.imread(str(tmp_path / "o.0002.png"), cv2.IMREAD_UNCHANGED)
    assert back.shape == (32, 48, 4)
    np.testing.assert_array_equal(back[..., 3], alpha)


def test_prores_4444_keeps_its_alpha(run, tmp_path: Path):
    src = make_video(tmp_path / "alpha.mov", "prores_ks", "yuva444p10le", alpha=True,
                     options={"profile": "4444"})  # fmt: skip
    assert probe(src).has_alpha
    out = tmp_path / "out.mov"
    result = run(src, out, "--codec", "prores_ks")
    assert result.code == 0, result.err
    assert probe(out).has_alpha
    # prores_ks takes 10-bit alpha and decoders give 12 bits: within one 10-bit level
    diff = np.abs(plane(out, 3).astype(int) - plane(src, 3).astype(int))
    assert diff.max() <= 4


def test_an_output_without_alpha_says_it_drops_it(run, tmp_path: Path):
    src = make_video(tmp_path / "alpha.mov", "prores_ks", "yuva444p10le", alpha=True,
                     options={"profile": "4444"})  # fmt: skip
    result = run(src, tmp_path / "out.mp4")
    assert result.code == 0, result.err
    assert sum("alpha" in line for line in result.err_lines) == 1


# -- farm ------------------------------------------------------------------------------------


def test_farm_chunks_keep_exr_values_and_frame_numbers(tmp_path: Path, style_image, tiny_model):
    from vidstyle.config import load_settings
    from vidstyle.farm.plan import plan_job
    from vidstyle.farm.tasks import run_assemble, run_chunk

    plates = tmp_path / "plates"
    plates.mkdir()
    rgb, alpha = linear_plate()
    for i in range(6):
        write_image(plates / f"shot.{1001 + i}.exr", rgb * (1 + 0.1 * i), alpha=alpha)
    settings = load_settings(
        "draft", None, {"render": {"max_side": 32, "strength": 0.0}, "encode": {"audio": False}}
    )
    job = plan_job(
        str(plates / "shot.####.exr"), style_image, str(tmp_path / "o.####.exr"), settings,
        job_path=tmp_path / "job.json", chunk=3, overlap=1, model=tiny_model,
        rate=Fraction(24), chunk_format="mkv",
    )  # fmt: skip
    for i in range(len(job.chunks)):
        run_chunk(job, i)
    run_assemble(job)
    names = sorted(p.name for p in tmp_path.glob("o.*.exr"))
    assert names == [f"o.{n}.exr" for n in range(1001, 1007)]
    back, back_alpha = read_plate(tmp_path / "o.1005.exr")
    np.testing.assert_allclose(back, rgb * 1.4, rtol=5e-3, atol=5e-3)
    assert back_alpha is not None and np.abs(back_alpha - alpha).max() < 2e-3


def test_flow_on_a_sliver_of_a_frame():
    """A 600x8 strip (a ramp plate) once crashed OpenCV's DIS: it is enlarged for the flow."""
    from vidstyle.flow.dis import DISFlow

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (8, 128, 3), dtype=np.uint8)
    b = np.roll(a, 2, axis=1)
    flow = DISFlow()(b, a)
    assert flow.shape == (8, 128, 2)
    assert np.median(flow[2:-2, 8:-8, 0]) == pytest.approx(-2, abs=0.5)


@pytest.mark.parametrize("frames", [1, 2])
def test_a_ten_bit_hevc_mp4_of_one_or_two_frames_is_written(tmp_path: Path, frames: int):
    """libx265 leaves such short clips' dts uninitialised; MP4 refused them at random."""
    from vidstyle.io import VideoWriter

    out = tmp_path / "short.mp4"
    with VideoWriter(out, width=64, height=48, rate=Fraction(24), time_base=Fraction(1, 24),
                     codec="libx265", pix_fmt="yuv420p10le") as writer:  # fmt: skip
        for i in range(frames):
            writer.write(np.full((48, 64, 3), 0.5, np.float32), i)
    assert probe(out).frame_count == frames
