"""Adapting a StyleNet to one style image: perceptual losses plus the temporal loss.

Each step takes a batch of short runs of consecutive frames (random crops) and walks them in time:
- `warm`: frame t gets the network's own output for t-1, warped by optical flow, as extra input
  (detached), exactly as at inference. Training on chains of the network's own outputs, not on
  ground-truth pairs, is what keeps errors from accumulating over long shots.
- `loss-only`: every frame is stylized on its own; the temporal loss still ties output t to the
  warped output t-1, so the network learns to be stable without seeing the previous frame.
- `off`: single frames, no temporal loss (the per-frame baseline).
Every frame gets content + style + total-variation losses; frames after the first also get the
masked temporal loss (luminance-aware, so lighting changes in the footage pass through).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from vidstyle.adapt.data import Batch, RunSampler
from vidstyle.config import AdaptSettings
from vidstyle.flow import warp_torch
from vidstyle.models.device import Runtime
from vidstyle.models.losses import (
    ColourTarget,
    content_loss,
    gram,
    temporal_loss,
    total_variation,
)
from vidstyle.models.stylenet import CHAIN_WARP, StyleNet, style_norms
from vidstyle.models.vgg import CONTENT_LAYER, STYLE_LAYERS, VGG19Features

# relu5_1 adds ~25% to every VGG pass and little to the look; the metric still includes it.
TRAIN_STYLE_LAYERS = STYLE_LAYERS[:4]


@dataclass
class TrainingLog:
    """Per-step losses (weighted, as optimised) so callers and tests can see them fall."""

    content: list[float] = field(default_factory=list)
    style: list[float] = field(default_factory=list)
    tv: list[float] = field(default_factory=list)
    temporal: list[float] = field(default_factory=list)
    colour: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self, last: int = 20) -> dict[str, float]:
        def tail(values: list[float]) -> float:
            return float(np.mean(values[-last:])) if values else 0.0

        return {
            "content": tail(self.content),
            "style": tail(self.style),
            "tv": tail(self.tv),
            "temporal": tail(self.temporal),
            "colour": tail(self.colour),
            "seconds": round(self.seconds, 1),
        }


class StyleTargets:
    """Gram matrices of the style image, and the normaliser that makes style weights portable."""

    def __init__(self, vgg: VGG19Features, style: torch.Tensor):
        with torch.no_grad():
            self._set(vgg(style))

    @classmethod
    def from_features(cls, feats: dict[str, torch.Tensor]) -> StyleTargets:
        """From the style's VGG features already computed (meta-training reuses them)."""
        targets = cls.__new__(cls)
        targets._set(feats)
        return targets

    @classmethod
    def from_grams(cls, grams: dict[str, torch.Tensor]) -> StyleTargets:
        """From Gram matrices computed before (meta-training's prepared corpus cache)."""
        targets = cls.__new__(cls)
        targets._set_grams(grams)
        return targets

    def _set(self, feats: dict[str, torch.Tensor]) -> None:
        self._set_grams({k: gram(feats[k]) for k in TRAIN_STYLE_LAYERS})

    def _set_grams(self, grams: dict[str, torch.Tensor]) -> None:
        self.grams = grams
        # Style losses of different images differ by orders of magnitude; dividing by the style's
        # own Gram energy makes style_weight=1 mean roughly the same stylization for any image.
        self.scale = float(sum(g.pow(2).mean() for g in self.grams.values()))

    def loss(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        total = torch.zeros((), device=feats[CONTENT_LAYER].device)
        for layer, target in self.grams.items():
            g = gram(feats[layer])
            total = total + (g - target).pow(2).mean()
        return total / self.scale


def _in_bounds(flow: torch.Tensor) -> torch.Tensor:
    """1 where x + flow(x) lands inside the crop: outside it the warped value is made up."""
    _, _, h, w = flow.shape
    ys = torch.arange(h, device=flow.device, dtype=flow.dtype).view(1, h, 1)
    xs = torch.arange(w, device=flow.device, dtype=flow.dtype).view(1, 1, w)
    tx, ty = xs + flow[:, 0], ys + flow[:, 1]
    inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    return inside.unsqueeze(1).to(flow.dtype)


def _chain_inputs(previous: torch.Tensor | None, batch: Batch, t: int):
    """The warm-start inputs for frame t: previous output warped into place, and its mask."""
    if previous is None:
        return None, None
    flow = batch.flows[:, t - 1]
    warped = warp_torch(previous, flow, mode=CHAIN_WARP).clamp_(0.0, 1.0)
    return warped, batch.masks[:, t - 1] * _in_bounds(flow)


@torch.no_grad()
def _run_chain(net: StyleNet, batch: Batch, frames: int, runtime: Runtime) -> torch.Tensor | None:
    """Run the warm-start chain over the first `frames` frames; return the last output."""
    previous = None
    for t in range(frames):
        frame = batch.frames[:, t].contiguous(memory_format=torch.channels_last)
        warm, mask = _chain_inputs(previous, batch, t)
        with runtime.autocast():
            previous = net(frame, warm, mask).float()
    return previous


@torch.no_grad()
def recalibrate_batchnorm(
    net: StyleNet,
    sampler: RunSampler,
    runtime: Runtime,
    temporal: str,
    batches: int = 8,
    batch_size: int = 4,
) -> None:
    """Recompute BN running statistics as exact averages over fresh batches of the footage.

    Running averages collected during training lag behind the weights; inference uses fixed
    statistics, so they are re-estimated once with the final weights, on the same mix of cold
    and warm-started frames the network will see.
    """
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    net.train()
    length = sampler.max_length if temporal == "warm" else 1
    for _ in range(batches):
        _run_chain(net, sampler.sample(batch_size, length, runtime.device), length, runtime)
    for m in norms:
        m.momentum = 0.1
    net.eval()


def _cosine(steps: int, floor: float = 0.1) -> Callable[[int], float]:
    """Learning-rate factor: from 1 down to `floor` along half a cosine over `steps`."""

    def factor(step: int) -> float:  # (0 steps: only batch-norm statistics are re-estimated)
        return floor + (1 - floor) * 0.5 * (
            1 + math.cos(math.pi * min(step, steps) / max(steps, 1))
        )

    return factor


def _optimiser(net: StyleNet, settings: AdaptSettings, steps: int, from_meta: bool):
    if from_meta:
        style = {id(p) for path in (0, 1) for n in style_norms(net, path) for p in n.parameters()}
        optimiser = torch.optim.Adam(
            [
                {
                    "params": [p for p in net.parameters() if id(p) in style],
                    "lr": settings.meta_affine_lr,
                },
                {
                    "params": [p for p in net.parameters() if id(p) not in style],
                    "lr": settings.meta_body_lr,
                },
            ]
        )
        if settings.meta_schedule == "cosine":
            return optimiser, torch.optim.lr_scheduler.LambdaLR(optimiser, _cosine(steps))
        return optimiser, None
    optimiser = torch.optim.Adam(net.parameters(), lr=settings.learning_rate)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=settings.learning_rate, total_steps=max(1, steps), pct_start=0.1
    )
    return optimiser, schedule


def train_stylenet(
    net: StyleNet,
    sampler: RunSampler,
    style: torch.Tensor,
    settings: AdaptSettings,
    runtime: Runtime,
    temporal: str = "warm",
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    *,
    steps: int | None = None,
    from_meta: bool = False,
) -> TrainingLog:
    """Optimise `net` in place for `steps` steps; returns the loss history.

    From a random start: one learning rate on a one-cycle schedule over `steps`. From the
    meta-learned start (`from_meta`): the style's normalisation parameters at a high constant
    rate and the shared body at a low one, so the first steps move the style, not the painter.
    """
    steps = settings.random_steps if steps is None else steps
    torch.manual_seed(settings.seed)
    device = runtime.device
    vgg = VGG19Features((*TRAIN_STYLE_LAYERS, CONTENT_LAYER)).to(device)
    vgg = vgg.to(memory_format=torch.channels_last)
    targets = StyleTargets(vgg, style.to(device))
    colour = ColourTarget(style.to(device)) if settings.colour_weight > 0 else None
    net.to(device).to(memory_format=torch.channels_last).train()
    optimiser, schedule = _optimiser(net, settings, steps, from_meta)
    length = 1 if temporal == "off" else max(2, settings.sequence_length)
    burn_in = settings.burn_in if temporal == "warm" else 0
    coin = torch.Generator().manual_seed(settings.seed)
    log = TrainingLog()
    start = time.perf_counter()
    for step in range(steps):
        # Half the chains start cold (the first frame of a shot must look right too); the other
        # half first run `burn_in` frames without gradients, so the trained frames start from
        # what the network itself carried over several frames, as deep in a long shot.
        burn = burn_in if burn_in and torch.rand((), generator=coin).item() < 0.5 else 0
        batch = sampler.sample(settings.batch_size, burn + length, device)
        previous = _run_chain(net, batch, burn, runtime) if burn else None
        trained = batch.frames.shape[1] - burn
        total = torch.zeros((), device=device)
        parts = dict.fromkeys(("content", "style", "tv", "temporal", "colour"), 0.0)
        for t in range(burn, burn + trained):
            frame = batch.frames[:, t].contiguous(memory_format=torch.channels_last)
            warped_previous, mask = _chain_inputs(previous, batch, t)
            with runtime.autocast():
                out = net(frame, warped_previous, mask) if temporal == "warm" else net(frame)
                with torch.no_grad():
                    content_target = vgg(frame)[CONTENT_LAYER]
                feats = vgg(out)
                c = settings.content_weight * content_loss(feats[CONTENT_LAYER], content_target)
                s = settings.style_weight * targets.loss(feats)
            tv = settings.tv_weight * total_variation(out.float())
            loss = c + s + tv
            if colour is not None:
                cl = settings.colour_weight * colour.loss(out.float())
                loss = loss + cl
                parts["colour"] += cl.item()
            parts["content"] += c.item()
            parts["style"] += s.item()
            parts["tv"] += tv.item()
            if warped_previous is not None and settings.temporal_weight > 0:
                warped_frame = warp_torch(batch.frames[:, t - 1], batch.flows[:, t - 1])
                tl = settings.temporal_weight * temporal_loss(
                    out, warped_previous, mask, frame, warped_frame
                )
                loss = loss + tl
                parts["temporal"] += tl.item()
            total = total + loss / trained
            previous = out.detach().float()
        optimiser.zero_grad(set_to_none=True)
        total.backward()
        optimiser.step()
        if schedule is not None:
            schedule.step()
        log.content.append(parts["content"] / trained)
        log.style.append(parts["style"] / trained)
        log.tv.append(parts["tv"] / trained)
        log.colour.append(parts["colour"] / trained)
        log.temporal.append(parts["temporal"] / max(1, trained - (burn == 0)))
        if on_step is not None:
            on_step(
                step,
                {"content": log.content[-1], "style": log.style[-1], "temporal": log.temporal[-1]},
            )
    log.seconds = time.perf_counter() - start
    recalibrate_batchnorm(net, sampler, runtime, temporal)
    return log
