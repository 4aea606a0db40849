"""The feed-forward style network, with warm-start inputs for video.

Architecture: Johnson et al. 2016 (downsample x4, residual blocks, upsample) with the changes that
later work found better for video:
- upsampling + convolution instead of transposed convolution (no checkerboard);
- anti-aliasing (`antialias`, on by default; Zhang 2019, "Making convolutional networks
  shift-invariant again"): a [1, 2, 1] blur before each stride-2 convolution and bilinear rather
  than nearest-neighbour upsampling. Without it a stride-4 network paints different strokes
  when the picture moves by 1-3 px (only 4 px shifts repeat them): on Big Buck Bunny that alone
  was half of per-frame flicker (warping error 5.97x the input's -> 3.07x);
- reflection padding everywhere (no dark borders, and tiles blend without seams);
- 7 input channels as in Ruder et al. 2018: the frame, the previous *stylized* frame warped by
  optical flow (zero where occluded), and the flow confidence mask. The first frame of a shot and
  per-frame mode pass zeros, so one network serves every temporal mode;
- a learned gate: the last layer also predicts, per pixel, how much of the warped previous output
  to keep where the flow is reliable (final = g·m·warped + (1 - g·m)·painted), with g capped at
  `carry_max`. Keeping what is already painted is then easy to learn where the scene holds still;
  the cap makes every frame repaint a share of every pixel, so what warping degrades (resampling
  blur, flow errors) fades geometrically instead of piling up over a long shot;
- batch normalisation instead of instance normalisation: the network is adapted to one piece of
  footage, so batch statistics are representative, and at inference the normalisation folds into
  the convolutions. The result is a fixed per-pixel function of the input: no per-frame
  normalisation statistics to flicker, frames can be batched, tiles agree at their overlaps.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from vidstyle.config import NetworkSettings

IN_CHANNELS = 7  # frame (3) + warped previous output (3) + confidence mask (1)
CHAIN_WARP = "bicubic"  # how the previous output is warped, in training and at inference alike


#: The network's architecture is described once, by the settings (vidstyle.config): this is the
#: same class under the name the model code has always used.
StyleNetConfig = NetworkSettings


def binomial_blur(x: torch.Tensor) -> torch.Tensor:
    """3x3 binomial ([1, 2, 1] / 4 per axis) depthwise blur, reflect-padded: the low-pass that
    makes a following stride-2 convolution sample a band-limited signal (Zhang 2019)."""
    c = x.shape[1]
    k = x.new_tensor([0.25, 0.5, 0.25])
    mode = "reflect" if min(x.shape[-2:]) > 1 else "replicate"
    x = F.pad(x, (1, 1, 1, 1), mode=mode)
    x = F.conv2d(x, k.view(1, 1, 1, 3).expand(c, 1, 1, 3), groups=c)
    return F.conv2d(x, k.view(1, 1, 3, 1).expand(c, 1, 3, 1), groups=c)


class ConvLayer(nn.Module):
    """Reflection-padded convolution, batch norm (one per path, see StyleNet) and ReLU."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        norm: bool = True,
        relu: bool = True,
        antialias: bool = False,
    ):
        super().__init__()
        self.blur = antialias and stride > 1
        self.conv = nn.Conv2d(
            cin, cout, kernel, stride, padding=kernel // 2, padding_mode="reflect", bias=not norm
        )
        # norms[0]: cold frames (no previous output), norms[1]: warm-started frames.
        self.norms = nn.ModuleList([nn.BatchNorm2d(cout), nn.BatchNorm2d(cout)]) if norm else None
        self.fused: nn.ModuleList | None = None
        self.relu = relu

    def forward(self, x: torch.Tensor, warm: bool) -> torch.Tensor:
        if self.blur:
            x = binomial_blur(x)
        if self.fused is not None:
            x = self.fused[int(warm)](x)
        else:
            x = self.conv(x)
            if self.norms is not None:
                x = self.norms[int(warm)](x)
        return F.relu(x, inplace=True) if self.relu else x

    def fuse(self) -> None:
        """Fold each path's eval-mode batch norm into its own copy of the convolution."""
        if self.norms is not None and self.fused is None:
            self.fused = nn.ModuleList(
                fuse_conv_bn_eval(copy.deepcopy(self.conv), norm) for norm in self.norms
            )
            del self.conv, self.norms
            self.norms = None


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.a = ConvLayer(channels, channels, 3)
        self.b = ConvLayer(channels, channels, 3, relu=False)
        for norm in self.b.norms:
            nn.init.zeros_(norm.weight)  # start as identity: stable early training

    def forward(self, x: torch.Tensor, warm: bool) -> torch.Tensor:
        return x + self.b(self.a(x, warm), warm)


class Upsample(nn.Module):
    def __init__(self, cin: int, cout: int, antialias: bool = False):
        super().__init__()
        self.conv = ConvLayer(cin, cout, 3)
        self.mode = "bilinear" if antialias else "nearest"

    def forward(self, x: torch.Tensor, warm: bool) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode=self.mode), warm)


class StyleNet(nn.Module):
    """Image transformation network: (frame, warped previous output, mask) -> stylized frame.

    All tensors are RGB in [0, 1], (N, C, H, W). Any H and W work: the input is reflect-padded to
    a multiple of 4 and the output cropped back, so odd sizes come out the size they went in.
    Cold frames (no previous output: first frame of a shot, per-frame modes) and warm-started
    frames use separate batch-norm statistics: their inputs are distributed very differently
    (zeros vs a painted frame in four channels), and one shared set of fixed statistics made
    cold frames come out barely stylized.
    """

    def __init__(self, config: StyleNetConfig = StyleNetConfig()):
        super().__init__()
        self.config = config
        c1, c2, c3 = config.channels
        k = config.outer_kernel
        aa = config.antialias
        self.layers = nn.ModuleList(
            [
                ConvLayer(IN_CHANNELS, c1, k),
                ConvLayer(c1, c2, 3, stride=2, antialias=aa),
                ConvLayer(c2, c3, 3, stride=2, antialias=aa),
                *(ResidualBlock(c3) for _ in range(config.residual_blocks)),
                Upsample(c3, c2, antialias=aa),
                Upsample(c2, c1, antialias=aa),
                ConvLayer(c1, 4, k, norm=False, relu=False),  # RGB + keep-gate
            ]
        )
        self._cold_takes_rgb = False  # set by fuse_for_inference

    def forward(
        self,
        frame: torch.Tensor,
        previous: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        n, _, h, w = frame.shape
        warm = previous is not None and mask is not None
        if warm:
            x = torch.cat([frame, previous * mask, mask], dim=1)
        elif self._cold_takes_rgb:
            x = frame
        else:
            zeros = frame.new_zeros(n, 4, h, w)  # no previous output, mask 0 everywhere
            x = torch.cat([frame, zeros], dim=1)
        x = x.to(next(self.parameters()).dtype)  # weights may be bf16/fp16 for inference
        pad_h, pad_w = (-h) % 4, (-w) % 4
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect" if min(h, w) > 4 else "replicate")
        for layer in self.layers:
            x = layer(x, warm)
        y = torch.sigmoid(x[..., :h, :w])
        if not warm:
            return y[:, :3].float()
        gate = y[:, 3:4].float() * mask.float() * self.config.carry_max
        painted = y[:, :3].float()
        # Blend in float32: the carried frame is re-warped every frame, and bf16 rounding of it
        # would accumulate into drifting noise over a long shot.
        return torch.lerp(painted, previous.float(), gate)

    def fuse_for_inference(self) -> StyleNet:
        """Eval mode with batch norm folded into the convolutions. Irreversible; returns self."""
        if self._cold_takes_rgb:
            return self
        self.eval()
        for module in self.modules():
            if isinstance(module, ConvLayer):
                module.fuse()
        # Cold frames feed zeros into 4 of the 7 input channels: their first convolution only
        # needs the frame's 3 (same result, and no zero tensors to build: ~10% of a cold frame's
        # time on a CPU, which is every frame in the frame-parallel and carry modes).
        first = self.layers[0].fused[0]
        rgb = nn.Conv2d(
            3,
            first.out_channels,
            first.kernel_size,
            first.stride,
            first.padding,
            padding_mode=first.padding_mode,
        ).to(first.weight.device, first.weight.dtype)
        with torch.no_grad():
            rgb.weight.copy_(first.weight[:, :3])
            rgb.bias.copy_(first.bias)
        self.layers[0].fused[0] = rgb
        self._cold_takes_rgb = True
        return self


def style_norms(net: StyleNet, path: int = 0) -> list[nn.BatchNorm2d]:
    """The batch norms of one path (0 cold, 1 warm), in layer order.

    Their affine parameters (gamma, beta) are where a style lives (conditional normalisation,
    Dumoulin et al. 2017): the meta-learned start shares the convolutions across styles and
    predicts these.
    """
    return [m.norms[path] for m in net.modules() if isinstance(m, ConvLayer) and m.norms]


def style_parameter_count(net: StyleNet) -> int:
    """Length of the (gamma, beta) vector of one path: two values per normalised channel."""
    return 2 * sum(norm.num_features for norm in style_norms(net))


def style_parameter_names(net: StyleNet, path: int = 0) -> list[tuple[str, str]]:
    """State-dict names of each norm's (weight, bias) in `style_norms` order."""
    names = {id(module): name for name, module in net.named_modules()}
    return [
        (f"{names[id(norm)]}.weight", f"{names[id(norm)]}.bias") for norm in style_norms(net, path)
    ]


def split_style_vector(
    net: StyleNet, vector: torch.Tensor
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Cut a flat (gamma, beta) vector into per-norm pairs: a layer's gammas, then its betas."""
    pairs, offset = [], 0
    for norm in style_norms(net):
        c = norm.num_features
        pairs.append((vector[offset : offset + c], vector[offset + c : offset + 2 * c]))
        offset += 2 * c
    return pairs


def style_vector(net: StyleNet) -> torch.Tensor:
    """The cold path's (gamma, beta) as one flat vector, in `split_style_vector` order (it keeps
    the autograd graph: meta-training adds the predicted offsets to it)."""
    parts = []
    for norm in style_norms(net):
        parts += [norm.weight, norm.bias]
    return torch.cat(parts)


def set_style_parameters(net: StyleNet, vector: torch.Tensor) -> None:
    """Write a (gamma, beta) vector into the affine parameters of both paths (cold and warm)."""
    pairs = split_style_vector(net, vector.detach())
    with torch.no_grad():
        for path in (0, 1):
            for norm, (gamma, beta) in zip(style_norms(net, path), pairs, strict=True):
                norm.weight.copy_(gamma)
                norm.bias.copy_(beta)
