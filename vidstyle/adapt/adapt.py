"""`adapt`: get a StyleNet for a style image and some footage, from the cache or by training."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from vidstyle.adapt.cache import cached_model_path, content_fingerprint, file_sha256, model_key
from vidstyle.adapt.data import RunSampler, content_runs
from vidstyle.adapt.trainer import TrainingLog, train_stylenet
from vidstyle.config import Settings, training_mode
from vidstyle.errors import StyleImageError
from vidstyle.io import fit_size, load_image, probe
from vidstyle.models.device import Runtime
from vidstyle.models.store import ModelCard, load_model, save_model
from vidstyle.models.stylenet import StyleNet, StyleNetConfig


@dataclass
class Adapted:
    """The adapted network, its file (None if not saved), and whether this call trained it."""

    net: StyleNet
    card: ModelCard
    path: Path | None
    trained: bool
    log: TrainingLog | None = None


def network_config(settings: Settings) -> StyleNetConfig:
    n = settings.network
    return StyleNetConfig(
        tuple(n.channels), n.residual_blocks, n.outer_kernel, n.carry_max, n.antialias
    )


def work_side(sources: list[Path], max_side: int) -> int:
    """The long side the network will work at on this footage (the first video decides)."""
    for source in sources:
        try:
            info = probe(source)
        except Exception:  # a folder or still image: fall through to the setting
            continue
        w, h = fit_size(info.display_width, info.display_height, max_side)
        return max(w, h)
    return max_side or 1024


def training_fingerprint(settings: Settings, side: int) -> dict:
    """Exactly the settings that change the trained weights (and nothing that doesn't)."""
    return {
        "network": dataclasses.asdict(settings.network),
        "adapt": dataclasses.asdict(settings.adapt),
        "work_side": side,
        "temporal": training_mode(settings.render.temporal),
        "flow_max_side": settings.render.flow_max_side,
        "flow": settings.render.flow,
        "model_format": 1,
    }


def style_tensor(style_path: Path, long_side: int) -> torch.Tensor:
    image = load_image(style_path)
    h, w = image.shape[:2]
    if min(h, w) < 16:
        raise StyleImageError(f"style image is too small ({w}x{h})", style_path)
    scale = long_side / max(h, w)
    size = (max(16, round(w * scale)), max(16, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(image, size, interpolation=interp)
    return torch.from_numpy(np.ascontiguousarray(resized)).permute(2, 0, 1)[None].float() / 255


def adapt(
    style_path: Path,
    content: list[Path],
    settings: Settings,
    runtime: Runtime,
    *,
    output: Path | None = None,
    use_cache: bool = True,
    cache_directory: Path | None = None,
    progress: bool = True,
) -> Adapted:
    """Return a model adapted to `style_path` on `content`, training only when not cached.

    With `output`, the model is (also) written there — `vidstyle adapt STYLE -o MODEL`.
    """
    style_path = Path(style_path)
    if not style_path.is_file():
        raise StyleImageError("style image not found", style_path)
    load_image(style_path)  # fail fast, before decoding any footage, if it is unreadable
    side = work_side(content, settings.render.max_side)
    fingerprint = training_fingerprint(settings, side)
    style_sha = file_sha256(style_path)
    key = model_key(style_sha, fingerprint, [content_fingerprint(p) for p in content])
    cached = cached_model_path(key, cache_directory)
    if use_cache and cached.is_file() and cached.with_suffix(".json").is_file():
        net, card = load_model(cached)
        if output is not None:
            save_model(net, card, output)
        return Adapted(net, card, output or cached, trained=False)

    a = settings.adapt
    temporal = training_mode(settings.render.temporal)
    length = {"off": 1, "loss-only": a.sequence_length}.get(temporal, a.burn_in + a.sequence_length)
    runs = content_runs(
        content,
        max_side=side,
        runs=a.sample_runs,
        length=length,
        flow_max_side=settings.render.flow_max_side,
        flow=settings.render.flow,
    )
    sampler = RunSampler(runs, a.crop, seed=a.seed)
    style = style_tensor(style_path, max(16, round(side * a.style_scale)))
    torch.manual_seed(a.seed)
    net = StyleNet(network_config(settings))
    bar = tqdm(
        total=a.steps,
        desc="adapting",
        unit="step",
        disable=not progress,
        leave=False,
        dynamic_ncols=True,
    )

    def on_step(step: int, losses: dict[str, float]) -> None:
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)

    try:
        log = train_stylenet(net, sampler, style, a, runtime, temporal, on_step)
    finally:
        bar.close()
    card = ModelCard(
        network=net.config,
        work_side=side,
        style={"name": style_path.name, "sha256": style_sha},
        training={
            **fingerprint,
            "device": runtime.describe(),
            "losses": log.summary(),
            "content_sources": [p.name for p in content],
        },
    )
    net = net.to("cpu").eval()
    if use_cache:
        save_model(net, card, cached)
    if output is not None:
        save_model(net, card, output)
    saved = output or (cached if use_cache else None)
    return Adapted(net, card, saved, trained=True, log=log)
