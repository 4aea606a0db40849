"""Shared fixtures. Append yours; don't rewrite others'.

Synthetic clips come from tests/synth.py (PyAV only); the session-scoped ones below are made
once per test run and must be treated as read-only.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.synth import make_clip

# -- media (vidstyle.io) ---------------------------------------------------------------------

MEDIA_DIR = Path(os.environ.get("VIDSTYLE_MEDIA", "/work/shared/media"))


@pytest.fixture(scope="session")
def media_dir() -> Path:
    """The real sample clips (bigbuckbunny.mp4, bikes.mp4, realshort.mp4, ...), read-only."""
    if not (MEDIA_DIR / "realshort.mp4").is_file():
        pytest.skip(f"sample media not found in {MEDIA_DIR} (set VIDSTYLE_MEDIA)")
    return MEDIA_DIR


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
