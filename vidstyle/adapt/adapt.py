"""`adapt`: get a StyleNet for a style image and some footage, from the cache or by training."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from vidstyle.adapt.cache import cached_model_path, content_fingerprint, file_sha256, model_key
from vidstyle.adapt.data import RunSampler, content_runs
from vidstyle.adapt.trainer import TrainingLog, train_stylenet
from vidstyle.config import Settings, adaptation_steps, training_mode, uses_meta_start
from vidstyle.errors import ConfigError, StyleImageError
from vidstyle.io import fit_size, load_image, probe
from vidstyle.models.device import Runtime
from vidstyle.models.meta_start import MetaStart, load_start, read_card, start_path
from vidstyle.models.predictor import STAT_LAYERS, style_statistics
from vidstyle.models.store import ModelCard, load_model, save_model
from vidstyle.models.stylenet import StyleNet, StyleNetConfig, set_style_parameters
from vidstyle.models.vgg import VGG19Features


@dataclass
class Adapted:
    """The adapted network, its file (None if not saved), and whether this call trained it."""

    net: StyleNet
    card: ModelCard
    path: Path | None
    trained: bool
    log: TrainingLog | None = None


def network_config(settings: Settings) -> StyleNetConfig:
    """The network the settings describe: `settings.network` itself (one type, frozen)."""
    return settings.network


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


def runs_on_cpu(settings: Settings) -> bool:
    """Whether adaptation will run on a CPU (it decides the step count)."""
    device = settings.render.device
    return not torch.cuda.is_available() if device == "auto" else device.startswith("cpu")


def training_fingerprint(settings: Settings, side: int, on_cpu: bool | None = None) -> dict:
    """Exactly the settings that change the trained weights, and nothing that doesn't: the
    adapted-model cache key (with the style's and the footage's identity), recorded on the card.

    It follows what `adapt` and `train_stylenet` read. Rendering (strength, colour, tiles,
    lanes, the output's size, the working space...) and encoding never enter; neither do the
    device and precision, beyond the step count they choose (they change the weights only by
    rounding). tests/test_adapt.py lists both sides.
    """
    on_cpu = runs_on_cpu(settings) if on_cpu is None else on_cpu
    a = settings.adapt
    temporal = training_mode(settings.render.temporal)
    steps = adaptation_steps(settings, on_cpu)
    meta = uses_meta_start(settings)
    start = read_card(start_path(a.meta_start)).get("weights_sha256", "") if meta else "random"
    adapt = {
        "start": start,  # the start's own identity, whichever name or file chose it
        "steps": steps,
        # the footage sampled (the batch-norm statistics are re-estimated on it even at 0 steps)
        "seed": a.seed,
        "crop": a.crop,
        "sample_runs": a.sample_runs,
        "style_scale": a.style_scale,
    }
    if temporal != "off":  # runs of several frames (per-frame training samples single frames)
        adapt["sequence_length"] = a.sequence_length
    if temporal == "warm":
        adapt["burn_in"] = a.burn_in
    if steps > 0:  # the optimisation itself (0 steps from the meta start: its prediction)
        names = ["batch_size", "content_weight", "style_weight", "tv_weight", "colour_weight"]
        names += ["meta_affine_lr", "meta_body_lr", "meta_schedule"] if meta else ["learning_rate"]
        names += ["temporal_weight"] if temporal != "off" else []
        adapt.update({name: getattr(a, name) for name in names})
    fingerprint = {
        "network": settings.network.to_dict(),
        "adapt": adapt,
        "work_side": side,
        "temporal": temporal,
        "model_format": 1,
    }
    if temporal != "off" and steps > 0:  # only the temporal loss and the warm chain use flow
        fingerprint["flow"] = [settings.render.flow, settings.render.flow_max_side]
    return fingerprint


def initial_network(
    settings: Settings, style: torch.Tensor, start: MetaStart | None = None
) -> tuple[StyleNet, dict]:
    """Where training starts: the meta start with this style's predicted (gamma, beta), or a
    random network. Returns the network and what the model card records about the start."""
    config = network_config(settings)
    torch.manual_seed(settings.adapt.seed)
    if not uses_meta_start(settings):
        return StyleNet(config), {"start": "random"}
    start = start or load_start(settings.adapt.meta_start)
    if start.config != config:
        raise ConfigError(
            f"the meta-learned start {settings.adapt.meta_start!r} is for network channels "
            f"{list(start.config.channels)}, {start.config.residual_blocks} residual blocks, "
            f"kernel {start.config.outer_kernel}; this preset's network differs: set "
            '[adapt] start = "random", or a meta_start trained for this network'
        )
    vgg = VGG19Features(STAT_LAYERS)
    with torch.no_grad():
        vector = start.style_vector(style_statistics(vgg(style)))
    net = copy.deepcopy(start.body)
    set_style_parameters(net, vector)
    return net, {"start": "meta", "meta_start_sha256": start.sha256}


def style_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """The size a style image is resized to for its targets (and in a corpus pack)."""
    scale = long_side / max(width, height)
    return max(16, round(width * scale)), max(16, round(height * scale))


def style_tensor(style_path: Path, long_side: int) -> torch.Tensor:
    image = load_image(style_path)
    h, w = image.shape[:2]
    if min(h, w) < 16:
        raise StyleImageError(f"style image is too small ({w}x{h})", style_path)
    interp = cv2.INTER_AREA if long_side < max(h, w) else cv2.INTER_CUBIC
    resized = cv2.resize(image, style_size(w, h, long_side), interpolation=interp)
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
    on_cpu = runtime.device.type == "cpu"
    fingerprint = training_fingerprint(settings, side, on_cpu)
    steps = adaptation_steps(settings, on_cpu)
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
    net, start = initial_network(settings, style)
    bar = tqdm(
        total=steps,
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
        log = train_stylenet(
            net,
            sampler,
            style,
            a,
            runtime,
            temporal,
            on_step,
            steps=steps,
            from_meta=start["start"] == "meta",
        )
    finally:
        bar.close()
    card = ModelCard(
        network=net.config,
        work_side=side,
        style={"name": style_path.name, "sha256": style_sha},
        training={
            **fingerprint,
            **start,
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
