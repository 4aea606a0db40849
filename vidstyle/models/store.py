"""Model files: weights as safetensors plus a JSON sidecar of settings.

Loading a model never executes code (no pickle), so models can be shared between users and farm
machines safely. The JSON says what network to build and how it was adapted, so a model file is
self-describing and `vidstyle info model.safetensors` can show it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from vidstyle.errors import ModelError
from vidstyle.models.stylenet import StyleNet, StyleNetConfig

FORMAT = "vidstyle-stylenet"
FORMAT_VERSION = 1


@dataclass
class ModelCard:
    """What a model file says about itself (the JSON sidecar)."""

    network: StyleNetConfig
    work_side: int  # long side of the frames it was adapted at: strokes are sized for it
    style: dict = field(default_factory=dict)  # style image name, sha256, size
    training: dict = field(default_factory=dict)  # adaptation settings and final losses

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "network": self.network.to_dict(),
            "work_side": self.work_side,
            "style": self.style,
            "training": self.training,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ModelCard:
        return cls(
            network=StyleNetConfig.from_dict(data["network"]),
            work_side=int(data["work_side"]),
            style=dict(data.get("style", {})),
            training=dict(data.get("training", {})),
        )


def sidecar_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks (identity of style images and weights)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(path: Path, write) -> None:
    """Write via a temporary name in the same folder, then rename: readers never see half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_model(net: StyleNet, card: ModelCard, path: str | Path) -> Path:
    """Write `path` (.safetensors) and its .json sidecar, each atomically; JSON last."""
    path = Path(path)
    state = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, str(tmp), metadata={"format": FORMAT}))
    text = json.dumps(card.to_dict(), indent=2, sort_keys=True)
    atomic_write(sidecar_path(path), lambda tmp: tmp.write_text(text))
    return path


def read_sidecar(path: Path, fmt: str, version: int, what: str) -> dict:
    """The JSON beside weights `path`, checked to be of format `fmt` and not newer than
    `version`; every problem is one ModelError naming the file."""
    path = Path(path)
    meta = sidecar_path(path)
    if not path.is_file():
        raise ModelError(f"{what} not found", path)
    if not meta.is_file():
        raise ModelError(f"its settings file {meta.name} is missing beside it", path)
    try:
        data = json.loads(meta.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"unreadable {what} settings ({exc})", meta) from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise ModelError(f"not a vidstyle {what} settings file", meta)
    if int(data.get("format_version", 0)) > version:
        raise ModelError(f"{what} was written by a newer vidstyle; upgrade to load it", meta)
    return data


def load_card(path: str | Path) -> ModelCard:
    data = read_sidecar(Path(path), FORMAT, FORMAT_VERSION, "model")
    meta = sidecar_path(Path(path))
    try:
        return ModelCard.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"incomplete model settings ({exc})", meta) from exc


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[StyleNet, ModelCard]:
    """Build the network the sidecar describes and load its weights (eval mode, not fused)."""
    path = Path(path)
    card = load_card(path)
    net = StyleNet(card.network)
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise ModelError(f"corrupt model weights ({exc})", path) from exc
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError("weights don't match the network its settings describe", path) from exc
    return net.to(device).eval(), card
