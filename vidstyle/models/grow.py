"""Grow a meta-learned start into a bigger network without changing what it computes.

Meta-training the full-width (`best`) network from scratch takes 10-15 hours of a 2-core CPU; the
slim start already holds 85,000 steps of what a style network needs. Net2Net (Chen et al. 2016)
turns a trained network into a wider and deeper one that is the *same function*, so training
goes on from there instead of from random:
- wider: each new channel copies an old one (its filters, batch-norm parameters and statistics,
  and its predicted gamma/beta rows); the layer that reads those channels splits each old input
  weight among the copies, in random shares that sum to one. Copies see identical inputs, so the
  sum is unchanged; the unequal shares give the copies different gradients, so they drift apart
  and learn different things instead of staying twins;
- deeper: new residual blocks are added as identities (their second batch norm's gamma and beta
  zero in the body and in the predictor's rows: the block adds nothing until trained), which is
  how a new StyleNet's blocks start anyway;
- larger outer kernels: the old kernel in the centre of a zero one (reflection padding reads
  the same pixels whatever its width).
"""

from __future__ import annotations

import torch
from torch import nn

from vidstyle.errors import ModelError
from vidstyle.models.meta_start import MetaStart
from vidstyle.models.predictor import StylePredictor
from vidstyle.models.stylenet import (
    ConvLayer,
    StyleNet,
    StyleNetConfig,
    style_norms,
    style_parameter_count,
)


def _channel_map(old: int, new: int, generator: torch.Generator) -> torch.Tensor:
    """new channel -> the old channel it copies: the first `old` keep their place."""
    extra = torch.randint(old, (new - old,), generator=generator)
    return torch.cat([torch.arange(old), extra])


def _split_shares(mapping: torch.Tensor, noise: float, generator: torch.Generator) -> torch.Tensor:
    """Per new channel, its share of its old channel's outgoing weights; each group sums to 1."""
    shares = 1.0 + noise * (2 * torch.rand(len(mapping), generator=generator) - 1)
    totals = torch.zeros(int(mapping.max()) + 1).index_add_(0, mapping, shares)
    return shares / totals[mapping]


def _pad_kernel(weight: torch.Tensor, size: int) -> torch.Tensor:
    pad = (size - weight.shape[-1]) // 2
    return nn.functional.pad(weight, (pad, pad, pad, pad))


def _copy_layer(
    old: ConvLayer,
    new: ConvLayer,
    out_map: torch.Tensor | None,
    in_map: torch.Tensor | None,
    in_shares: torch.Tensor | None,
) -> None:
    """Widen one ConvLayer: rows by `out_map`, columns by `in_map` scaled by `in_shares`."""
    w = old.conv.weight.detach()
    if in_map is not None:
        w = w[:, in_map] * in_shares.view(1, -1, 1, 1)
    if out_map is not None:
        w = w[out_map]
    new.conv.weight.copy_(_pad_kernel(w, new.conv.weight.shape[-1]))
    if old.conv.bias is not None:
        b = old.conv.bias.detach()
        new.conv.bias.copy_(b if out_map is None else b[out_map])
    if old.norms is not None:
        for old_norm, new_norm in zip(old.norms, new.norms, strict=True):
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(new_norm, name).copy_(getattr(old_norm, name).detach()[out_map])
            new_norm.num_batches_tracked.copy_(old_norm.num_batches_tracked)


def check_growable(old: StyleNetConfig, new: StyleNetConfig) -> None:
    """A start grows only: every width, the block count and the kernel at least the old ones."""
    problems = []
    if any(n < o for o, n in zip(old.channels, new.channels, strict=True)):
        problems.append(f"channels {list(new.channels)} narrower than {list(old.channels)}")
    if new.residual_blocks < old.residual_blocks:
        problems.append(f"{new.residual_blocks} residual blocks, fewer than {old.residual_blocks}")
    if new.outer_kernel < old.outer_kernel or (new.outer_kernel - old.outer_kernel) % 2:
        problems.append(f"outer kernel {new.outer_kernel} can't hold {old.outer_kernel} centred")
    if (new.antialias, new.carry_max) != (old.antialias, old.carry_max):
        problems.append("another antialias/carry_max")
    if problems:
        raise ModelError("can't grow this start into that network: " + "; ".join(problems))


def grow_start(
    start: MetaStart, config: StyleNetConfig, seed: int = 0, noise: float = 0.5
) -> MetaStart:
    """The same start as a `config` network: same outputs for every style and frame (up to
    float rounding), ready for `vidstyle meta train --init` to go on at the new size."""
    old_body = start.body
    check_growable(old_body.config, config)
    generator = torch.Generator().manual_seed(seed)
    maps = [
        _channel_map(o, n, generator)
        for o, n in zip(old_body.config.channels, config.channels, strict=True)
    ]
    shares = [_split_shares(m, noise, generator) for m in maps]
    (m1, m2, m3), (s1, s2, s3) = maps, shares
    with torch.random.fork_rng(devices=[]):  # new blocks' random filters: reproducible too
        torch.manual_seed(seed)
        body = StyleNet(config)
    old_layers, new_layers = list(old_body.layers), list(body.layers)
    up1, up2, last = old_layers[-3:]
    # (old layer, new layer, its output channels' map, its input channels' map and shares)
    copies = [
        (old_layers[0], new_layers[0], m1, None, None),  # down: frame -> c1 -> c2 -> c3
        (old_layers[1], new_layers[1], m2, m1, s1),
        (old_layers[2], new_layers[2], m3, m2, s2),
        *(  # residual stream c3, each block's inner width c3 too; new blocks keep their identity
            (getattr(old_layers[3 + i], part), getattr(new_layers[3 + i], part), m3, m3, s3)
            for i in range(old_body.config.residual_blocks)
            for part in ("a", "b")
        ),
        (up1.conv, new_layers[-3].conv, m2, m3, s3),
        (up2.conv, new_layers[-2].conv, m1, m2, s2),
        (last, new_layers[-1], None, m1, s1),
    ]
    with torch.no_grad():
        for old, new, out_map, in_map, in_shares in copies:
            _copy_layer(old, new, out_map, in_map, in_shares)
    # each new cold-path norm -> (the old norm it copies, which old channel each channel copies)
    norm_copies = {
        id(new.norms[0]): (old.norms[0], out_map) for old, new, out_map, *_ in copies if old.norms
    }
    predictor = _grow_predictor(start, body, norm_copies)
    training = dict(start.card.get("training", {}))
    training["history"] = [
        *training.get("history", []),
        {
            "grown_from": {"network": old_body.config.to_dict(), "weights_sha256": start.sha256},
            "at_step": int(training.get("steps", 0)),
            "method": "Net2Net: channels copied with random output splits, identity blocks, "
            f"zero-padded outer kernels (seed {seed}, split noise {noise})",
        },
    ]
    training["note"] = (
        f"grown from a {list(old_body.config.channels)}-channel, "
        f"{old_body.config.residual_blocks}-block start "
        f"(sha256 {start.sha256[:8]}...) by vidstyle meta grow; what that start measured (its "
        "note, held-out figures) is not this network's"
    )
    card = {k: v for k, v in start.card.items() if k not in ("heldout", "weights_sha256")}
    card["training"] = training
    return MetaStart(body.eval(), predictor.eval(), card)


def _grow_predictor(
    start: MetaStart, body: StyleNet, norm_copies: dict[int, tuple[nn.BatchNorm2d, torch.Tensor]]
) -> StylePredictor:
    """Same encoder; the decoder's rows follow each norm's channel copies, zero for new blocks."""
    old_pred = start.predictor
    predictor = StylePredictor(style_parameter_count(body))
    predictor.load_state_dict(
        {k: v for k, v in old_pred.state_dict().items() if not k.startswith("decode.")},
        strict=False,
    )
    old_offsets, offset = {}, 0  # where each old norm's gammas start in the old vector
    for norm in style_norms(start.body):
        old_offsets[id(norm)], offset = offset, offset + 2 * norm.num_features
    rows = []  # old decoder row per new row; -1: zero
    for norm in style_norms(body):
        if id(norm) not in norm_copies:  # a new block's
            rows.append(torch.full((2 * norm.num_features,), -1))
            continue
        old, mapping = norm_copies[id(norm)]
        start_row = old_offsets[id(old)]
        rows += [start_row + mapping, start_row + old.num_features + mapping]  # gammas, betas
    index = torch.cat(rows)
    with torch.no_grad():
        weight = old_pred.decode.weight.detach()[index.clamp_min(0)]
        bias = old_pred.decode.bias.detach()[index.clamp_min(0)]
        zero = index < 0
        weight[zero], bias[zero] = 0.0, 0.0
        predictor.decode.weight.copy_(weight)
        predictor.decode.bias.copy_(bias)
    return predictor
