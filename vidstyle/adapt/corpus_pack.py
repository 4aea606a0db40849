"""A corpus packed at the work size, small enough to travel to a lent GPU machine.

Why: meta-training runs about 25 times faster on a GPU than on one CPU core (README,
Measured), but such a machine is reached only with what is copied to it, 64 MiB a call, and
the gathered corpus is about 64 MB of images mostly larger than training ever looks at. Every
image is seen at the work size's long side (styles by `style_tensor`, content by
`images_at_side`), so a pack stores larger images already resized exactly as training would
(JPEG at a high quality) and smaller ones byte for byte; what training computes from a pack
differs from the original corpus by the JPEG re-encoding alone.

A pack is a corpus of its own: its manifest lists the packed files with their own sha256, keeps
each item's source, licence and original sha256, and says what it was derived from, so a start
trained on it says so (its corpus hash is the pack's, and run folders of the two don't mix).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2

from vidstyle.adapt.adapt import style_size
from vidstyle.adapt.corpus import CorpusError, load_corpus
from vidstyle.io import fit_size, load_image
from vidstyle.models.store import file_sha256


def pack_corpus(source: Path, out: Path, side: int = 384, quality: int = 95) -> Path:
    """Write the pack of the corpus at `source` to the new folder `out`; returns its manifest.
    Written under a temporary name and renamed, so a stopped run leaves no half pack."""
    out = Path(out)
    if out.exists():
        raise CorpusError("already exists: pack into a new folder", out)
    corpus = load_corpus(source)  # verifies every original against its sha256
    entries = json.loads((Path(source) / "manifest.json").read_text())["items"]
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    items = []
    for entry in entries:
        original = Path(source) / entry["file"]
        image = load_image(original)
        height, width = image.shape[:2]
        relative = Path(entry["file"])
        if max(width, height) > side:
            size = (
                style_size(width, height, side)  # as style_tensor: a no-op on the pack
                if entry["kind"] == "style"
                else fit_size(width, height, side)
            )
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            relative = relative.with_suffix(".jpg")
            target = partial / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(target), image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality]):
                raise CorpusError("could not be written", target)
        else:
            target = partial / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(original, target)
        items.append(
            {
                **entry,
                "file": relative.as_posix(),
                "sha256": file_sha256(target),
                "packed_from_sha256": entry["sha256"],
                "width": image.shape[1],
                "height": image.shape[0],
            }
        )
    manifest = {
        "version": 1,
        "created_by": "vidstyle meta pack",
        "derived_from": {
            "manifest_sha256": corpus.manifest_sha256,
            "side": side,
            "jpeg_quality": quality,
        },
        "items": items,
    }
    (partial / "manifest.json").write_text(json.dumps(manifest, indent=1))
    os.replace(partial, out)
    return out / "manifest.json"
