"""Style -> (gamma, beta): the predictor half of the meta-learned start (Ghiasi et al. 2017).

A style is summarised by the per-channel mean and log standard deviation of its VGG-19 features
at relu1_1..relu4_1 (1,920 numbers for any image size): cheap, size-free, and what Gram-matrix
losses mostly respond to. A small MLP with a 100-d bottleneck (the "style embedding") maps that
summary to offsets for every normalisation layer's affine parameters of the shared body; the
offsets start at zero, so an untrained predictor leaves the body's own (gamma, beta) unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

STAT_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
STAT_CHANNELS = (64, 128, 256, 512)
STATS_DIM = 2 * sum(STAT_CHANNELS)


def style_statistics(features: dict[str, torch.Tensor]) -> torch.Tensor:
    """(N, 1920): channel means and log standard deviations of the style's VGG features."""
    parts = []
    for layer in STAT_LAYERS:
        f = features[layer].float().flatten(2)
        parts += [f.mean(2), f.std(2).clamp_min(1e-5).log()]
    return torch.cat(parts, dim=1)


class StylePredictor(nn.Module):
    """VGG statistics of a style image -> offsets to the shared body's (gamma, beta) vector."""

    def __init__(self, out_dim: int, hidden: int = 256, embedding: int = 100):
        super().__init__()
        # Statistics differ by orders of magnitude between layers; normalised by the training
        # corpus' own spread (set once by the meta-trainer, saved with the weights).
        self.register_buffer("stats_mean", torch.zeros(STATS_DIM))
        self.register_buffer("stats_std", torch.ones(STATS_DIM))
        self.encode = nn.Sequential(
            nn.Linear(STATS_DIM, hidden), nn.ReLU(), nn.Linear(hidden, embedding)
        )
        self.decode = nn.Linear(embedding, out_dim)
        nn.init.zeros_(self.decode.weight)
        nn.init.zeros_(self.decode.bias)

    def set_normalisation(self, stats: torch.Tensor) -> None:
        """Centre and scale inputs by a corpus of style statistics (N, 1920)."""
        with torch.no_grad():
            self.stats_mean.copy_(stats.mean(0))
            self.stats_std.copy_(stats.std(0).clamp_min(1e-3))

    def embed(self, stats: torch.Tensor) -> torch.Tensor:
        return self.encode((stats - self.stats_mean) / self.stats_std)

    def forward(self, stats: torch.Tensor) -> torch.Tensor:
        return self.decode(self.embed(stats))
