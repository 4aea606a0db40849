"""What editors rely on passing through a render: audio/subtitle languages, titles and
dispositions, subtitle cues (copied, converted or left out with a warning), and the start
timecode (advanced by the frames a trimmed range skips, drop-frame included)."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest

from vidstyle.io import VideoInfo, VideoWriter, frame_timestamps, probe
from vidstyle.io.streams import copy_tags
from vidstyle.io.timecode import advance, from_frames, parse, to_frames

D = av.stream.Disposition
CUES = ((0, 150, "Hello"), (250, 400, "World"))  # ms
#: (language, title, disposition) of the two audio tracks and the subtitle track
AUDIO_TAGS = (("eng", "English", D.default), ("fra", "Commentaire", D.comment | D.forced))
SUB_TAGS = ("spa", "Español", D.default | D.forced)


# -- inputs made here, with PyAV only -----------------------------------------------------------


def make_source(
    path: Path,
    *,
    subtitles: str | None = None,
    timecode: str = "",
    timecode_in_container: bool = False,
    rate: Fraction = Fraction(24),
    frames: int = 10,
) -> Path:
    """64x48 mpeg4 video, two tagged AAC tracks and optionally a tagged subtitle stream with
    the two CUES, and a start timecode on the video stream (or the container)."""
    out = av.open(str(path), "w")
    if timecode and timecode_in_container:
        out.metadata["timecode"] = timecode
    vs = out.add_stream("mpeg4", rate=rate)
    vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
    if timecode and not timecode_in_container:
        vs.metadata["timecode"] = timecode
    tracks = []
    for language, title, disposition in AUDIO_TAGS:
        a = out.add_stream("aac", rate=48000)
        a.layout = "mono"
        a.metadata.update(language=language, title=title)
        a.disposition = disposition
        tracks.append(a)
    ss = None
    if subtitles:
        ss = out.add_stream(subtitles)
        ss.codec_context.time_base = ss.time_base = Fraction(1, 1000)
        header = av.codec.CodecContext.create("subrip", "r")
        header.open()
        ss.codec_context.subtitle_header = header.subtitle_header
        ss.metadata.update(language=SUB_TAGS[0], title=SUB_TAGS[1])
        ss.disposition = SUB_TAGS[2]
    out.start_encoding()
    for i in range(frames):
        f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8), format="rgb24")
        f.pts, f.time_base = i, 1 / rate
        out.mux(vs.encode(f))
    out.mux(vs.encode(None))
    samples = round(frames / rate * 48000)
    for a in tracks:
        for start in range(0, samples, 1024):
            fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), "fltp", "mono")
            fr.sample_rate, fr.pts, fr.time_base = 48000, start, Fraction(1, 48000)
            out.mux(a.encode(fr))
        out.mux(a.encode(None))
    if ss is not None:
        for n, (start, end, text) in enumerate(CUES):
            cue = av.subtitles.subtitle.SubtitleSet.create(
                f"{n},0,Default,,0,0,0,,{text}".encode(), 0, end - start, pts=start
            )
            p = ss.codec_context.encode_subtitle(cue)
            p.stream, p.time_base = ss, Fraction(1, 1000)
            p.pts, p.dts, p.duration = start, start, end - start
            out.mux(p)
    out.close()
    return path


def render(src: Path, dst: Path, *, start: int = 0, end: int | None = None) -> Path:
    """What the pipeline does for frames start..end of `src`: the source as template and as
    the audio source, the writer's time offset and window at the kept frames."""
    info = probe(src)
    ts = frame_timestamps(src)
    kw: dict = {}
    if start or end is not None:
        stop = float(ts[end] * info.time_base) if end is not None else None
        kw = dict(time_offset=ts[start], audio_window=(float(ts[start] * info.time_base), stop))
    with VideoWriter(
        dst, width=64, height=48, rate=info.rate, time_base=info.time_base, template=info,
        audio_from=src, preset="ultrafast", **kw,
    ) as writer:  # fmt: skip
        for i, pts in enumerate(ts[start:end]):
            writer.write(np.full((48, 64, 3), 20 * i, np.uint8), pts)
    return dst


def tags(path: Path) -> list[tuple[str, str, str, int]]:
    """(type, language, title, disposition) of each audio and subtitle stream."""
    with av.open(str(path)) as c:
        return [
            (
                s.type,
                s.metadata.get("language", ""),
                s.metadata.get("title") or s.metadata.get("name", ""),  # MP4 reads udta name
                int(s.disposition),
            )
            for s in c.streams
            if s.type in ("audio", "subtitle")
        ]


def cues(path: Path) -> list[tuple[int, int, str]]:
    """(start ms, end ms, text) of every non-empty cue of the first subtitle stream."""
    found = []
    with av.open(str(path)) as c:
        s = c.streams.subtitles[0]
        for p in c.demux(s):
            if not p.size:
                continue
            decoded = s.codec_context.decode2(p)
            if decoded is None or not len(decoded):
                continue  # MP4's empty samples between cues
            start, end = (round(t * p.time_base * 1000) for t in (p.pts, p.pts + p.duration))
            found.append((start, end, b"".join(r.dialogue for r in decoded).decode()))
    return found


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("streams")
    return {
        "mkv": make_source(d / "src.mkv", subtitles="subrip"),
        "mp4": make_source(d / "src.mp4", subtitles="mov_text"),
        "mov": make_source(d / "src.mov", subtitles="mov_text"),
    }


# -- languages, titles, dispositions ---------------------------------------------------------

EXPECTED = [("audio", *AUDIO_TAGS[0]), ("audio", *AUDIO_TAGS[1]), ("subtitle", *SUB_TAGS)]


@pytest.mark.parametrize(
    ("src", "suffix"), [("mkv", ".mkv"), ("mkv", ".mp4"), ("mp4", ".mkv"), ("mp4", ".mp4")]
)
def test_languages_titles_dispositions_survive(sources, tmp_path: Path, src: str, suffix: str):
    out = render(sources[src], tmp_path / f"out{suffix}")
    assert tags(out) == [(t, lang, title, int(disp)) for t, lang, title, disp in EXPECTED]


def test_mp4_tracks_show_their_title_as_handler_name(sources, tmp_path: Path):
    out = render(sources["mkv"], tmp_path / "out.mp4")  # Matroska has no handler names
    with av.open(str(out)) as c:
        names = [s.metadata.get("handler_name") for s in c.streams if s.type != "video"]
    assert names == ["English", "Commentaire", "Español"]


def test_quicktime_keeps_languages_titles_and_the_default_track(sources, tmp_path: Path):
    # QuickTime has no 'kind' boxes: only "default" (the enabled flag) of the dispositions
    out = render(sources["mkv"], tmp_path / "out.mov")
    got = [(t, lang, title, disp & D.default) for t, lang, title, disp in tags(out)]
    assert got == [(t, lang, title, int(disp & D.default)) for t, lang, title, disp in EXPECTED]


def test_a_muxers_default_handler_name_is_not_taken_for_a_title():
    src = SimpleNamespace(
        metadata={"handler_name": "SoundHandler", "language": "und"}, disposition=0
    )
    dst = SimpleNamespace(metadata={}, disposition=0)
    copy_tags(src, dst, "matroska")  # type: ignore[arg-type]
    assert dst.metadata == {}
    src.metadata["handler_name"] = "Director's cut"  # an old MP4's way to title a track
    copy_tags(src, dst, "matroska")  # type: ignore[arg-type]
    assert dst.metadata == {"title": "Director's cut", "handler_name": "Director's cut"}


# -- subtitle cues ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "suffix", "codec"),
    [
        ("mkv", ".mkv", "subrip"),  # copied
        ("mkv", ".mp4", "mov_text"),  # SRT -> mov_text
        ("mkv", ".mov", "mov_text"),
        ("mp4", ".mkv", "subrip"),  # mov_text -> SRT
        ("mov", ".mp4", "mov_text"),  # copied
    ],
)
def test_subtitle_cues_survive(sources, tmp_path: Path, src: str, suffix: str, codec: str):
    out = render(sources[src], tmp_path / f"out{suffix}")
    with av.open(str(out)) as c:
        assert [s.codec_context.codec.canonical_name for s in c.streams.subtitles] == [codec]
    assert cues(out) == list(CUES)


@pytest.mark.parametrize(("src", "suffix"), [("mkv", ".mkv"), ("mkv", ".mp4"), ("mov", ".mov")])
def test_trimmed_render_keeps_the_cue_on_screen_at_its_start(sources, tmp_path, src, suffix):
    # from frame 3 (125 ms): "Hello" is still showing (shortened), "World" moves 125 ms back
    out = render(sources[src], tmp_path / f"trim{suffix}", start=3)
    assert cues(out) == [(0, 25, "Hello"), (125, 275, "World")]


def test_a_cue_running_past_the_range_ends_with_it(sources, tmp_path: Path):
    out = render(sources["mkv"], tmp_path / "head.mkv", end=7)  # frames 0-6: up to 292 ms
    assert cues(out) == [(0, 150, "Hello"), (250, 292, "World")]


def test_subtitles_a_container_cannot_hold_are_left_out_with_one_warning(
    sources, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.WARNING, logger="vidstyle"):
        out = render(sources["mkv"], tmp_path / "out.avi")
    with av.open(str(out)) as c:
        assert not c.streams.subtitles
        assert len(c.streams.audio) == 2
    said = [r.getMessage() for r in caplog.records if "subtitle" in r.getMessage()]
    assert said == [
        f"{out}: subtitle stream #3 (spa) left out: a .avi file can't hold text subtitles"
    ]


# -- timecode -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tc_sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("timecode")
    ntsc = Fraction(30000, 1001)
    return {
        "24": make_source(d / "tc24.mov", timecode="01:00:00:00"),
        "df": make_source(d / "df.mov", timecode="00:00:59;28", rate=ntsc),
        "mkv": make_source(d / "tc.mkv", timecode="10:00:00:00", timecode_in_container=True),
    }


def tmcd_timecodes(path: Path) -> list[str]:
    with av.open(str(path)) as c:
        return [s.metadata.get("timecode", "") for s in c.streams.data]


def test_probe_reads_the_start_timecode(tc_sources):
    assert probe(tc_sources["24"]).timecode == "01:00:00:00"  # mov: tmcd track
    assert probe(tc_sources["df"]).timecode == "00:00:59;28"
    assert probe(tc_sources["mkv"]).timecode == "10:00:00:00"  # Matroska global tag


@pytest.mark.parametrize("suffix", [".mov", ".mp4", ".mkv"])
def test_timecode_survives(tc_sources, tmp_path: Path, suffix: str):
    out = render(tc_sources["24"], tmp_path / f"out{suffix}")
    assert probe(out).timecode == "01:00:00:00"
    if suffix != ".mkv":
        assert tmcd_timecodes(out) == ["01:00:00:00"]


@pytest.mark.parametrize(
    ("source", "suffix", "start", "expected"),
    [
        ("24", ".mov", 5, "01:00:00:05"),
        ("24", ".mkv", 5, "01:00:00:05"),
        ("mkv", ".mov", 7, "10:00:00:07"),
        # drop-frame: labels ;00 and ;01 of minute 1 don't exist (non-drop would say 01)
        ("df", ".mov", 3, "00:01:00;03"),
        ("df", ".mkv", 3, "00:01:00;03"),
    ],
)
def test_trimmed_render_starts_at_the_advanced_timecode(
    tc_sources, tmp_path: Path, source: str, suffix: str, start: int, expected: str
):
    out = render(tc_sources[source], tmp_path / f"trim{suffix}", start=start)
    assert probe(out).timecode == expected
    if suffix == ".mov":
        assert tmcd_timecodes(out) == [expected]


def test_no_timecode_in_no_timecode_out(sources, tmp_path: Path):
    out = render(sources["mkv"], tmp_path / "out.mov", start=2)
    assert probe(out).timecode == ""
    assert tmcd_timecodes(out) == []


def test_a_timecode_that_does_not_fit_the_rate_is_dropped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    src = make_source(tmp_path / "odd.mkv", timecode="01:00:00:29", rate=Fraction(25))
    with caplog.at_level(logging.WARNING, logger="vidstyle"):
        out = render(src, tmp_path / "out.mkv", start=2)
    assert probe(out).timecode == ""
    assert [r.getMessage() for r in caplog.records if "timecode" in r.getMessage()] == [
        f"{out}: the source's start timecode '01:00:00:29' does not fit 25.000 fps; "
        "the output has none"
    ]


# -- timecode arithmetic ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "frames", "rate", "expected"),
    [
        ("01:00:00:00", 5, 24, "01:00:00:05"),
        ("00:59:59:23", 1, Fraction(24000, 1001), "01:00:00:00"),  # 23.976 counts 24 labels
        ("23:59:59:24", 1, 25, "00:00:00:00"),  # wraps at 24 h
        ("00:00:00:00", -1, 25, "23:59:59:24"),
        ("00:00:59:29", 1, Fraction(30000, 1001), "00:01:00:00"),  # non-drop 29.97
        ("00:00:59;29", 1, Fraction(30000, 1001), "00:01:00;02"),  # drop-frame skips 00, 01
        ("00:09:59;29", 1, Fraction(30000, 1001), "00:10:00;00"),  # ... except every 10th min
        ("00:10:59;29", 1, Fraction(30000, 1001), "00:11:00;02"),
        ("00:00:00;00", 17982, Fraction(30000, 1001), "00:10:00;00"),  # 10 min of real frames
        ("00:00:59;59", 1, Fraction(60000, 1001), "00:01:00;04"),  # 59.94 skips 4
        ("00:01:00;04", -1, Fraction(60000, 1001), "00:00:59;59"),
        ("00:00:59.29", 1, Fraction(30000, 1001), "00:01:00;02"),  # '.' is drop-frame too
    ],
)
def test_advance(start: str, frames: int, rate, expected: str):
    assert advance(start, frames, rate) == expected


def test_drop_frame_round_trips_every_frame_of_an_hour():
    for n in range(0, 30 * 3600, 7):
        tc = from_frames(n, 30, drop=True)
        assert to_frames(tc, 30) == n
    assert parse("xx:00:00:00") is None and advance("garbage", 3, 24) is None


def test_video_info_round_trips_the_timecode(tc_sources):
    info = probe(tc_sources["df"])
    assert VideoInfo.from_dict(info.to_dict()) == info
    old = info.to_dict()
    del old["timecode"]  # saved by an older version
    assert VideoInfo.from_dict(old).timecode == ""


def test_the_main_job_keeps_subtitles_with_no_audio(
    sources, tmp_path: Path, vidstyle_cli, style_image, tiny_model, tiny_opts
):
    """--no-audio drops the audio tracks, not the subtitles (the main job, end to end)."""
    out = tmp_path / "out.mkv"
    args = ["--model", tiny_model, *tiny_opts, "--no-audio", "--strength", "0"]
    result = vidstyle_cli(sources["mkv"], style_image, out, *args)
    assert result.code == 0, result.err
    with av.open(str(out)) as c:
        assert not c.streams.audio
        assert len(c.streams.subtitles) == 1
    assert [text for _, _, text in cues(out)] == [text for _, _, text in cues(sources["mkv"])]
