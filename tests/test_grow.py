"""Growing a start (`vidstyle meta grow`): the bigger network computes what the start computed,
for any style and in either batch-norm mode, trains on from there, and never shrinks."""

from __future__ import annotations

import copy

import pytest
import torch

from vidstyle.adapt.corpus import load_corpus
from vidstyle.adapt.meta_train import START, MetaSettings, MetaTrainer
from vidstyle.errors import ModelError
from vidstyle.models.device import resolve_runtime
from vidstyle.models.grow import grow_start
from vidstyle.models.meta_start import MetaStart, load_meta_start, save_meta_start
from vidstyle.models.predictor import STATS_DIM, StylePredictor
from vidstyle.models.stylenet import (
    StyleNet,
    StyleNetConfig,
    set_style_parameters,
    style_parameter_count,
)

from .test_meta import make_corpus

pytestmark = pytest.mark.usefixtures("torch_one_thread", "isolated_cache")
SMALL = StyleNetConfig((4, 6, 8), 1, 3)
BIG = StyleNetConfig((7, 12, 16), 3, 7)


def _trained_looking_start(seed: int = 0) -> MetaStart:
    """A start whose every weight, norm statistic and predictor row is non-trivial (a fresh
    StyleNet's zero gammas and predictor would hide a misplaced copy)."""
    torch.manual_seed(seed)
    body = StyleNet(SMALL)
    predictor = StylePredictor(style_parameter_count(body))
    with torch.no_grad():
        for name, p in body.named_parameters():
            if "norms" in name:  # gammas around 1 (residual blocks' second ones too), betas small
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * torch.randn_like(p))
        predictor.decode.weight.normal_(0.0, 0.01)
        predictor.decode.bias.normal_(0.0, 0.05)
        for module in body.modules():  # running statistics of real activations
            if isinstance(module, torch.nn.BatchNorm2d):
                module.momentum = None
        body.train()
        frame, previous = torch.rand(2, 4, 3, 24, 24)
        body(frame)
        body(frame, previous, torch.ones(4, 1, 24, 24))
    return MetaStart(body.eval(), predictor.eval(), {"training": {"steps": 7}})


def _styled(start: MetaStart, stats: torch.Tensor) -> StyleNet:
    net = copy.deepcopy(start.body)
    set_style_parameters(net, start.style_vector(stats).detach())
    return net


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_a_grown_start_paints_what_it_grew_from(mode):
    small = _trained_looking_start()
    big = grow_start(small, BIG)
    assert big.config == BIG
    frame, previous = torch.rand(2, 2, 3, 21, 30)
    mask = (torch.rand(2, 1, 21, 30) > 0.3).float()
    for _ in range(2):  # two styles
        stats = torch.randn(1, STATS_DIM)
        nets = [getattr(_styled(s, stats), mode)() for s in (small, big)]
        for args in ((frame,), (frame, previous, mask)):  # cold and warm-started frames
            with torch.no_grad():
                expected, grown = (net(*args) for net in nets)
            assert (
                expected.std() > 0.05
                and ((expected > 0.02) & (expected < 0.98)).float().mean() > 0.5
            )
            torch.testing.assert_close(grown, expected, atol=2e-5, rtol=0)


def test_the_grown_copies_differ_and_the_card_says_where_it_came_from(tmp_path):
    small = _trained_looking_start()
    save_meta_start(small.body, small.predictor, small.card, tmp_path / "small.safetensors")
    small = load_meta_start(tmp_path / "small.safetensors")
    big = grow_start(small, BIG, seed=3)
    again = grow_start(small, BIG, seed=3)  # reproducible, new blocks' random filters included
    for name, value in big.body.state_dict().items():
        assert torch.equal(value, again.body.state_dict()[name]), name
    save_meta_start(big.body, big.predictor, big.card, tmp_path / "big.safetensors")
    loaded = load_meta_start(tmp_path / "big.safetensors")
    grown = loaded.card["training"]["history"][-1]
    assert grown["grown_from"]["weights_sha256"] == small.sha256
    assert grown["grown_from"]["network"]["channels"] == list(SMALL.channels)
    assert grown["at_step"] == 7
    # a copied channel's share of what reads it is random: the copies get different gradients
    second = loaded.body.layers[1].conv.weight  # reads layer 0's 7 channels, 4 of them old
    columns = second.abs().sum((0, 2, 3))
    assert len(set(columns.round(decimals=5).tolist())) == 7


def test_a_start_only_grows():
    small = _trained_looking_start()
    with pytest.raises(ModelError, match=r"narrower.*fewer"):
        grow_start(small, StyleNetConfig((4, 4, 8), 0, 3))
    with pytest.raises(ModelError, match="outer kernel 4 can't hold 3"):
        grow_start(small, StyleNetConfig((4, 6, 8), 1, 4))


def test_meta_training_goes_on_from_a_grown_start(tmp_path):
    corpus = load_corpus(make_corpus(tmp_path / "corpus"))
    small_settings = MetaSettings(SMALL, work_side=64, crop=32, batch_size=2)
    MetaTrainer(corpus, small_settings, resolve_runtime("cpu", "fp32"), tmp_path / "a").run(steps=2)
    big = grow_start(load_meta_start(tmp_path / "a" / START), BIG)
    save_meta_start(big.body, big.predictor, big.card, tmp_path / "big.safetensors")
    big_settings = MetaSettings(BIG, work_side=64, crop=32, batch_size=2)
    trainer = MetaTrainer(
        corpus, big_settings, resolve_runtime("cpu", "fp32"), tmp_path / "b",
        tmp_path / "big.safetensors",
    )  # fmt: skip
    assert trainer.step == 2
    trainer.run(steps=4)
    history = load_meta_start(tmp_path / "b" / START).card["training"]["history"]
    assert [h.get("to_step") for h in history if "to_step" in h] == [2, 4]
    assert any("grown_from" in h for h in history)


def test_meta_grow_command(vidstyle_cli, tmp_path):
    small = _trained_looking_start()
    save_meta_start(small.body, small.predictor, small.card, tmp_path / "small.safetensors")
    config = tmp_path / "big.toml"
    config.write_text("[network]\nchannels = [7, 12, 16]\nresidual_blocks = 3\nouter_kernel = 7\n")
    result = vidstyle_cli(
        "meta", "grow", tmp_path / "big.safetensors", str(tmp_path / "small.safetensors"),
        "-p", "balanced", "-c", config,
    )  # fmt: skip
    assert result.code == 0, result.err_lines
    assert load_meta_start(tmp_path / "big.safetensors").config == BIG
    config.write_text("[network]\nchannels = [2, 12, 16]\n")
    result = vidstyle_cli(
        "meta", "grow", tmp_path / "bad.safetensors", str(tmp_path / "small.safetensors"),
        "-c", config,
    )  # fmt: skip
    assert result.code != 0 and len(result.err_lines) == 1 and "narrower" in result.err_lines[0]
    assert not (tmp_path / "bad.safetensors").exists()
