"""RAFT flow (torchvision raft_small / raft_large), only from weights already on disk.

vidstyle never downloads: the weights come from torchvision's cache
(`<torch.hub.get_dir()>/checkpoints/<file>`, where torchvision itself would put them) or from an
explicit path. Frames are padded (replicate) to multiples of 8 and at least 128 px, as RAFT needs,
and the flow is cropped back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from vidstyle.errors import ConfigError
from vidstyle.flow.base import (
    FlowError,
    check_pair,
    resize_flow_torch,
    scaled_size,
)

# The weights torchvision names DEFAULT for each model; only the file name is used, never the URL.
WEIGHT_FILES = {
    "small": "raft_small_C_T_V2-01064c6d.pth",
    "large": "raft_large_C_T_SKHT_V2-ff5fadd5.pth",
}
MIN_SIDE = 128


def default_weights_path(model: str = "small") -> Path:
    """Where torchvision's own download would have put the weights of `model`."""
    if model not in WEIGHT_FILES:
        raise ConfigError(f"unknown RAFT model {model!r} (choose small or large)")
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHT_FILES[model]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """None or "auto": CUDA when there is one, else the CPU."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class RAFTFlow:
    """RAFT flow A->B for RGB uint8 frames, float32 (H, W, 2) in frame pixels.

    `max_side` (optional) computes at a smaller working size and rescales the flow per axis: RAFT's
    memory grows with (H·W)² / 8⁴ in the correlation volume.
    """

    def __init__(
        self,
        model: str = "small",
        weights: str | Path | None = None,
        device: str | torch.device | None = None,
        iters: int = 12,
        max_side: int | None = None,
    ):
        if model not in WEIGHT_FILES:
            raise ConfigError(f"unknown RAFT model {model!r} (choose small or large)")
        path = Path(weights) if weights is not None else default_weights_path(model)
        if not path.is_file():
            raise FlowError(
                f"RAFT-{model} weights not found (vidstyle never downloads them): put "
                f"{WEIGHT_FILES[model]} there or pass an explicit path, "
                "or use the 'dis' flow",
                path,
            )
        from torchvision.models.optical_flow import raft_large, raft_small

        net = raft_small(weights=None) if model == "small" else raft_large(weights=None)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            net.load_state_dict(state)
        except Exception as exc:  # any unreadable / mismatched file is the same user problem
            raise FlowError(f"not a usable RAFT-{model} weights file ({exc})", path) from exc
        self.model = model
        self.weights = path
        self.device = resolve_device(device)
        self.iters = iters
        self.max_side = max_side
        self.net = net.to(self.device).eval().requires_grad_(False)

    @staticmethod
    def available(model: str = "small", weights: str | Path | None = None) -> bool:
        """True when the weights file is on disk (no network access, no model built)."""
        path = Path(weights) if weights is not None else default_weights_path(model)
        return path.is_file()

    def flow_torch(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Batched flow A->B: RGB float in [0, 1], (N, 3, H, W) -> (N, 2, H, W) float32 pixels."""
        height, width = a.shape[-2:]
        work_w, work_h = scaled_size(width, height, self.max_side)
        x = torch.cat((a, b)).to(self.device, torch.float32)
        if (work_w, work_h) != (width, height):
            x = F.interpolate(x, size=(work_h, work_w), mode="bilinear", antialias=True)
        # RAFT needs sides divisible by 8, and at least 128 px for its correlation pyramid.
        pad_h = max(work_h + (-work_h % 8), MIN_SIDE) - work_h
        pad_w = max(work_w + (-work_w % 8), MIN_SIDE) - work_w
        top, left = pad_h // 2, pad_w // 2
        x = F.pad(x * 2.0 - 1.0, (left, pad_w - left, top, pad_h - top), mode="replicate")
        img1, img2 = x.chunk(2)
        with torch.inference_mode():
            flow = self.net(img1, img2, num_flow_updates=self.iters)[-1]
        flow = flow[..., top : top + work_h, left : left + work_w].float()
        return resize_flow_torch(flow, (width, height))

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        check_pair(a, b)
        if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
            raise ValueError(f"RAFT needs RGB uint8 (H, W, 3) frames, got {a.shape} {a.dtype}")
        ta, tb = (torch.from_numpy(np.ascontiguousarray(f)).permute(2, 0, 1)[None] for f in (a, b))
        flow = self.flow_torch(ta.float() / 255.0, tb.float() / 255.0)
        return flow[0].permute(1, 2, 0).cpu().numpy()
