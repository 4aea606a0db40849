"""One frame-rate parser (vidstyle.rates) for every place a rate is written: `vidstyle run
--rate`, `vidstyle farm plan --rate` and a job file's input_rate. The same words must time the
frames the same way in all of them, NTSC decimals as their exact N x 1000/1001 fractions."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from tests.synth import make_sequence
from vidstyle.errors import ConfigError
from vidstyle.farm.plan import Job
from vidstyle.io import probe
from vidstyle.rates import parse_rate

pytestmark = pytest.mark.usefixtures("torch_one_thread", "isolated_cache")

NTSC_24, NTSC_30 = Fraction(24000, 1001), Fraction(30000, 1001)


@pytest.mark.parametrize(
    ("text", "rate"),
    [("24", Fraction(24)), ("23.976", NTSC_24), ("23.98", NTSC_24), ("29.97", NTSC_30),
     ("29.970", NTSC_30), ("47.952", Fraction(48000, 1001)), ("59.94", Fraction(60000, 1001)),
     ("119.88", Fraction(120000, 1001)), ("30000/1001", NTSC_30), ("24000/1001", NTSC_24),
     ("25.0", Fraction(25)), ("24.0", Fraction(24)), ("12.5", Fraction(25, 2)),
     ("23.97", Fraction(2397, 100)), ("29.9999", Fraction(299999, 10000)), (" 25 ", Fraction(25))],
)  # fmt: skip
def test_one_rate_parser_keeps_ntsc_rates_exact(text: str, rate: Fraction):
    """NTSC decimals are the exact fractions; every other number is exactly what was written
    (23.97 is not rounded to an NTSC rate, 29.9999 not to 30)."""
    assert parse_rate(text) == rate


@pytest.mark.parametrize("bad", ["0", "-24", "fast", "1/0", "", "24fps", "nan", "inf"])
def test_bad_rates_are_one_config_error(bad: str):
    with pytest.raises(ConfigError) as caught:
        parse_rate(bad)
    assert str(caught.value) == (
        f"--rate must be a frame rate like 24, 23.976 or 30000/1001, not {bad!r}"
    )


def test_no_rate_is_none():
    assert parse_rate(None) is None


def _plan(vidstyle_cli, tmp_path: Path, style_image: Path, tiny_model: Path, rate: str):
    pattern = make_sequence(tmp_path / "seq", frames=6)
    job = tmp_path / "job.json"
    planned = vidstyle_cli(
        "farm", "plan", pattern, style_image, tmp_path / "out.mp4", "-o", job, "--rate", rate,
        "--model", tiny_model, "--preset", "draft",
    )  # fmt: skip
    return planned, job


@pytest.mark.parametrize(
    ("text", "stored"),
    [("23.976", "24000/1001"), ("23.98", "24000/1001"), ("29.97", "30000/1001"),
     ("59.94", "60000/1001"), ("30000/1001", "30000/1001"), ("25", "25"), ("12.5", "25/2")],
)  # fmt: skip
def test_farm_plan_parses_rates_like_the_main_job(
    vidstyle_cli, tmp_path, style_image, tiny_model, text, stored
):
    planned, job = _plan(vidstyle_cli, tmp_path, style_image, tiny_model, text)
    assert planned.code == 0, planned.err
    data = json.loads(job.read_text())
    assert data["input_rate"] == stored and data["source"]["rate"] == stored
    assert Job.load(job).rate == parse_rate(text)


def test_farm_plan_and_the_main_job_time_frames_the_same(
    vidstyle_cli, tmp_path, style_image, tiny_model, tiny_opts
):
    """`vidstyle IN STYLE OUT --rate 23.976` writes 24000/1001; a farm job for the same words
    renders at the very same rate."""
    planned, job = _plan(vidstyle_cli, tmp_path, style_image, tiny_model, "23.976")
    assert planned.code == 0, planned.err
    out = tmp_path / "single.mp4"
    pattern = tmp_path / "seq" / "shot.%04d.png"
    ran = vidstyle_cli(pattern, style_image, out, "--model", tiny_model, *tiny_opts,
                       "--rate", "23.976")  # fmt: skip
    assert ran.code == 0, ran.err
    assert probe(out).rate == Job.load(job).rate == NTSC_24


def test_farm_plan_refuses_a_bad_rate_in_one_line(vidstyle_cli, tmp_path, style_image, tiny_model):
    planned, job = _plan(vidstyle_cli, tmp_path, style_image, tiny_model, "fast")
    assert planned.code == 2
    assert planned.err_lines == [
        "vidstyle: error: --rate must be a frame rate like 24, 23.976 or 30000/1001, not 'fast'"
    ]
    assert not job.exists()


def test_a_job_file_rate_is_read_by_the_same_parser(
    vidstyle_cli, tmp_path, style_image, tiny_model
):
    """input_rate written by hand (or by another tool) as 29.97 is 30000/1001; nonsense there is
    one error naming the job file."""
    planned, job = _plan(vidstyle_cli, tmp_path, style_image, tiny_model, "30000/1001")
    assert planned.code == 0, planned.err
    data = json.loads(job.read_text())
    job.write_text(json.dumps({**data, "input_rate": "29.97"}))
    assert Job.load(job).rate == NTSC_30
    job.write_text(json.dumps({**data, "input_rate": "fast"}))
    with pytest.raises(ConfigError, match=r"job\.json: input_rate must be a frame rate"):
        _ = Job.load(job).rate
