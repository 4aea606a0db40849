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

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from vidstyle.adapt.data import RunSampler
from vidstyle.config import AdaptSettings
from vidstyle.flow import warp_torch
from vidstyle.models.device import Runtime
from vidstyle.models.losses import content_loss, gram, temporal_loss, total_variation
from vidstyle.models.stylenet import StyleNet
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
    seconds: float = 0.0

    def summary(self, last: int = 20) -> dict[str, float]:
        def tail(values: list[float]) -> float:
            return float(np.mean(values[-last:])) if values else 0.0

        return {
            "content": tail(self.content),
            "style": tail(self.style),
            "tv": tail(self.tv),
            "temporal": tail(self.temporal),
            "seconds": round(self.seconds, 1),
        }


class StyleTargets:
    """Gram matrices of the style image, and the normaliser that makes style weights portable."""

    def __init__(self, vgg: VGG19Features, style: torch.Tensor):
        with torch.no_grad():
            feats = vgg(style)
        self.grams = {k: gram(feats[k]) for k in TRAIN_STYLE_LAYERS}
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
    statistics, so they are re-estimated once with the final weights.
    """
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    net.train()
    length = sampler.max_length if temporal == "warm" else 1
    for _ in range(batches):
        batch = sampler.sample(batch_size, length, runtime.device)
        previous = None
        for t in range(batch.frames.shape[1]):
            frame = batch.frames[:, t].contiguous(memory_format=torch.channels_last)
            warm = mask = None
            if previous is not None:
                flow = batch.flows[:, t - 1]
                warm, mask = warp_torch(previous, flow), batch.masks[:, t - 1] * _in_bounds(flow)
            with runtime.autocast():
                previous = net(frame, warm, mask).float()
    for m in norms:
        m.momentum = 0.1
    net.eval()


def train_stylenet(
    net: StyleNet,
    sampler: RunSampler,
    style: torch.Tensor,
    settings: AdaptSettings,
    runtime: Runtime,
    temporal: str = "warm",
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainingLog:
    """Optimise `net` in place for `settings.steps` steps; returns the loss history."""
    torch.manual_seed(settings.seed)
    device = runtime.device
    vgg = VGG19Features((*TRAIN_STYLE_LAYERS, CONTENT_LAYER)).to(device)
    vgg = vgg.to(memory_format=torch.channels_last)
    targets = StyleTargets(vgg, style.to(device))
    net.to(device).to(memory_format=torch.channels_last).train()
    optimiser = torch.optim.Adam(net.parameters(), lr=settings.learning_rate)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=settings.learning_rate, total_steps=settings.steps, pct_start=0.1
    )
    length = 1 if temporal == "off" else max(2, settings.sequence_length)
    log = TrainingLog()
    start = time.perf_counter()
    for step in range(settings.steps):
        batch = sampler.sample(settings.batch_size, length, device)
        steps_in_time = batch.frames.shape[1]
        total = torch.zeros((), device=device)
        parts = dict.fromkeys(("content", "style", "tv", "temporal"), 0.0)
        previous = None
        for t in range(steps_in_time):
            frame = batch.frames[:, t].contiguous(memory_format=torch.channels_last)
            mask = warped_previous = None
            if previous is not None:
                flow = batch.flows[:, t - 1]
                mask = batch.masks[:, t - 1] * _in_bounds(flow)
                warped_previous = warp_torch(previous, flow)
            with runtime.autocast():
                if temporal == "warm" and previous is not None:
                    out = net(frame, warped_previous, mask)
                else:
                    out = net(frame)
                with torch.no_grad():
                    content_target = vgg(frame)[CONTENT_LAYER]
                feats = vgg(out)
                c = settings.content_weight * content_loss(feats[CONTENT_LAYER], content_target)
                s = settings.style_weight * targets.loss(feats)
            tv = settings.tv_weight * total_variation(out.float())
            loss = c + s + tv
            parts["content"] += c.item()
            parts["style"] += s.item()
            parts["tv"] += tv.item()
            if warped_previous is not None and settings.temporal_weight > 0:
                warped_frame = warp_torch(batch.frames[:, t - 1], flow)
                tl = settings.temporal_weight * temporal_loss(
                    out, warped_previous, mask, frame, warped_frame
                )
                loss = loss + tl
                parts["temporal"] += tl.item()
            total = total + loss / steps_in_time
            previous = out.detach().float()
        optimiser.zero_grad(set_to_none=True)
        total.backward()
        optimiser.step()
        schedule.step()
        log.content.append(parts["content"] / steps_in_time)
        log.style.append(parts["style"] / steps_in_time)
        log.tv.append(parts["tv"] / steps_in_time)
        log.temporal.append(parts["temporal"] / max(1, steps_in_time - 1))
        if on_step is not None:
            on_step(
                step,
                {
                    k: v[-1]
                    for k, v in (
                        ("content", log.content),
                        ("style", log.style),
                        ("temporal", log.temporal),
                    )
                },
            )
    log.seconds = time.perf_counter() - start
    recalibrate_batchnorm(net, sampler, runtime, temporal)
    return log
