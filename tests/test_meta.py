"""The meta-learned start: shipped weights load offline and safely, meta-training resumes exactly,
and adaptation from a (tiny, quickly trained) start beats adaptation from scratch."""

from __future__ import annotations

import hashlib
import itertools
import json
import pickle
import shutil
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vidstyle.adapt.adapt import initial_network, style_tensor
from vidstyle.adapt.corpus import CorpusError, load_corpus
from vidstyle.adapt.corpus_cache import prepare_corpus
from vidstyle.adapt.data import RunSampler, image_runs
from vidstyle.adapt.meta_train import START, MetaSettings, MetaTrainer
from vidstyle.adapt.trainer import TRAIN_STYLE_LAYERS, StyleTargets, train_stylenet
from vidstyle.config import Settings, adaptation_steps, load_settings
from vidstyle.errors import ConfigError, ModelError
from vidstyle.models.device import resolve_runtime
from vidstyle.models.meta_start import load_meta_start, shipped_path
from vidstyle.models.stylenet import StyleNetConfig
from vidstyle.models.vgg import CONTENT_LAYER, VGG19Features

pytestmark = pytest.mark.usefixtures("torch_one_thread", "isolated_cache")
CPU = resolve_runtime("cpu", "fp32")
TINY = StyleNetConfig((8, 16, 16), 1, 3)


def _pattern(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """A style: stripes or checks of a random period in two random colours."""
    y, x = np.mgrid[0:size, 0:size]
    period = int(rng.integers(3, 9))
    mask = ((x + y) // period % 2) if rng.random() < 0.5 else ((x // period + y // period) % 2)
    a, b = rng.integers(0, 256, size=(2, 3))
    return np.where(mask[..., None] == 1, a, b).astype(np.uint8)


def _scene(rng: np.random.Generator, size: tuple[int, int] = (80, 60)) -> np.ndarray:
    """Content: a smooth gradient with a few flat rectangles."""
    w, h = size
    gx, gy = np.meshgrid(np.linspace(0, 1, w), np.linspace(0, 1, h))
    image = np.stack([gx, gy, 1 - gx], -1) * 255
    for _ in range(3):
        x0, y0 = rng.integers(0, w - 16), rng.integers(0, h - 16)
        image[y0 : y0 + 16, x0 : x0 + 16] = rng.integers(0, 256, 3)
    return image.astype(np.uint8)


def make_corpus(root: Path, styles: int = 8, contents: int = 4, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    items = []
    for kind, count, make in (("style", styles, _pattern), ("content", contents, _scene)):
        for i in range(count):
            path = root / kind / f"{kind}{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), make(rng)[..., ::-1])
            items.append(
                {
                    "file": f"{kind}/{path.name}",
                    "kind": kind,
                    "split": "heldout" if kind == "style" and i == 0 else "train",
                    "source": "test",
                    "licence": "generated",
                    "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                }
            )
    (root / "manifest.json").write_text(json.dumps({"version": 1, "items": items}))
    return root


def _meta_settings() -> MetaSettings:
    return MetaSettings(TINY, work_side=64, crop=32, batch_size=2, checkpoint_seconds=1e9)


def _weights(trainer: MetaTrainer) -> dict[str, torch.Tensor]:
    return {
        **{f"b.{k}": v for k, v in trainer.body.state_dict().items()},
        **{f"p.{k}": v for k, v in trainer.predictor.state_dict().items()},
    }


def test_shipped_start_loads_offline_without_pickle(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("loading the start must not unpickle or reach the network")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    start = load_meta_start(shipped_path())
    card = start.card
    assert card["training"]["steps"] > 0
    assert len(card["training"]["corpus_manifest_sha256"]) == 64
    assert "vidstyle meta train" in card["training"]["command"]
    assert shipped_path().stat().st_size < 8 * 2**20  # small enough to ship
    monkeypatch.undo()  # (the VGG loss network below is loaded with torch.load(weights_only))
    # the draft preset's network is the one the start is for, and at 0 steps its painting
    # already leans to the style's palette: a warm style paints warmer than a cool one
    content = torch.linspace(0, 1, 64).repeat(2, 3, 48, 1)  # a grey ramp, no colour of its own
    content = content * (
        0.75 + 0.25 * torch.rand(2, 1, 48, 64, generator=torch.Generator().manual_seed(0))
    )
    mean_colour = {}
    for name, palette in {"warm": (0.85, 0.35, 0.1), "cool": (0.1, 0.35, 0.85)}.items():
        y, x = torch.meshgrid(torch.arange(96), torch.arange(96), indexing="ij")
        stripes = (((x + y) // 6) % 2).float()
        style = torch.tensor(palette).view(1, 3, 1, 1) * (0.6 + 0.4 * stripes)
        net = initial_network(load_settings("draft"), style)[0]
        assert net.config == start.config
        with torch.no_grad():
            painted = net.train()(content)
        assert painted.shape == content.shape and torch.isfinite(painted).all()
        mean_colour[name] = painted.mean((0, 2, 3))
    red_minus_blue = {k: float(v[0] - v[2]) for k, v in mean_colour.items()}
    assert red_minus_blue["warm"] > red_minus_blue["cool"] + 0.3, red_minus_blue


def test_every_preset_that_adapts_from_a_start_ships_one_for_its_network(monkeypatch):
    """A preset's `meta_start` names a start in the package that fits the preset's network and
    loads without pickle or network (the full-width `best` trains from scratch until one
    ships for it: README, Limits)."""
    from vidstyle.adapt.adapt import network_config
    from vidstyle.config import available_presets
    from vidstyle.models.meta_start import start_path

    def refuse(*_args, **_kwargs):
        raise AssertionError("loading a start must not unpickle or reach the network")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    presets = [p for p in available_presets() if load_settings(p).adapt.start == "meta"]
    assert {"draft", "balanced"} <= set(presets)
    for preset in presets:
        settings = load_settings(preset)
        path = start_path(settings.adapt.meta_start)
        start = load_meta_start(path)
        assert start.config == network_config(settings), preset
        assert path.stat().st_size < 8 * 2**20
        assert start.card["training"]["steps"] > 0 and start.card["heldout"]["styles"] >= 20


def test_a_corrupt_or_mismatched_start_is_one_clear_error(tmp_path):
    weights = tmp_path / "start.safetensors"
    shutil.copy(shipped_path(), weights)
    shutil.copy(shipped_path().with_suffix(".json"), weights.with_suffix(".json"))
    card = json.loads(weights.with_suffix(".json").read_text())
    card["network"]["channels"] = [8, 16, 32]
    weights.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="don't match the network"):
        load_meta_start(weights)
    weights.write_bytes(shipped_path().read_bytes()[:1000])
    with pytest.raises(ModelError, match="corrupt meta-start weights"):
        load_meta_start(weights)
    weights.with_suffix(".json").unlink()
    with pytest.raises(ModelError, match="missing"):
        load_meta_start(weights)


def test_a_network_the_start_does_not_fit_is_a_config_error():
    settings = load_settings("best", overrides={"adapt": {"start": "meta"}})
    with pytest.raises(ConfigError, match='start = "random"'):
        initial_network(settings, torch.rand(1, 3, 32, 32))


def test_a_start_trained_by_the_user_is_named_in_a_config(
    vidstyle_cli, tmp_path, style_image, cfr_clip, isolated_cache
):
    """A studio meta-trains a start on its own style library and adapts from it by naming the
    file in `[adapt] meta_start`; the adapted model's card says which start it came from, and
    an unknown start name is one clear line."""
    corpus = load_corpus(make_corpus(tmp_path / "corpus"))
    MetaTrainer(corpus, _meta_settings(), CPU, tmp_path / "run").run(steps=2)
    own = load_meta_start(tmp_path / "run" / START)
    config = tmp_path / "own.toml"
    config.write_text(
        "[network]\nchannels = [8, 16, 16]\nresidual_blocks = 1\nouter_kernel = 3\n"
        f'[adapt]\nmeta_start = "{tmp_path / "run" / START}"\ncrop = 32\nbatch_size = 1\n'
        "sample_runs = 2\n[render]\nmax_side = 64\n"
    )
    model = tmp_path / "model.safetensors"
    argv = ["adapt", style_image, "-o", model, "--content", cfr_clip, "-c", config, "--steps", "1"]
    result = vidstyle_cli(*argv, "--temporal", "off", "-q")
    assert result.code == 0, result.err_lines
    training = json.loads(vidstyle_cli("info", model, "--json").out)["training"]
    assert training["start"] == "meta"
    assert training["meta_start_sha256"] == own.sha256 == training["adapt"]["start"]

    config.write_text('[adapt]\nmeta_start = "meta-nonesuch"\n')
    unknown = vidstyle_cli(*argv[:3], tmp_path / "other.safetensors", *argv[4:], "-q")
    assert unknown.code != 0 and not (tmp_path / "other.safetensors").exists()
    assert len(unknown.err_lines) == 1
    assert "meta-nonesuch" in unknown.err_lines[0] and "meta-slim" in unknown.err_lines[0]


def test_steps_follow_the_device_and_warm_mode_trains_from_scratch():
    draft = load_settings("draft")
    a = draft.adapt
    assert adaptation_steps(draft, on_cpu=True) == a.cpu_steps < adaptation_steps(draft, False)
    warm = load_settings("draft", overrides={"render": {"temporal": "warm"}})
    assert adaptation_steps(warm, on_cpu=True) == a.random_steps


def test_corpus_checks_its_files(tmp_path):
    root = make_corpus(tmp_path / "corpus", styles=3, contents=1)
    corpus = load_corpus(root)
    assert [i.path.name for i in corpus.styles("heldout")] == ["style0.png"]
    assert len(corpus.styles("train")) == 2 and len(corpus.content()) == 1
    (root / "style" / "style1.png").write_bytes(b"changed")
    with pytest.raises(CorpusError, match="sha256"):
        load_corpus(root)


def test_the_prepared_corpus_is_cached_and_loads_identical(tmp_path, isolated_cache):
    """A later chunk loads the style bank and content images instead of recomputing them (minutes
    for a real corpus); what it loads equals what was built, and a stale or corrupt file is
    rebuilt rather than trusted."""
    corpus = load_corpus(make_corpus(tmp_path / "corpus"))
    vgg = VGG19Features((*TRAIN_STYLE_LAYERS, CONTENT_LAYER))
    built = prepare_corpus(corpus, vgg, 64, CPU.device)
    loaded = prepare_corpus(corpus, vgg, 64, CPU.device)
    assert not built.loaded_from_cache and loaded.loaded_from_cache
    torch.testing.assert_close(loaded.bank.stats, built.bank.stats, rtol=0, atol=0)
    for a, b in zip(loaded.bank.targets, built.bank.targets, strict=True):
        assert a.grams.keys() == b.grams.keys() and a.scale == b.scale
        for layer in a.grams:
            torch.testing.assert_close(a.grams[layer], b.grams[layer], rtol=0, atol=0)
    assert [c.shape for c in loaded.content] == [c.shape for c in built.content]
    assert all(np.array_equal(a, b) for a, b in zip(loaded.content, built.content, strict=True))

    assert not prepare_corpus(corpus, vgg, 48, CPU.device).loaded_from_cache  # another size
    for path in (isolated_cache / "corpus").glob("*.safetensors"):
        path.write_bytes(b"not a safetensors file")
    assert not prepare_corpus(corpus, vgg, 64, CPU.device).loaded_from_cache
    assert prepare_corpus(corpus, vgg, 64, CPU.device).loaded_from_cache  # rewritten


def test_meta_training_resumes_exactly_where_it_stopped(tmp_path):
    corpus = load_corpus(make_corpus(tmp_path / "corpus"))
    interrupted = MetaTrainer(corpus, _meta_settings(), CPU, tmp_path / "a")
    interrupted.run(steps=3)
    resumed = MetaTrainer(corpus, _meta_settings(), CPU, tmp_path / "a")
    assert resumed.step == 3
    resumed.run(steps=6)
    straight = MetaTrainer(corpus, _meta_settings(), CPU, tmp_path / "b")
    straight.run(steps=6)
    a, b = _weights(resumed), _weights(straight)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], msg=name)
    assert load_meta_start(tmp_path / "a" / START).card["training"]["steps"] == 6


def test_an_annealed_chunk_decays_its_rates_to_the_floor_and_says_so(tmp_path):
    corpus = load_corpus(make_corpus(tmp_path / "corpus"))
    settings = _meta_settings()
    settings.anneal_to = 0.1
    trainer = MetaTrainer(corpus, settings, CPU, tmp_path / "run")
    rates = []
    original = trainer.train_step

    def recording_step():
        rates.append([g["lr"] for g in trainer.optimiser.param_groups])
        return original()

    trainer.train_step = recording_step
    trainer.run(steps=5)
    body = [r[0] for r in rates]
    assert body[0] == pytest.approx(settings.body_lr)
    assert all(a > b for a, b in itertools.pairwise(body))  # strictly decaying
    last = 0.1 + 0.9 * 0.5 * (1 + np.cos(0.8 * np.pi))  # the 5th of 5 steps starts at 4/5
    assert body[-1] == pytest.approx(settings.body_lr * last)
    assert [r[1] / r[0] for r in rates] == pytest.approx([0.1] * 5)  # predictor in step
    assert trainer.history[-1]["anneal_to"] == 0.1

    resumed = MetaTrainer(corpus, _meta_settings(), CPU, tmp_path / "run")  # a constant chunk
    resumed.run(steps=6)
    assert [g["lr"] for g in resumed.optimiser.param_groups] == [1e-3, 1e-4]
    assert "anneal_to" not in resumed.history[-1]


def test_first_order_maml_adds_the_gradient_after_adaptation(tmp_path):
    """With the inner rates at 0 the adapted network is the start, so a first-order MAML step's
    gradient must be exactly the joint gradient of the loss on its first crops plus the loss on
    its query crops: this checks the plumbing into body and predictor, (gamma, beta) included."""
    corpus = load_corpus(make_corpus(tmp_path / "corpus"))
    settings = _meta_settings()
    settings.inner_steps, settings.inner_affine_lr, settings.inner_body_lr = 1, 0.0, 0.0
    maml = MetaTrainer(corpus, settings, CPU, tmp_path / "maml")
    parts = maml.accumulate_gradients()
    assert parts["adapted_style"] > 0

    joint = MetaTrainer(corpus, _meta_settings(), CPU, tmp_path / "joint")
    index = joint._next_style()
    first, _inner, query = joint._crops(), joint._crops(), joint._crops()  # MAML's draw order
    joint.optimiser.zero_grad()
    overrides = joint.style_overrides(index)
    (joint._loss(overrides, first, index)[0] + joint._loss(overrides, query, index)[0]).backward()

    expected = {**_grads(joint.body, "body."), **_grads(joint.predictor, "predictor.")}
    got = {**_grads(maml.body, "body."), **_grads(maml.predictor, "predictor.")}
    assert got.keys() == expected.keys() and any(k.startswith("predictor.") for k in got)
    for name in got:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-6, msg=name)


def test_first_order_maml_moves_the_start_differently_and_resumes(tmp_path):
    corpus = load_corpus(make_corpus(tmp_path / "corpus"))
    settings = _meta_settings()
    settings.inner_steps = 2
    maml = MetaTrainer(corpus, settings, CPU, tmp_path / "maml")
    maml.run(steps=2)
    joint = MetaTrainer(corpus, _meta_settings(), CPU, tmp_path / "joint")
    joint.run(steps=2)
    a, b = _weights(maml), _weights(joint)
    assert any(not torch.equal(a[k], b[k]) for k in a)
    card = load_meta_start(tmp_path / "maml" / START).card["training"]
    assert card["steps"] == 2
    assert card["history"][-1]["first_order_maml"]["inner_steps"] == 2


def test_hard_share_draws_the_styles_that_train_worst_and_resumes(tmp_path):
    corpus = load_corpus(make_corpus(tmp_path / "corpus"))
    settings = _meta_settings()
    settings.hard_share = 1.0
    trainer = MetaTrainer(corpus, settings, CPU, tmp_path / "run")
    first = trainer._next_style()  # nothing seen yet: the shuffled epoch
    trainer.difficulty = [0.1] * len(trainer.styles)
    trainer.difficulty[first] = 3.0
    drawn = [trainer._next_style() for _ in range(200)]
    share = drawn.count(first) / len(drawn)  # 9 / (9 + 0.01 * others): nearly all
    assert share > 0.9

    settings.hard_share = 0.5
    interrupted = MetaTrainer(corpus, settings, CPU, tmp_path / "a")
    interrupted.run(steps=3)
    assert sum(d is not None for d in interrupted.difficulty) >= 1
    resumed = MetaTrainer(corpus, settings, CPU, tmp_path / "a")
    assert resumed.difficulty == interrupted.difficulty
    resumed.run(steps=6)
    straight = MetaTrainer(corpus, settings, CPU, tmp_path / "b")
    straight.run(steps=6)
    for name, value in _weights(resumed).items():
        torch.testing.assert_close(value, _weights(straight)[name], msg=name)
    assert resumed.history[-1]["hard_share"] == 0.5


def _grads(module: torch.nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    return {prefix + n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


def _style_loss_after(net, steps, from_meta, sampler_runs, style, settings) -> float:
    a = settings.adapt
    a.batch_size, a.crop = 2, 32
    if steps:
        train_stylenet(
            net, RunSampler(sampler_runs, 32, seed=1), style, a, CPU, "off",
            steps=steps, from_meta=from_meta,
        )  # fmt: skip
    vgg = VGG19Features((*TRAIN_STYLE_LAYERS, CONTENT_LAYER))
    frames = (
        torch.stack([torch.from_numpy(r.frames[0]).permute(2, 0, 1) for r in sampler_runs]).float()
        / 255
    )
    with torch.no_grad():
        return float(StyleTargets(vgg, style).loss(vgg(net.train()(frames))))


@pytest.mark.slow  # tens of seconds on 2 cores: left out of `pytest -m "not slow"`
def test_adaptation_from_a_meta_start_needs_fewer_steps(tmp_path):
    """On a tiny synthetic case: a start meta-trained on 7 pattern styles reaches, on an unseen
    pattern, the style loss that 12 steps from scratch reach, in half the steps."""
    corpus = load_corpus(make_corpus(tmp_path / "corpus"))
    MetaTrainer(corpus, _meta_settings(), CPU, tmp_path / "run").run(steps=150)
    start = load_meta_start(tmp_path / "run" / START)
    settings = Settings(network=TINY)
    style = style_tensor(corpus.styles("heldout")[0].path, 64)
    runs = image_runs([i.path for i in corpus.content()], 64)
    scratch = initial_network(_random(settings), style)[0]
    target = _style_loss_after(scratch, 12, False, runs, style, settings)
    meta_net = initial_network(settings, style, start)[0]
    assert _style_loss_after(meta_net, 6, True, runs, style, settings) < target


def _random(settings: Settings) -> Settings:
    import copy

    other = copy.deepcopy(settings)
    other.adapt.start = "random"
    return other


def test_meta_train_without_a_budget_says_so(vidstyle_cli, tmp_path):
    result = vidstyle_cli("meta", "train", tmp_path, tmp_path / "run")
    assert result.code == 2
    assert result.err_lines == [
        "vidstyle: error: vidstyle meta train needs --minutes or --steps (or both)"
    ]


def test_meta_train_takes_its_crops_from_a_config_and_records_them(vidstyle_cli, tmp_path):
    """The crops decide what a start is good at, so a chunk's crops come from --config (on top
    of the preset) and the start's history says which each chunk trained on."""
    corpus = make_corpus(tmp_path / "corpus")
    config = tmp_path / "crops.toml"
    config.write_text(
        "[network]\nchannels = [8, 16, 16]\nresidual_blocks = 1\nouter_kernel = 3\n"
        "[adapt]\ncrop = 40\nbatch_size = 1\n[render]\nmax_side = 64\n"
    )
    run = tmp_path / "run"
    result = vidstyle_cli("meta", "train", corpus, run, "--steps", "2", "-c", config, "-q")
    assert result.code == 0, result.err_lines
    chunk = load_meta_start(run / START).card["training"]["history"][-1]
    assert (chunk["crop"], chunk["batch_size"], chunk["work_side"]) == (40, 1, 64)
    assert chunk["to_step"] == 2


def test_a_pack_trains_what_the_corpus_trains_at_the_work_size(vidstyle_cli, tmp_path):
    """A pack stores large images as training resizes them and small ones byte for byte, keeps
    each item's licence, and says what it was derived from; it loads as a corpus."""
    from vidstyle.adapt.adapt import style_tensor
    from vidstyle.adapt.data import images_at_side

    root = make_corpus(tmp_path / "corpus", styles=3, contents=2)
    big = np.random.default_rng(1).integers(0, 256, (150, 200, 3), dtype=np.uint8)
    big = cv2.GaussianBlur(big, (0, 0), 3)  # photo-like, so JPEG keeps it close
    for kind in ("style", "content"):
        cv2.imwrite(str(root / kind / f"{kind}1.png"), big)
    manifest = json.loads((root / "manifest.json").read_text())
    for item in manifest["items"]:
        item["sha256"] = hashlib.sha256((root / item["file"]).read_bytes()).hexdigest()
    (root / "manifest.json").write_text(json.dumps(manifest))
    result = vidstyle_cli("meta", "pack", root, tmp_path / "pack", "--side", "96")
    assert result.code == 0, result.err_lines
    pack = load_corpus(tmp_path / "pack")
    data = json.loads((tmp_path / "pack" / "manifest.json").read_text())
    assert data["derived_from"]["manifest_sha256"] == load_corpus(root).manifest_sha256
    assert all(i["licence"] == "generated" for i in data["items"])
    small = next(i for i in data["items"] if i["file"] == "style/style0.png")
    assert (tmp_path / "pack" / small["file"]).read_bytes() == (root / small["file"]).read_bytes()
    packed_style = style_tensor(tmp_path / "pack" / "style/style1.jpg", 96)
    original_style = style_tensor(root / "style/style1.png", 96)
    assert packed_style.shape == original_style.shape == (1, 3, 72, 96)
    # exactly what training computes from the original, through one JPEG round trip
    resized = (original_style[0].permute(1, 2, 0) * 255).round().byte().numpy()[..., ::-1]
    ok, jpeg = cv2.imencode(".jpg", np.ascontiguousarray(resized), [cv2.IMWRITE_JPEG_QUALITY, 95])
    expected = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[..., ::-1]
    assert ok and np.array_equal((packed_style[0].permute(1, 2, 0) * 255).round().byte(), expected)
    packed, original = (
        images_at_side([c.path for c in corpus.content() if "1" in c.path.name], 96)[0]
        for corpus in (pack, load_corpus(root))
    )
    assert packed.shape == original.shape == (72, 96, 3)
    again = vidstyle_cli("meta", "pack", root, tmp_path / "pack")
    assert again.code != 0 and "already exists" in again.err_lines[0]


def test_meta_train_refuses_a_work_size_the_corpus_cannot_give(vidstyle_cli, tmp_path):
    """`best` renders at the source size (max_side 0), which would shrink every style to 16 px;
    and a pack cannot train above the side it was made at. Both are one clear line, no run."""
    corpus = make_corpus(tmp_path / "corpus", styles=3, contents=2)
    run = tmp_path / "run"
    source_size = vidstyle_cli("meta", "train", corpus, run, "--steps", "1", "-p", "best", "-q")
    assert source_size.code == 2
    assert len(source_size.err_lines) == 1 and "[render] max_side" in source_size.err_lines[0]
    assert vidstyle_cli("meta", "pack", corpus, tmp_path / "pack", "--side", "48").code == 0
    config = tmp_path / "side64.toml"
    config.write_text("[adapt]\ncrop = 32\nbatch_size = 1\n[render]\nmax_side = 64\n")
    too_big = vidstyle_cli("meta", "train", tmp_path / "pack", run, "--steps", "1", "-c", config)
    assert too_big.code != 0
    assert len(too_big.err_lines) == 1 and "--side 64" in too_big.err_lines[0]
    assert not (run / START).exists()


def test_a_start_trained_on_a_pack_averages_within_its_corpus_lineage(vidstyle_cli, tmp_path):
    """A pack is the corpus carried to a GPU machine: a branch trained on it averages with one
    trained on the corpus itself, its card says which corpus the pack came from, and a start
    from an unrelated corpus is still refused."""
    root = make_corpus(tmp_path / "corpus")
    corpus = load_corpus(root)
    MetaTrainer(corpus, _meta_settings(), CPU, tmp_path / "a").run(steps=2)
    assert vidstyle_cli("meta", "pack", root, tmp_path / "pack", "--side", "64").code == 0
    pack = load_corpus(tmp_path / "pack")
    MetaTrainer(pack, _meta_settings(), CPU, tmp_path / "b", tmp_path / "a" / START).run(steps=3)
    training = load_meta_start(tmp_path / "b" / START).card["training"]
    assert training["corpus_manifest_sha256"] == pack.manifest_sha256 != corpus.manifest_sha256
    assert training["corpus_derived_from_sha256"] == corpus.manifest_sha256
    soup = vidstyle_cli(
        "meta", "average", tmp_path / "soup.safetensors", tmp_path / "a" / START,
        tmp_path / "b" / START,
    )  # fmt: skip
    assert soup.code == 0, soup.err_lines
    MetaTrainer(load_corpus(make_corpus(tmp_path / "other", seed=1)), _meta_settings(), CPU,
                tmp_path / "c").run(steps=1)  # fmt: skip
    unrelated = vidstyle_cli(
        "meta", "average", tmp_path / "bad.safetensors", tmp_path / "b" / START,
        tmp_path / "c" / START,
    )  # fmt: skip
    assert unrelated.code != 0 and "another corpus" in unrelated.err_lines[0]


def test_meta_average_writes_the_mean_of_branched_starts(vidstyle_cli, tmp_path):
    corpus = load_corpus(make_corpus(tmp_path / "corpus"))
    MetaTrainer(corpus, _meta_settings(), CPU, tmp_path / "a").run(steps=2)
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # a branch: same checkpoint, then apart
    hard = _meta_settings()
    hard.hard_share = 1.0
    MetaTrainer(corpus, hard, CPU, tmp_path / "b").run(steps=4)
    MetaTrainer(corpus, _meta_settings(), CPU, tmp_path / "a").run(steps=3)
    b_card = (tmp_path / "b" / START).with_suffix(".json")
    card = json.loads(b_card.read_text())
    card["training"]["history"][-1]["device"] = "NVIDIA H200 (bfloat16)"  # a branch on a GPU
    b_card.write_text(json.dumps(card))
    a, b = (load_meta_start(tmp_path / run / START) for run in "ab")

    result = vidstyle_cli(
        "meta", "average", tmp_path / "soup.safetensors", tmp_path / "a" / START,
        tmp_path / "b" / START,
    )  # fmt: skip
    assert result.code == 0, result.err_lines
    soup = load_meta_start(tmp_path / "soup.safetensors")
    for part in ("body", "predictor"):
        mine, theirs = getattr(a, part).state_dict(), getattr(b, part).state_dict()
        for name, value in getattr(soup, part).state_dict().items():
            if value.is_floating_point():
                torch.testing.assert_close(value, (mine[name] + theirs[name]) / 2, msg=name)
    training = soup.card["training"]
    assert training["steps"] == 4  # the furthest ingredient
    assert training["device"] == "cpu (float32); NVIDIA H200 (bfloat16)"
    assert [i["steps"] for i in training["averaged_from"]] == [3, 4]
    assert [i["weights_sha256"] for i in training["averaged_from"]] == [a.sha256, b.sha256]
    assert training["history"] == [{"from_step": 0, "to_step": 2, **training["history"][0]}]
    assert [i["history_after_shared"][-1]["to_step"] for i in training["averaged_from"]] == [3, 4]
    assert training["averaged_from"][1]["history_after_shared"][0]["hard_share"] == 1.0
    assert all("vidstyle meta train" in i["command"] for i in training["averaged_from"])

    other = _meta_settings()
    other.network = StyleNetConfig((8, 16, 16), 2, 3)
    MetaTrainer(corpus, other, CPU, tmp_path / "c").run(steps=1)
    result = vidstyle_cli(
        "meta", "average", tmp_path / "bad.safetensors", tmp_path / "a" / START,
        tmp_path / "c" / START,
    )  # fmt: skip
    assert result.code != 0
    assert len(result.err_lines) == 1
    assert str(tmp_path / "c" / START) in result.err_lines[0]
    assert "another network" in result.err_lines[0]
    assert not (tmp_path / "bad.safetensors").exists()


def test_a_compact_start_is_smaller_and_paints_the_same(vidstyle_cli, tmp_path):
    """`meta compact`: the shipped form of a start (float16 matrices) loads as float32 and
    adapts from nearly the same network; averaging it again stores float32 and says so."""
    corpus = load_corpus(make_corpus(tmp_path / "corpus"))
    MetaTrainer(corpus, _meta_settings(), CPU, tmp_path / "a").run(steps=2)
    source = tmp_path / "a" / START
    result = vidstyle_cli("meta", "compact", source, tmp_path / "small.safetensors")
    assert result.code == 0, result.err_lines
    full, small = load_meta_start(source), load_meta_start(tmp_path / "small.safetensors")
    assert small.card["storage"] == "float16 matrices, float32 vectors"
    assert (tmp_path / "small.safetensors").stat().st_size < 0.6 * source.stat().st_size
    for name, value in small.body.state_dict().items():
        assert value.dtype == full.body.state_dict()[name].dtype
        if value.is_floating_point():
            torch.testing.assert_close(value, full.body.state_dict()[name], atol=2e-3, rtol=2e-3)
    frame = torch.rand(1, 3, 24, 32)
    with torch.no_grad():
        torch.testing.assert_close(small.body(frame), full.body(frame), atol=5e-3, rtol=0)
    result = vidstyle_cli(
        "meta", "average", tmp_path / "soup.safetensors", source, tmp_path / "small.safetensors"
    )
    assert result.code == 0, result.err_lines
    assert "storage" not in load_meta_start(tmp_path / "soup.safetensors").card
