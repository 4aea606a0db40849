"""The compute core of the frame loop: frames in, stylized frames out, on the chosen device.

Everything that touches pixels between decode and encode happens here, on the device: upload of
uint8 frames, or float32 working-space frames from deep sources (pinned, non-blocking on CUDA),
warping the previous output by the flow, the network (fused batch norm, channels_last, bf16/fp16
autocast), optional tiling, colour preservation and the strength blend, and conversion back to
uint8 (float32 for deep sources); in `carry` mode, the blend of each frame's paint with the warped
previous output (pipeline/contrast.py).
"""

from __future__ import annotations

import numpy as np
import torch

from vidstyle.config import RenderSettings
from vidstyle.flow import ChainLink, warp, warp_torch
from vidstyle.models.device import Runtime
from vidstyle.models.stylenet import CHAIN_WARP, StyleNet
from vidstyle.pipeline.color import finish
from vidstyle.pipeline.contrast import carry_blend
from vidstyle.pipeline.tiles import tiled


class Stylizer:
    """A StyleNet ready for inference, plus the per-frame pre/post-processing around it."""

    def __init__(self, net: StyleNet, runtime: Runtime, render: RenderSettings):
        self.runtime = runtime
        self.render = render
        # Weights are cast to the run's precision once, rather than autocast re-casting them on
        # every call (which costs a good share of a small network's time per frame).
        self.net = net.fuse_for_inference().to(runtime.device, runtime.dtype)
        self.net = self.net.to(memory_format=torch.channels_last)
        self.net.requires_grad_(False)

    # -- transfers -------------------------------------------------------------------------
    def upload(self, frames: list[np.ndarray]) -> torch.Tensor:
        """(H, W, 3) frames -> float (N, 3, H, W) on the device: uint8 scaled to [0, 1]; float32
        working values as they are (deep sources: the network sees them clamped to [0, 1],
        the strength mix the unclamped original)."""
        host = torch.from_numpy(np.stack(frames))
        if self.runtime.is_cuda:
            host = host.pin_memory()
        dev = host.to(self.runtime.device, non_blocking=True).permute(0, 3, 1, 2)
        if dev.dtype == torch.uint8:
            dev = dev.float().div_(255.0)
        return dev.contiguous(memory_format=torch.channels_last)

    @staticmethod
    def download(images: torch.Tensor, deep: bool = False) -> list[np.ndarray]:
        """float (N, 3, H, W) -> (H, W, 3) numpy frames: uint8, or float32 when `deep`."""
        if deep:
            return list(images.float().permute(0, 2, 3, 1).contiguous().cpu().numpy())
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
            return self.net(f, p, m).float()

        frames = frames.clamp(0.0, 1.0)  # deep sources' working values may lie beyond [0, 1]

        if self.render.tile:
            return tiled(run, [frames, warm, mask], self.render.tile, self.render.tile_overlap)
        return run(frames, warm, mask)

    @staticmethod
    def _warp_on_cpu(
        previous: torch.Tensor, link: ChainLink, boundaries: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """The previous output (1, 3, H, W) warped into this frame as float32 (H, W, 3), and the
        mask (H, W). On the CPU cv2.remap is much faster than grid_sample (same bicubic kernel,
        a = -0.75)."""
        height, width = previous.shape[-2:]
        flow, mask = link.at_size(width, height, boundaries=boundaries)
        image = np.ascontiguousarray(previous[0].permute(1, 2, 0).numpy())
        warped = warp(image, flow, mode=CHAIN_WARP)
        return np.clip(warped, 0.0, 1.0, out=warped), mask

    @torch.inference_mode()
    def warm_inputs(
        self, previous: torch.Tensor, link: ChainLink, boundaries: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The previous output (1, 3, H, W) warped into this frame, and the reliability mask
        (`boundaries=False`: the one that keeps motion boundaries, see ChainLink)."""
        if not self.runtime.is_cuda:
            warped, mask = self._warp_on_cpu(previous, link, boundaries)
            m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))
            return torch.from_numpy(warped).permute(2, 0, 1)[None], m[None, None]
        height, width = previous.shape[-2:]
        flow, mask = link.at_size(width, height, boundaries=boundaries)
        dev = self.runtime.device
        m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32)).pin_memory()
        f = torch.from_numpy(np.ascontiguousarray(flow, dtype=np.float32)).pin_memory()
        f = f.to(dev, non_blocking=True).permute(2, 0, 1)[None]
        warped = warp_torch(previous, f, mode=CHAIN_WARP).clamp_(0.0, 1.0)
        return warped, m.to(dev, non_blocking=True)[None, None]

    @torch.inference_mode()
    def carry(self, paint: torch.Tensor, previous: torch.Tensor, link: ChainLink) -> torch.Tensor:
        """`--temporal carry`: the previous output warped into this frame, blended into this
        frame's own paint where the flow is reliable, stroke contrast restored (1, 3, H, W).
        On a GPU on the device; on the CPU with OpenCV, in the (H, W, 3) layout cv2 wants (the
        warp and the blend both; pipeline/contrast.py picks its backend by the type)."""
        r = self.render
        blend = (r.carry, r.carry_sigma, r.carry_detail, r.carry_tone_sigma)
        if self.runtime.is_cuda:
            warped, mask = self.warm_inputs(previous, link, boundaries=False)
            return carry_blend(paint, warped, mask, *blend)
        warped, mask = self._warp_on_cpu(previous, link, boundaries=False)
        own = np.ascontiguousarray(paint[0].float().permute(1, 2, 0).numpy())
        out = carry_blend(own, warped, mask, *blend)
        return torch.from_numpy(out).permute(2, 0, 1)[None]

    @torch.inference_mode()
    def finish(self, raw: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        return finish(raw, frames, self.render.strength, self.render.preserve_color)
