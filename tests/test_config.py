"""Presets, config files and overrides resolve in the documented order, with clear errors."""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from pathlib import Path

import pytest

from vidstyle.config import (
    NetworkSettings,
    Settings,
    available_presets,
    configs_dir,
    load_settings,
    settings_from_dict,
)
from vidstyle.errors import ConfigError
from vidstyle.models.stylenet import StyleNetConfig

#: What every preset resolves to (written from the presets before the defaults moved into
#: vidstyle/config.py): a preset changes only when this file does too.
RESOLVED = json.loads((Path(__file__).parent / "presets.json").read_text())


def test_presets_ship_and_differ():
    assert {"draft", "balanced", "best"} <= set(available_presets())
    draft, best = load_settings("draft"), load_settings("best")
    assert draft.network.channels < best.network.channels
    assert draft.adapt.random_steps < best.adapt.random_steps
    # the slim presets start from the shipped meta-learned start; the full-width one can't
    assert load_settings("balanced").adapt.start == draft.adapt.start == "meta"
    assert best.adapt.start == "random"


def test_order_is_preset_then_file_then_options(tmp_path):
    cfg = tmp_path / "mine.toml"
    cfg.write_text('[render]\nmax_side = 720\nstrength = 0.5\n[encode]\ncodec = "libx265"\n')
    s = load_settings("draft", cfg, {"render": {"strength": 0.8, "temporal": None}})
    assert s.render.max_side == 720  # file beats preset
    assert s.render.strength == 0.8  # option beats file
    assert s.render.temporal == "carry"  # unset option leaves the default
    assert s.encode.codec == "libx265"
    assert s.preset == "draft"


@pytest.mark.parametrize("preset", sorted(RESOLVED))
def test_presets_resolve_to_the_documented_values(preset):
    resolved = load_settings(preset).to_dict()
    assert json.dumps(resolved, sort_keys=True) == json.dumps(RESOLVED[preset], sort_keys=True)


def test_the_defaults_are_the_default_preset_and_presets_hold_only_differences():
    assert sorted(RESOLVED) == available_presets()
    assert load_settings().to_dict() == load_settings("balanced").to_dict() == Settings().to_dict()
    defaults = Settings().to_dict()
    for preset in available_presets():
        data = tomllib.loads((configs_dir() / f"{preset}.toml").read_text())
        repeated = [
            f"[{section}] {key}"
            for section, table in data.items()
            if isinstance(table, dict)
            for key, value in table.items()
            if json.dumps(value) == json.dumps(defaults[section][key])
        ]
        assert not repeated, f"{preset}.toml repeats defaults: {repeated}"


def test_the_network_is_described_once():
    """Settings, the model and model cards share one frozen type (no copy to drift)."""
    assert StyleNetConfig is NetworkSettings
    net = load_settings("best").network
    assert isinstance(net, NetworkSettings) and net.channels == (32, 64, 128)
    assert NetworkSettings.from_dict(net.to_dict()) == net
    with pytest.raises(dataclasses.FrozenInstanceError):
        net.residual_blocks = 1  # type: ignore[misc]
    # a card written before carry_max and antialias existed builds the network it was made with
    old = NetworkSettings.from_dict(
        {"channels": [4, 8, 8], "residual_blocks": 1, "outer_kernel": 3}
    )
    assert (old.channels, old.carry_max, old.antialias) == ((4, 8, 8), 0.85, False)


@pytest.mark.parametrize(
    "text, message",
    [
        ("[render]\nmax_side = 'big'\n", '[render] max_side must be an integer, not "big"'),
        ("[render]\nmax_side = 1.9\n", "[render] max_side must be an integer, not 1.9"),
        ("[render]\nmax_side = true\n", "[render] max_side must be an integer, not true"),
        ("[adapt]\nsteps = '12'\n", '[adapt] steps must be an integer, not "12"'),
        ("[render]\nstrength = '0.5'\n", '[render] strength must be a number, not "0.5"'),
        ("[render]\nscene_cut = 1\n", "[render] scene_cut must be true or false, not 1"),
        ("[encode]\ncodec = 5\n", "[encode] codec must be a string, not 5"),
        (
            "[network]\nchannels = [16, 32]\n",
            "[network] channels must be a list of 3 integers, not [16, 32]",
        ),
        (
            "[network]\nchannels = [16, 32.5, 64]\n",
            "[network] channels must be a list of 3 integers, not [16, 32.5, 64]",
        ),
        ("[network]\nchannels = 16\n", "[network] channels must be a list of 3 integers, not 16"),
        ("[render]\nmax_sid = 720\n", "[render] max_sid is not a setting (did you mean max_side?)"),
        ("[encode]\nbogus = 1\n", "[encode] bogus is not a setting (known: codec, crf, preset, "),
        ("[render.extra]\nx = 1\n", "[render] extra is not a setting"),
        ("[colour]\nx = 1\n", "unknown table [colour] (expected [network], [adapt], [render] or "),
        ("max_side = 720\n", "max_side is outside a table (settings go in [network], [adapt]"),
        ("render = 720\n", "[render] must be a table, not 720"),
        ("not toml [", "not a valid TOML config"),
    ],
)
def test_a_bad_config_file_is_one_line_naming_file_table_key_and_type(tmp_path, text, message):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings("draft", cfg)
    assert str(info.value).startswith(f"{cfg}: {message}")
    assert info.value.path == cfg and "\n" not in str(info.value)


def test_config_values_are_taken_as_typed_not_coerced(tmp_path):
    cfg = tmp_path / "ok.toml"
    cfg.write_text(
        "[render]\nstrength = 1\ncarry-sigma = 4\n[adapt]\nstyle_weight = 20\n"
        "[network]\nchannels = [8, 16, 32]\n"
    )
    s = load_settings("draft", cfg)
    assert s.render.strength == 1.0 and isinstance(s.render.strength, float)  # 1 for 1.0 is fine
    assert s.render.carry_sigma == 4.0 and isinstance(s.render.carry_sigma, float)  # key-with-dash
    assert s.adapt.style_weight == 20.0 and isinstance(s.adapt.style_weight, float)
    assert s.network.channels == (8, 16, 32)


@pytest.mark.parametrize(
    "preset, overrides, message",
    [
        ("nope", None, "unknown preset 'nope'"),
        ("draft", {"render": {"temporal": "sometimes"}}, "--temporal must be one of"),
        ("draft", {"render": {"strength": 2.0}}, "--strength must be between 0 and 1"),
        ("draft", {"encode": {"crf": 99}}, "--crf"),
        ("draft", {"render": {"tile": "8"}}, 'options: [render] tile must be an integer, not "8"'),
        ("draft", {"colour": {"x": 1}}, "options: unknown table [colour]"),
    ],
)
def test_bad_options_fail_with_one_clear_message(preset, overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(preset, None, overrides)


def test_settings_round_trip_through_their_dict_and_check_it():
    s = load_settings("best", None, {"render": {"strength": 0.5}})
    assert settings_from_dict(json.loads(json.dumps(s.to_dict()))) == s
    data = s.to_dict()
    data["render"]["lanes"] = 2.5
    with pytest.raises(ConfigError, match=r"^job\.json: \[render\] lanes must be an integer"):
        settings_from_dict(data, "job.json")


def test_missing_config_file_names_it(tmp_path):
    with pytest.raises(ConfigError, match=r"missing\.toml: config file not found"):
        load_settings("draft", tmp_path / "missing.toml")
