"""The compute core of the frame loop: frames in, stylized frames out, on the chosen device.

Everything that touches pixels between decode and encode happens here, on the device: upload of
uint8 frames (pinned, non-blocking on CUDA), warping the previous output by the flow, the network
(fused batch norm, channels_last, bf16/fp16 autocast), optional tiling, colour preservation and the
strength blend, and conversion back to uint8.
"""

from __future__ import annotations

import numpy as np
import torch

from vidstyle.config import RenderSettings
from vidstyle.flow import warp_torch
from vidstyle.models.device import Runtime
from vidstyle.models.stylenet import StyleNet
from vidstyle.pipeline.color import finish
from vidstyle.pipeline.tiles import tiled


class Stylizer:
    """A StyleNet ready for inference, plus the per-frame pre/post-processing around it."""

    def __init__(self, net: StyleNet, runtime: Runtime, render: RenderSettings):
        self.runtime = runtime
        self.render = render
        self.net = net.fuse_for_inference().to(runtime.device)
        self.net = self.net.to(memory_format=torch.channels_last)
        self.net.requires_grad_(False)

    # -- transfers -------------------------------------------------------------------------
    def upload(self, frames: list[np.ndarray]) -> torch.Tensor:
        """uint8 (H, W, 3) frames -> float (N, 3, H, W) in [0, 1] on the device."""
        host = torch.from_numpy(np.stack(frames))
        if self.runtime.is_cuda:
            host = host.pin_memory()
        dev = host.to(self.runtime.device, non_blocking=True)
        return (
            dev.permute(0, 3, 1, 2)
            .float()
            .div_(255.0)
            .contiguous(memory_format=torch.channels_last)
        )

    def upload_flow(self, flow: np.ndarray, mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Flow (H, W, 2) and mask (H, W) -> (1, 2, H, W) and (1, 1, H, W) on the device."""
        f = torch.from_numpy(np.ascontiguousarray(flow, dtype=np.float32))
        m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))
        if self.runtime.is_cuda:
            f, m = f.pin_memory(), m.pin_memory()
        dev = self.runtime.device
        return (
            f.to(dev, non_blocking=True).permute(2, 0, 1)[None],
            m.to(dev, non_blocking=True)[None, None],
        )

    @staticmethod
    def download(images: torch.Tensor) -> list[np.ndarray]:
        """float (N, 3, H, W) in [0, 1] -> uint8 (H, W, 3) numpy frames."""
        u8 = images.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
        host = u8.permute(0, 2, 3, 1).contiguous().cpu().numpy()
        return list(host)

    # -- compute ---------------------------------------------------------------------------
    @torch.inference_mode()
    def network(
        self,
        frames: torch.Tensor,
        warm: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Raw network output (N, 3, H, W) float32: what the next frame is warm-started from."""

        def run(f, p, m):
            with self.runtime.autocast():
                return self.net(f, p, m).float()

        if self.render.tile:
            return tiled(run, [frames, warm, mask], self.render.tile, self.render.tile_overlap)
        return run(frames, warm, mask)

    @torch.inference_mode()
    def warp(self, previous: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        return warp_torch(previous, flow)

    @torch.inference_mode()
    def finish(self, raw: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        return finish(raw, frames, self.render.strength, self.render.preserve_color)
