"""Shared fixtures. Append yours; don't rewrite others'.

Synthetic clips come from tests/synth.py (PyAV only); the session-scoped ones below are made
once per test run and must be treated as read-only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest

from tests.synth import make_clip

# -- media (vidstyle.io) ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("synth")


@pytest.fixture(scope="session")
def cfr_clip(synth_dir: Path) -> Path:
    """64x48, 12 frames at 25 fps, H.264 + AAC, in .mp4 (read-only)."""
    return make_clip(synth_dir / "cfr.mp4", frames=12, audio=True)


@pytest.fixture(scope="session")
def vfr_clip(synth_dir: Path) -> Path:
    """64x48, 12 frames with durations cycling 40/40/80/20/60 ms, H.264 + AAC (read-only)."""
    return make_clip(synth_dir / "vfr.mp4", frames=12, vfr=True, audio=True)


@pytest.fixture(scope="session")
def gop_clip(synth_dir: Path) -> Path:
    """64x48, 24 frames, keyframe every 8, B-frames, no audio, .mkv (read-only)."""
    return make_clip(synth_dir / "gop.mkv", frames=24, audio=False, gop=8, bframes=2)


# -- end-to-end: CLI and pipeline (tests/test_cli.py, tests/test_pipeline.py) ----------------

TINY_CONFIG = """\
[network]
channels = [4, 8, 8]
residual_blocks = 1
outer_kernel = 3
[adapt]
start = "random"  # the shipped meta start is for the slim network, not this tiny one
random_steps = 3
batch_size = 1
crop = 32
sample_runs = 2
[render]
max_side = 96
[encode]
preset = "ultrafast"
"""


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def _invoke(argv: list[str]) -> int:
    from vidstyle.cli import main

    try:
        main(argv)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        return 1
    return 0


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    import cv2
    import torch

    before = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])


@pytest.fixture(scope="module")
def torch_one_thread() -> Iterator[None]:
    """One intra-op thread for torch and OpenCV in this module: on a small machine shared by
    several busy processes, two spinning OpenMP threads made the tiny network ~100x slower."""
    with _one_thread():
        yield


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty model cache for this test ($VIDSTYLE_CACHE)."""
    cache = tmp_path / "model-cache"
    monkeypatch.setenv("VIDSTYLE_CACHE", str(cache))
    return cache


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def tiny_config(e2e_dir: Path) -> Path:
    """A TOML settings file for a network small enough to adapt in a second (read-only)."""
    path = e2e_dir / "tiny.toml"
    path.write_text(TINY_CONFIG)
    return path


@pytest.fixture(scope="session")
def tiny_opts(tiny_config: Path) -> list[str]:
    """CLI options every end-to-end run uses: the tiny network, the draft preset, no bars."""
    return ["--config", str(tiny_config), "--preset", "draft", "-q"]


@pytest.fixture(scope="session")
def style_image(e2e_dir: Path) -> Path:
    """A 48x40 PNG of saturated blue/orange stripes with noise: colours far from the clips'."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(7)
    img = np.zeros((40, 48, 3), np.uint8)
    img[:, :] = (30, 60, 220)
    img[:, ::6] = (240, 150, 20)
    img[:, 1::6] = (240, 150, 20)
    img = np.clip(img.astype(int) + rng.integers(-30, 30, img.shape), 0, 255).astype(np.uint8)
    path = e2e_dir / "style.png"
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="session")
def tiny_model(
    e2e_dir: Path,
    style_image: Path,
    cfr_clip: Path,
    tiny_opts: list[str],
) -> Path:
    """A model made once by `vidstyle adapt STYLE -o MODEL --content cfr_clip` (read-only).
    Trained for warm mode, whose chains also train the cold path: one model serves every
    temporal mode in the tests."""
    path = e2e_dir / "tiny-model.safetensors"
    with pytest.MonkeyPatch.context() as mp, _one_thread():
        mp.setenv("VIDSTYLE_CACHE", str(e2e_dir / "adapt-cache"))
        argv = ["adapt", str(style_image), "-o", str(path), "--content", str(cfr_clip)]
        argv += ["--temporal", "warm"]
        code = _invoke([*argv, *tiny_opts])
    assert code == 0, f"`vidstyle adapt` failed with exit status {code}"
    return path


@pytest.fixture
def vidstyle_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run the command line in this process: `vidstyle_cli(*args)` -> CliResult(code, out,
    err). Arguments go through `vidstyle.cli.main`, so `IN STYLE OUT` means `run IN STYLE OUT`."""

    def invoke(*args: object) -> CliResult:
        capsys.readouterr()
        code = _invoke([str(a) for a in args])
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return invoke


# -- generated stand-ins for the real sample clips (same properties on every machine) --------


@pytest.fixture(scope="session")
def ntsc_clip(synth_dir: Path) -> Path:
    """Like realshort.mp4: 320x240, 36 frames at 45000/1499 fps, H.264 + AAC, .mp4 (read-only)."""
    rate = Fraction(45000, 1499)
    return make_clip(synth_dir / "ntsc.mp4", size=(320, 240), frames=36, rate=rate, audio=True)


@pytest.fixture(scope="session")
def bframes_clip(synth_dir: Path) -> Path:
    """Like bikes.mp4: 160x68 H.264 with B-frames, 110 frames at 25 fps, a keyframe every 48,
    no audio, .mp4 (read-only)."""
    return make_clip(
        synth_dir / "bframes.mp4", size=(160, 68), frames=110, audio=False, gop=48, bframes=3
    )


@pytest.fixture(scope="session")
def surround_clip(synth_dir: Path) -> Path:
    """Like bigbuckbunny.mp4's sound: 5.1 AAC; 128x72, 100 frames (4 s) at 25 fps, .mp4
    (read-only)."""
    return make_clip(synth_dir / "surround.mp4", size=(128, 72), frames=100, channels=6)


@pytest.fixture(scope="session")
def blue_jpeg(synth_dir: Path) -> Path:
    """Like starry_night.jpg: a 752x600 JPEG, mostly blue, with texture (read-only)."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    bgr = np.empty((600, 752, 3), np.uint8)
    bgr[..., 0] = rng.integers(120, 255, (600, 752))  # OpenCV writes BGR: blue first
    bgr[..., 1] = rng.integers(40, 160, (600, 752))
    bgr[..., 2] = rng.integers(0, 100, (600, 752))
    path = synth_dir / "blue.jpg"
    cv2.imwrite(str(path), bgr)
    return path
