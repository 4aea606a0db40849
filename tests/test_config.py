"""Presets, config files and overrides resolve in the documented order, with clear errors."""

from __future__ import annotations

import pytest

from vidstyle.config import available_presets, load_settings
from vidstyle.errors import ConfigError


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


@pytest.mark.parametrize(
    "preset, text, overrides, message",
    [
        ("nope", None, None, "unknown preset 'nope'"),
        ("draft", "[render]\nbogus = 1\n", None, r"unknown setting \[render\] bogus"),
        ("draft", "[colour]\nx = 1\n", None, r"unknown section \[colour\]"),
        ("draft", "[render]\nmax_side = 'big'\n", None, "expected int"),
        ("draft", "not toml [", None, "not a valid TOML"),
        ("draft", None, {"render": {"temporal": "sometimes"}}, "--temporal must be one of"),
        ("draft", None, {"render": {"strength": 2.0}}, "--strength must be between 0 and 1"),
        ("draft", None, {"encode": {"crf": 99}}, "--crf"),
    ],
)
def test_bad_settings_fail_with_one_clear_message(tmp_path, preset, text, overrides, message):
    cfg = None
    if text is not None:
        cfg = tmp_path / "bad.toml"
        cfg.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(preset, cfg, overrides)


def test_missing_config_file_names_it(tmp_path):
    with pytest.raises(ConfigError, match=r"missing\.toml: config file not found"):
        load_settings("draft", tmp_path / "missing.toml")
