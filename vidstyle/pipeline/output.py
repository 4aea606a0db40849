"""The upscale and encode stages: finished frames scaled to the output size and written, in a
background thread behind a bounded queue.

What the writer is told comes from the job: the working space (deep sources' float frames are
converted back to the source's transfer, or kept as working values in a farm intermediate),
alpha passed through untouched, sequence outputs numbered, timestamps shifted so the first
written frame starts at 0 (audio and subtitles trimmed to match) unless the job keeps them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import numpy as np
from tqdm import tqdm

from vidstyle.io import (
    Frame,
    ImageSequenceWriter,
    VideoInfo,
    VideoWriter,
    frame_timestamps,
    is_image_sequence,
    open_writer,
    writer_options,
)
from vidstyle.pipeline.job import RenderPlan
from vidstyle.pipeline.span import Span
from vidstyle.pipeline.stages import BackgroundSink, StageClock
from vidstyle.pipeline.upscale import to_output


class Output:
    """`put(picture, frame)` each finished frame, in order; the warm-up frames before the
    render's span are dropped here. A context manager: a clean exit finishes the file, an
    exception removes it (nothing half-written is left)."""

    def __init__(self, plan: RenderPlan, clock: StageClock):
        job, info, encode = plan.job, plan.info, plan.job.settings.encode
        self._keep_from = plan.span.start
        self.written = 0  # frames handed to the encoder

        options = writer_options(plan.out_size, info, encode)
        options["space"] = None if job.intermediate else plan.space
        if not job.keep_timestamps:
            offset, audio_window = _first_kept_time(job.source, plan.span, info)
            options["time_offset"] = offset
            if not info.is_image_sequence:  # audio and subtitles, trimmed
                options["audio_from"] = Path(job.source)
                options["audio_window"] = audio_window
                options["audio"] = encode.audio if job.audio is None else job.audio
        self._writer = open_writer(str(job.output), **options)
        self._bar = tqdm(
            total=plan.span.end - plan.span.start,
            desc="stylizing",
            unit="frame",
            disable=not job.progress,
            leave=False,
            dynamic_ncols=True,
        )
        encode_one = _encoder(plan, self._writer, self._bar, clock)
        self._sink = BackgroundSink(encode_one, depth=plan.depth, name="encode")

    def put(self, picture: np.ndarray, frame: Frame) -> None:
        """`picture`: `frame` stylized and finished, at the work size."""
        if frame.index >= self._keep_from:
            self._sink.put((picture, frame))
            self.written += 1

    def __enter__(self) -> Output:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if kind is None:
                self._finish()
            else:
                self._abort()
        finally:
            self._bar.close()

    def _finish(self) -> None:
        try:
            self._sink.close()  # the backlog written (an encoder error is raised here)
            self._writer.close()
        except BaseException:
            self._abort()
            raise

    def _abort(self) -> None:
        with contextlib.suppress(BaseException):
            self._sink.close()
        self._writer.abort()


def _encoder(
    plan: RenderPlan, writer: VideoWriter | ImageSequenceWriter, bar: tqdm, clock: StageClock
) -> Callable[[tuple[np.ndarray, Frame]], None]:
    """What the encode thread does with each finished frame: scale it to the output size, write
    it. (A function of its own, not a method: the sink holding it must not hold the Output, or
    the two would keep each other, and the closed writer, alive after the render.)"""
    strength, start_number = plan.render.strength, plan.job.start_number
    numbered = is_image_sequence(str(plan.job.output))

    def number(frame: Frame) -> int:
        if start_number is not None:
            return start_number + frame.index
        return frame.number if frame.number is not None else frame.index + 1

    def encode(item: tuple[np.ndarray, Frame]) -> None:
        picture, frame = item
        t0 = time.perf_counter()
        if frame.full is not None:
            picture = to_output(picture, frame, strength)
            t1 = time.perf_counter()
            clock.add("upscale", t1 - t0)
            t0 = t1
        if numbered:
            writer.write(picture, frame.pts, alpha=frame.alpha, number=number(frame))
        else:
            writer.write(picture, frame.pts, alpha=frame.alpha)
        clock.add("encode", time.perf_counter() - t0)
        bar.update(1)

    return encode


def _first_kept_time(
    source: str | Path, span: Span, info: VideoInfo
) -> tuple[int, tuple[float | None, float | None]]:
    """(pts offset, audio window [start s, end s)) for a render whose first written frame
    starts at time 0."""
    if span.start == 0 and span.end >= info.frame_count:
        return 0, (None, None)
    pts = frame_timestamps(source)
    tb = float(info.time_base)
    offset = pts[span.start]
    window_end = pts[span.end] * tb if span.end < len(pts) else None
    return offset, (offset * tb, window_end)
