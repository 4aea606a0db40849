"""The adapted-model cache: a second run with the same style and settings skips adaptation.

Key = SHA-256 over the style image's bytes, the settings that change the trained weights (exactly
those: `adapt.training_fingerprint`), and a fingerprint of the training footage (the network is
adapted to it). Entries are ordinary model files (safetensors + JSON), written atomically, so a
crash never leaves a half-written entry and several processes (a batch, farm tasks) can share one
cache directory.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from vidstyle.models.store import file_sha256

__all__ = ["file_sha256"]  # re-exported: callers hash styles and models through the cache

_CHUNK = 1 << 20


def cache_dir() -> Path:
    """$VIDSTYLE_CACHE, else $XDG_CACHE_HOME/vidstyle, else ~/.cache/vidstyle."""
    if os.environ.get("VIDSTYLE_CACHE"):
        return Path(os.environ["VIDSTYLE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vidstyle"


def content_fingerprint(path: Path) -> str:
    """Cheap identity of a (possibly huge) media file or folder: size plus sampled bytes.

    Hashing a whole 50 GB master would take minutes; size + first/middle/last MiB tells footage
    apart in practice and is the same for a copy of the file on another machine.
    """
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(f"{child.relative_to(path)}:{child.stat().st_size}\n".encode())
        return digest.hexdigest()
    if not path.exists():  # an image-sequence pattern: fingerprint its folder listing
        return content_fingerprint(path.parent) if path.parent.is_dir() else str(path)
    size = path.stat().st_size
    digest.update(str(size).encode())
    with path.open("rb") as fh:
        for offset in (0, max(0, size // 2 - _CHUNK // 2), max(0, size - _CHUNK)):
            fh.seek(offset)
            digest.update(fh.read(_CHUNK))
    return digest.hexdigest()


def model_key(style_sha256: str, settings: dict, content: list[str]) -> str:
    blob = json.dumps(
        {"style": style_sha256, "settings": settings, "content": sorted(content)}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def cached_model_path(key: str, directory: Path | None = None) -> Path:
    return (directory or cache_dir()) / "models" / f"{key}.safetensors"
