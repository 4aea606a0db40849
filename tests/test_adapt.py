"""Adaptation learns (losses fall), the cache is keyed right, and the warm-start chain resets at
scene cuts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.synth import CUT_AT, frame_id, make_clip, make_sequence
from vidstyle.adapt import adapt
from vidstyle.adapt.adapt import training_fingerprint, work_side
from vidstyle.adapt.cache import model_key
from vidstyle.adapt.data import RunSampler, content_runs, video_runs
from vidstyle.adapt.trainer import _chain_inputs, train_stylenet
from vidstyle.config import Settings, load_settings, training_mode
from vidstyle.flow import warp_torch
from vidstyle.io import VideoReader
from vidstyle.models.device import resolve_runtime
from vidstyle.models.losses import temporal_loss
from vidstyle.models.stylenet import StyleNet, StyleNetConfig
from vidstyle.pipeline.engine import render
from vidstyle.pipeline.job import RenderJob
from vidstyle.pipeline.stylizer import Stylizer

pytestmark = pytest.mark.usefixtures("torch_one_thread")
CPU = resolve_runtime("cpu", "fp32")
DRAFT = load_settings("draft").adapt


def _style(seed: int = 0) -> torch.Tensor:
    """A strongly textured style image: diagonal stripes in two colours."""
    y, x = np.mgrid[0:64, 0:64]
    stripes = ((x + y) // 4 % 2).astype(np.float32)
    image = np.stack([stripes, 0.3 + 0 * stripes, 1 - stripes], axis=0)
    return torch.from_numpy(image)[None].float()


def _tail_mean(values: list[float], n: int = 8) -> float:
    return float(np.mean(values[-n:]))


def _head_mean(values: list[float], n: int = 8) -> float:
    return float(np.mean(values[:n]))


def _flicker(net: StyleNet, runs) -> float:
    """Temporal loss of a 2-frame warm chain on fixed crops (same crops for every network)."""
    batch = RunSampler(runs, 48, seed=123).sample(4, 2, CPU.device)
    net.eval()
    with torch.no_grad():
        first = net(batch.frames[:, 0])
        warped, mask = _chain_inputs(first, batch, 1)
        second = net(batch.frames[:, 1], warped, mask)
        warped_frame = warp_torch(batch.frames[:, 0], batch.flows[:, 0])
        return float(temporal_loss(second, warped, mask, batch.frames[:, 1], warped_frame))


@pytest.mark.slow  # tens of seconds on 2 cores: left out of `pytest -m "not slow"`
def test_adaptation_learns_the_style_and_the_temporal_loss_makes_it_steady(tmp_path):
    clip = make_clip(tmp_path / "pan.mp4", size=(96, 64), frames=10, audio=False)
    settings = load_settings("draft")
    a = settings.adapt
    a.random_steps, a.batch_size, a.crop, a.burn_in, a.learning_rate = 60, 2, 48, 2, 5e-3
    a.content_weight = 1.0  # the mechanism, not the draft preset's tuning
    runs = video_runs(
        clip, max_side=96, runs=3, length=a.burn_in + a.sequence_length, flow_max_side=96
    )
    trained = {}
    for weight in (0.0, a.temporal_weight):
        a.temporal_weight = weight
        torch.manual_seed(0)
        # The plain network: at this size and 60 steps the anti-aliased one learns the same
        # way but slower (style loss 0.74x its start instead of < 0.7x).
        net = StyleNet(StyleNetConfig((8, 16, 16), 1, 3, antialias=False))
        log = train_stylenet(net, RunSampler(runs, a.crop, seed=0), _style(), a, CPU, "warm")
        assert _tail_mean(log.style) < 0.7 * _head_mean(log.style)  # the style is learnt
        assert all(np.isfinite(log.content))
        trained[weight] = net
    # Same seed, same data: the temporal loss is what makes the warm-started output steady.
    assert _flicker(trained[a.temporal_weight], runs) < 0.5 * _flicker(trained[0.0], runs)


def test_the_colour_loss_pulls_the_output_towards_the_style_palette(tmp_path):
    """colour_weight adds the Lab sliced-Wasserstein term: logged, and it falls in training."""
    clip = make_clip(tmp_path / "pan.mp4", size=(64, 48), frames=4, audio=False)
    settings = load_settings("draft")
    a = settings.adapt
    a.random_steps, a.batch_size, a.crop, a.learning_rate = 30, 2, 32, 5e-3
    a.colour_weight = 0.1
    runs = video_runs(clip, max_side=64, runs=2, length=1, flow_max_side=64)
    torch.manual_seed(0)
    net = StyleNet(StyleNetConfig((4, 8, 8), 1, 3, antialias=False))
    log = train_stylenet(net, RunSampler(runs, a.crop, seed=0), _style(), a, CPU, "off")
    assert len(log.colour) == 30 and log.summary()["colour"] > 0
    assert _tail_mean(log.colour, 5) < 0.8 * _head_mean(log.colour, 5)


def test_cache_key_follows_style_settings_and_footage():
    base = model_key("style-a", {"steps": 10}, ["clip-1"])
    assert model_key("style-a", {"steps": 10}, ["clip-1"]) == base
    assert model_key("style-b", {"steps": 10}, ["clip-1"]) != base
    assert model_key("style-a", {"steps": 11}, ["clip-1"]) != base
    assert model_key("style-a", {"steps": 10}, ["clip-2"]) != base


def test_carry_mode_reuses_the_per_frame_model_and_warm_does_not():
    """carry paints with the per-frame (off) network: switching between them must not retrain."""

    def fingerprint(mode: str) -> dict:
        settings = load_settings("draft", None, {"render": {"temporal": mode}})
        return training_fingerprint(settings, 64)

    assert fingerprint("carry") == fingerprint("off")
    assert fingerprint("loss-only") != fingerprint("off")
    assert fingerprint("warm") != fingerprint("off")


# Every setting, by when it changes the trained weights (and so the adapted-model cache key),
# with another valid value for it. A new setting fails test_every_setting_is_classified until it
# is listed here (and, if it changes the weights, read by training_fingerprint).
WEIGHT_SETTINGS = {
    "always": {
        "network.channels": [8, 16, 32],
        "network.residual_blocks": 2,
        "network.outer_kernel": 3,
        "network.carry_max": 0.7,
        "network.antialias": False,
        "render.max_side": 256,  # the work size (a smaller output lowers it too)
        "adapt.seed": 1,
        "adapt.crop": 96,
        "adapt.sample_runs": 8,
        "adapt.style_scale": 1.5,
    },
    "while training (steps > 0)": {
        "adapt.batch_size": 3,
        "adapt.content_weight": 2.0,
        "adapt.style_weight": 5.0,
        "adapt.tv_weight": 0.01,
        "adapt.colour_weight": 0.5,
    },
    "while training from the meta start": {
        "adapt.meta_affine_lr": 0.01,
        "adapt.meta_body_lr": 1e-4,
        "adapt.meta_schedule": "cosine",
    },
    "from a random start": {"adapt.learning_rate": 1e-3, "adapt.random_steps": 50},
    "from the meta start on a CPU": {"adapt.cpu_steps": 5},
    "from the meta start on a GPU": {"adapt.steps": 50},
    "in temporal training (loss-only, warm)": {"adapt.sequence_length": 5},
    "while training temporally": {
        "adapt.temporal_weight": 10.0,
        "render.flow": "raft",
        "render.flow_max_side": 320,
    },
    "in warm training": {"adapt.burn_in": 2},
    "never": {
        "render.output_max_side": 4096,
        "render.scene_cut": False,
        "render.strength": 0.5,
        "render.preserve_color": True,
        "render.tile": 512,
        "render.tile_overlap": 32,
        "render.batch_size": 3,
        "render.lanes": 2,
        "render.lane_overlap": 4,
        "render.carry": 0.5,
        "render.carry_detail": 0.5,
        "render.carry_tone_sigma": 8.0,
        "render.carry_sigma": 4.0,
        "render.device": "cuda",  # beyond the step count it chooses (on_cpu, below)
        "render.precision": "fp32",  # rounding only
        "render.working_space": "off",
        "encode.codec": "libx265",
        "encode.crf": 20,
        "encode.preset": "slow",
        "encode.pix_fmt": "yuv444p",
        "encode.audio": False,
    },
}
WHEN = {
    "always": lambda c: True,
    "while training (steps > 0)": lambda c: c["steps"] > 0,
    "while training from the meta start": lambda c: c["meta"] and c["steps"] > 0,
    "from a random start": lambda c: not c["meta"],
    "from the meta start on a CPU": lambda c: c["meta"] and c["cpu"],
    "from the meta start on a GPU": lambda c: c["meta"] and not c["cpu"],
    "in temporal training (loss-only, warm)": lambda c: c["mode"] != "off",
    "while training temporally": lambda c: c["mode"] != "off" and c["steps"] > 0,
    "in warm training": lambda c: c["mode"] == "warm",
    "never": lambda c: False,
}
#: Settings that choose how the network is trained (tested on their own, below).
CHOOSE_THE_TRAINING = ["adapt.start", "adapt.meta_start", "render.temporal"]
#: (temporal mode, adapt overrides, on a CPU): every way adaptation trains.
TRAININGS = [
    ("off", {}, True),
    ("carry", {}, False),
    ("off", {"cpu_steps": 0}, True),  # the meta start's prediction as is
    ("loss-only", {}, True),
    ("loss-only", {"cpu_steps": 0}, True),
    ("off", {"start": "random"}, True),
    ("loss-only", {"start": "random"}, False),
    ("warm", {}, True),  # always from a random start
]


def _training_key(mode: str, adapt: dict, on_cpu: bool, change: dict | None = None) -> dict:
    overrides = {"render": {"temporal": mode}, "adapt": dict(adapt), "network": {}, "encode": {}}
    for name, value in (change or {}).items():
        section, key = name.split(".")
        overrides[section][key] = value
    settings = load_settings("draft", None, overrides)
    return training_fingerprint(settings, work_side([], settings.render.max_side), on_cpu)


def test_every_setting_is_classified():
    listed = [name for group in WEIGHT_SETTINGS.values() for name in group] + CHOOSE_THE_TRAINING
    tables = {s: t for s, t in Settings().to_dict().items() if s != "preset"}
    every = [f"{section}.{key}" for section, table in tables.items() for key in table]
    assert sorted(listed) == sorted(every) and set(WEIGHT_SETTINGS) == set(WHEN)


@pytest.mark.parametrize(
    "group, name, value",
    [(g, n, v) for g, table in WEIGHT_SETTINGS.items() for n, v in table.items()],
)
def test_cache_key_holds_exactly_what_changes_the_weights(group, name, value):
    for mode, adapt_overrides, on_cpu in TRAININGS:
        context = {
            "mode": training_mode(mode),  # carry trains as off
            "meta": mode != "warm" and adapt_overrides.get("start", "meta") == "meta",
            "cpu": on_cpu,
            "steps": adapt_overrides.get("cpu_steps", DRAFT.cpu_steps) if on_cpu else DRAFT.steps,
        }
        base = _training_key(mode, adapt_overrides, on_cpu)
        changed = _training_key(mode, adapt_overrides, on_cpu, {name: value}) != base
        assert changed == WHEN[group](context), (mode, adapt_overrides, on_cpu)


def test_cache_key_follows_the_start_and_the_training_mode():
    meta, random = _training_key("off", {}, True), _training_key("off", {"start": "random"}, True)
    assert meta["adapt"]["start"] not in ("", "random") and meta != random
    # warm always trains from scratch: asking for the meta start changes nothing
    assert _training_key("warm", {}, True) == _training_key("warm", {"start": "random"}, True)
    assert _training_key("loss-only", {}, True) != meta


def test_cache_key_follows_the_meta_start_it_adapts_from(tmp_path):
    """`[adapt] meta_start` names another start: models adapted from it are other models. From
    a random start the start is not read, so naming one changes nothing."""
    from vidstyle.models.meta_start import read_card, save_meta_start
    from vidstyle.models.predictor import StylePredictor
    from vidstyle.models.stylenet import style_parameter_count

    body = StyleNet(StyleNetConfig((8, 16, 16), 1, 3))
    predictor = StylePredictor(style_parameter_count(body))
    own = str(save_meta_start(body, predictor, {}, tmp_path / "own.safetensors"))
    shipped = _training_key("off", {}, True)
    mine = _training_key("off", {"meta_start": own}, True)
    assert mine["adapt"]["start"] == read_card(own)["weights_sha256"] != shipped["adapt"]["start"]
    scratch = _training_key("off", {"start": "random"}, True)
    assert _training_key("off", {"start": "random", "meta_start": own}, True) == scratch


def test_adapt_writes_a_model_once_and_reuses_it(tmp_path, monkeypatch, style_image):
    monkeypatch.setenv("VIDSTYLE_CACHE", str(tmp_path / "cache"))
    clip = make_clip(tmp_path / "c.mp4", size=(64, 48), frames=6, audio=False)
    settings = load_settings("draft", overrides={"render": {"max_side": 64}})
    settings.network = StyleNetConfig((4, 8, 8), 1, settings.network.outer_kernel)
    settings.adapt.start = "random"  # a tiny network: the shipped meta start does not fit it
    settings.adapt.random_steps, settings.adapt.crop, settings.adapt.sample_runs = 2, 32, 2
    first = adapt(style_image, [clip], settings, CPU, progress=False)
    assert first.trained and first.path is not None and first.path.is_file()
    second = adapt(style_image, [clip], settings, CPU, progress=False)
    assert not second.trained and second.path == first.path
    settings.adapt.random_steps = 3  # another setting: another model
    assert adapt(style_image, [clip], settings, CPU, progress=False).trained


@pytest.mark.parametrize("preset", ["draft", "balanced"])
def test_zero_steps_gives_each_presets_start_as_predicted(
    tmp_path, monkeypatch, style_image, preset
):
    """`--steps 0`: the meta start's predicted network at once, whatever the preset's schedule
    (balanced and best decay theirs along a cosine over the steps) and its start (best: the
    full-width one)."""
    from vidstyle.models.meta_start import read_card, start_path

    monkeypatch.setenv("VIDSTYLE_CACHE", str(tmp_path / "cache"))
    clip = make_clip(tmp_path / "c.mp4", size=(64, 48), frames=6, audio=False)
    settings = load_settings(preset, overrides={"render": {"max_side": 64}})
    settings.adapt.steps = settings.adapt.cpu_steps = 0
    settings.adapt.crop, settings.adapt.batch_size, settings.adapt.sample_runs = 32, 2, 2
    model = adapt(style_image, [clip], settings, CPU, progress=False)
    assert model.trained and model.path.is_file()
    training = model.card.training
    assert training["start"] == "meta" and training["adapt"]["steps"] == 0
    shipped = read_card(start_path(settings.adapt.meta_start))
    assert training["meta_start_sha256"] == shipped["weights_sha256"]
    assert model.net.config == StyleNetConfig.from_dict(shipped["network"])


def _write_lossless(path, frames: list[np.ndarray], rate: int = 25):
    """Frames (RGB uint8) as an FFV1 clip: decoded back bit-exact."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=rate)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "bgr0"
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("mode", ["warm", "carry"])
def test_scene_cut_resets_the_chain(tmp_path, tiny_model, mode):
    """After a hard cut the new shot is painted as if it were a clip of its own: its first frame
    cold, the next ones carried from it, and nothing of the previous shot leaks in."""
    clip = make_clip(
        tmp_path / "cut.mp4",
        size=(96, 64),
        frames=10,
        motion="cut",
        audio=False,
        codec="ffv1",
        pix_fmt="bgr0",
    )
    with VideoReader(clip) as reader:
        frames = [f.rgb for f in reader]
    second_shot = _write_lossless(tmp_path / "second_shot.mkv", frames[CUT_AT:])
    settings = load_settings(
        "draft",
        overrides={"render": {"max_side": 0, "temporal": mode}, "encode": {"codec": "ffv1"}},
    )
    from vidstyle.models.store import load_model

    net, _ = load_model(tiny_model)
    stylizer = Stylizer(net, CPU, settings.render)
    rendered = {}
    for source in (clip, second_shot):
        out = tmp_path / f"{source.stem}_out.mkv"
        stats = render(RenderJob(source, out, settings, progress=False), stylizer)
        assert stats.scene_cuts == ([CUT_AT] if source == clip else [])
        with VideoReader(out) as reader:
            rendered[source] = [f.rgb.astype(int) for f in reader]
    after_cut, alone = rendered[clip][CUT_AT:], rendered[second_shot]
    assert len(after_cut) == len(alone) == len(frames) - CUT_AT
    for index, (a, b) in enumerate(zip(after_cut, alone, strict=True)):
        assert np.abs(a - b).max() <= 1, f"frame {CUT_AT + index} differs from the shot alone"
    # ... and within the shot the chain carries: the frame after the cut is not its cold paint
    cold_next = stylizer.download(stylizer.network(stylizer.upload([frames[CUT_AT + 1]])))[0]
    assert np.abs(after_cut[1] - cold_next.astype(int)).max() > 1


def test_adaptation_samples_an_image_sequence_across_the_whole_shot(tmp_path):
    """VFX plates come as image sequences: training runs must cover the shot, not its start."""
    pattern = make_sequence(tmp_path / "plate", frames=30, size=(128, 96))
    runs = content_runs([pattern], max_side=128, runs=3, length=2, flow_max_side=128)
    firsts = [frame_id(run.frames[0]) for run in runs]
    assert firsts == [0, 14, 28]
    assert all(run.length == 2 and run.flows.shape[0] == 1 for run in runs)
