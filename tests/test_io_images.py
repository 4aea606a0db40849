"""Style images and output paths: load_image, atomic_path, check_writable, suffixes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vidstyle.errors import MediaError, StyleImageError
from vidstyle.io import VIDEO_SUFFIXES, atomic_path, check_writable, load_image


def test_load_jpeg(blue_jpeg: Path) -> None:
    img = load_image(blue_jpeg)
    assert img.shape == (600, 752, 3) and img.dtype == np.uint8
    # RGB order: the picture is mostly blue
    assert img[..., 2].mean() > img[..., 0].mean()


def test_alpha_is_composited_over_white(tmp_path: Path) -> None:
    bgra = np.zeros((10, 10, 4), np.uint8)
    bgra[..., 2] = 255  # red
    bgra[:5, :, 3] = 255  # top half opaque, bottom transparent
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    img = load_image(tmp_path / "a.png")
    assert img.shape == (10, 10, 3)
    assert img[0, 0].tolist() == [255, 0, 0]
    assert img[-1, -1].tolist() == [255, 255, 255]


def test_sixteen_bit_and_grey(tmp_path: Path) -> None:
    deep = np.full((4, 4, 3), 0, np.uint16)
    deep[..., 1] = 65535
    cv2.imwrite(str(tmp_path / "d.png"), deep)
    assert load_image(tmp_path / "d.png")[0, 0].tolist() == [0, 255, 0]
    cv2.imwrite(str(tmp_path / "g.png"), np.full((4, 5), 128, np.uint8))
    grey = load_image(tmp_path / "g.png")
    assert grey.shape == (4, 5, 3) and grey[0, 0].tolist() == [128, 128, 128]


def test_exif_orientation_applied(tmp_path: Path) -> None:
    pil = pytest.importorskip("PIL.Image")
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[:, :20] = 255  # left half white
    exif = pil.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    pil.fromarray(rgb).save(tmp_path / "phone.jpg", exif=exif.tobytes())
    img = load_image(tmp_path / "phone.jpg")
    assert img.shape == (40, 20, 3)
    assert img[:10].mean() > 200 and img[-10:].mean() < 50  # left half became the top


@pytest.mark.parametrize(
    ("name", "content", "phrase"),
    [
        ("missing.png", None, "not found"),
        ("notes.jpg", b"definitely not a jpeg" * 10, "not a readable image"),
        ("empty.png", b"", "empty"),
    ],
)
def test_unreadable_style_image_is_one_line(
    tmp_path: Path, name: str, content: bytes | None, phrase: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(StyleImageError) as e:
        load_image(path)
    assert str(path) in str(e.value) and phrase in str(e.value) and "\n" not in str(e.value)


def test_atomic_path_success_and_failure(tmp_path: Path) -> None:
    final = tmp_path / "result.mp4"
    final.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(final) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".mp4" and tmp.name.startswith(".")
        tmp.write_bytes(b"half")
        raise RuntimeError
    assert final.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == [
        "result.mp4"
    ]
    with atomic_path(final) as tmp:
        tmp.write_bytes(b"new")
    assert final.read_bytes() == b"new" and len(list(tmp_path.iterdir())) == 1


def test_check_writable(tmp_path: Path) -> None:
    check_writable(tmp_path / "ok.mp4")
    with pytest.raises(MediaError, match="does not exist"):
        check_writable(tmp_path / "missing" / "x.mp4")
    with pytest.raises(MediaError, match="is a directory"):
        check_writable(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(MediaError, match="not a directory"):
        check_writable(tmp_path / "file" / "x.mp4")


def test_video_suffixes() -> None:
    assert {".mp4", ".mov", ".mkv", ".webm", ".avi"} <= VIDEO_SUFFIXES
    assert not {".png", ".jpg", ".txt"} & VIDEO_SUFFIXES
