"""The three kinds of farm task: adapt (once), chunk (per frame range), assemble (once, last).

Each is idempotent and atomic: a finished task run again does nothing, and a task killed at any
moment leaves its output absent (only a hidden temporary, removed by the next attempt), never
half-written. They are plain functions: the `vidstyle farm` commands and the Ray runner call
the same ones, and the chunk task renders through `vidstyle.pipeline.engine.render`, the one
frame path the single-machine CLI uses too (a chunk's frames are a pipeline Span, and assemble
cross-fades chunks with the pipeline's own `crossfade`).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vidstyle.errors import MediaError, ModelError
from vidstyle.farm.plan import Chunk, Job, source_timestamps
from vidstyle.io import (
    VideoInfo,
    is_image_sequence,
    open_reader,
    open_writer,
    probe,
    writer_options,
)
from vidstyle.io.paths import TMP_MARKER, remove_quietly
from vidstyle.io.patterns import list_sequence
from vidstyle.io.working_space import working_space_for
from vidstyle.pipeline.span import crossfade

if TYPE_CHECKING:  # the renderer loads torch: only the tasks that render import it
    from vidstyle.pipeline.job import RenderJob
    from vidstyle.pipeline.stylizer import Stylizer


@dataclass
class TaskResult:
    task: str
    skipped: bool  # already done: nothing was run
    seconds: float = 0.0
    frames: int = 0
    path: str = ""

    def summary(self) -> str:
        if self.skipped:
            return f"{self.task}: already done ({self.path})"
        what = f"{self.frames} frames, " if self.frames else ""
        return f"{self.task}: done ({what}{self.seconds:.1f} s) -> {self.path}"


# -- adapt ---------------------------------------------------------------------------------


def model_ready(path: str | os.PathLike[str]) -> bool:
    """A model is complete when both files exist (each is written atomically, weights first)."""
    p = Path(path)
    return p.is_file() and p.with_suffix(".json").is_file()


def run_adapt(job: Job, *, progress: bool = False) -> TaskResult:
    """Adapt the job's style network once, on runs sampled across the whole input."""
    from vidstyle.adapt import adapt
    from vidstyle.models.device import resolve_runtime

    if model_ready(job.model):
        return TaskResult("adapt", True, path=job.model)
    if job.model_given:
        raise ModelError("model file not found (given with --model when planning)", job.model)
    started = time.perf_counter()
    settings = job.resolved_settings()
    runtime = resolve_runtime(settings.render.device, settings.render.precision)
    Path(job.model).parent.mkdir(parents=True, exist_ok=True)
    adapt(
        Path(job.style),
        [Path(job.input)],
        settings,
        runtime,
        output=Path(job.model),
        progress=progress,
    )
    return TaskResult("adapt", False, time.perf_counter() - started, path=job.model)


# -- chunks --------------------------------------------------------------------------------


def chunk_complete(job: Job, chunk: Chunk) -> bool:
    """Finished chunks are renamed into place whole, so one that exists with the frame count
    the plan expects is done (one of another length — from an older plan — is redone)."""
    try:
        return _count_frames(chunk) == chunk.file_frames
    except MediaError:
        return False


def _count_frames(chunk: Chunk) -> int:
    if chunk.is_sequence:
        if not Path(chunk.path).parent.is_dir():
            return 0
        return len(list_sequence(chunk.path))
    if not Path(chunk.path).is_file():
        return 0
    return probe(chunk.path).frame_count


def _remove_stale(chunk: Chunk) -> None:
    """Temporaries of earlier attempts that were killed (SIGKILL leaves them behind)."""
    target = Path(chunk.path).parent if chunk.is_sequence else Path(chunk.path)
    parent = target.parent
    if not parent.is_dir():
        return
    prefix = f".{target.name}{TMP_MARKER}"
    for entry in parent.iterdir():
        if entry.name.startswith(prefix):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                remove_quietly(entry)


def _remove_chunk(chunk: Chunk) -> None:
    target = Path(chunk.path).parent if chunk.is_sequence else Path(chunk.path)
    if target.is_dir():
        shutil.rmtree(target, ignore_errors=True)
    else:
        remove_quietly(target)


def remove_temporaries(job: Job) -> None:
    """Every chunk's temporaries (after a run whose workers were stopped mid-chunk)."""
    for chunk in job.chunks:
        _remove_stale(chunk)


def chunk_settings(job: Job, source: VideoInfo | None = None):
    """The job's settings, writing the lossless intermediate: FFV1 in bgr0 is bit-exact for
    the RGB frames the network produces, 16-bit RGB (rgb48le) for deep sources' float frames,
    with alpha where the source has it (image sequences ignore the codec)."""
    settings = job.resolved_settings()  # a fresh object: changing it changes nothing else
    settings.encode.codec = "ffv1"
    # named: ffv1's own choice follows the source (yuv420p10le for a 10-bit 4:2:0 one)
    settings.encode.pix_fmt = "bgr0"
    if source is not None and (source.bit_depth > 8 or source.has_alpha):
        deep = source.bit_depth > 8
        layouts = {(False, True): "bgra", (True, False): "rgb48le", (True, True): "rgba64le"}
        settings.encode.pix_fmt = layouts[(deep, source.has_alpha)]
    settings.encode.audio = False
    settings.render.lanes = 1  # a chunk is one chain: the farm runs chunks side by side itself
    return settings


def run_chunk(job: Job, index: int, *, progress: bool = False) -> TaskResult:
    """Render chunk `index`: run the chain from its warm-up start, keep its frames, write the
    intermediate atomically. A no-op when the chunk is already complete."""
    import torch

    from vidstyle.models.device import resolve_runtime
    from vidstyle.models.store import load_model
    from vidstyle.pipeline.engine import render
    from vidstyle.pipeline.job import RenderJob
    from vidstyle.pipeline.stylizer import Stylizer

    if not 0 <= index < len(job.chunks):
        raise MediaError(
            f"there is no chunk {index}: the job has chunks 0-{len(job.chunks) - 1}", job.path
        )
    chunk = job.chunks[index]
    name = f"chunk-{index:04d}"
    if chunk_complete(job, chunk):
        return TaskResult(name, True, frames=chunk.file_frames, path=chunk.path)
    if not model_ready(job.model):
        raise ModelError(
            "model not found: run the adapt task first (`vidstyle farm adapt`)", job.model
        )
    started = time.perf_counter()
    _remove_stale(chunk)
    settings = chunk_settings(job, probe(job.input, rate=job.rate))
    # Identical inputs must give identical chains on every machine (frames after a cut inside
    # the warm-up then match the neighbouring chunk exactly).
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    runtime = resolve_runtime(settings.render.device, settings.render.precision)
    net, _card = load_model(job.model)
    stylizer = Stylizer(net, runtime, settings.render)
    rendering = RenderJob(
        job.input,
        chunk.path,
        settings,
        frames=chunk.rendered,
        rate=job.rate,
        start_number=1,  # chunk files are numbered source index + 1 (see Chunk)
        keep_timestamps=True,  # assemble writes the source's timestamps
        audio=False,
        intermediate=True,  # deep sources: working-space values, converted at assembly
        progress=progress,
    )
    try:
        if chunk.is_sequence:
            _render_sequence_atomically(chunk, rendering, stylizer)
        else:
            Path(chunk.path).parent.mkdir(parents=True, exist_ok=True)
            render(rendering, stylizer)
        count = _count_frames(chunk)
        if count != chunk.file_frames:
            _remove_chunk(chunk)  # not the chunk the plan wants: assemble must not take it
            raise MediaError(
                f"chunk {index} has {count} frames after rendering, expected {chunk.file_frames}"
                " (the input may be truncated or damaged)",
                chunk.path,
            )
    except BaseException:
        _remove_stale(chunk)  # whatever failed, no temporary stays behind
        raise
    return TaskResult(name, False, time.perf_counter() - started, count, chunk.path)


def _render_sequence_atomically(chunk: Chunk, rendering: RenderJob, stylizer: Stylizer) -> None:
    """Frames go to a hidden sibling folder, renamed onto the chunk's folder when all are done:
    the folder either holds the whole chunk or does not exist."""
    import dataclasses
    import secrets

    from vidstyle.pipeline.engine import render

    final_dir = Path(chunk.path).parent
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = final_dir.with_name(f".{final_dir.name}{TMP_MARKER}{secrets.token_hex(4)}")
    tmp_dir.mkdir()
    try:
        render(dataclasses.replace(rendering, output=tmp_dir / Path(chunk.path).name), stylizer)
        if final_dir.exists():  # an incomplete leftover (e.g. from an older plan)
            shutil.rmtree(final_dir)
        os.replace(tmp_dir, final_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise


# -- assemble ------------------------------------------------------------------------------


def check_chunks(job: Job) -> None:
    """Every chunk present and complete, before anything is encoded; else name the ones to
    (re)run."""
    bad: list[tuple[Chunk, str]] = []
    for chunk in job.chunks:
        try:
            count = _count_frames(chunk)
        except MediaError:
            count = -1
        if count == chunk.file_frames:
            continue
        if count == 0:
            state = "is missing"
        elif count < 0:
            state = "is unreadable"
        else:
            state = f"has {count} of {chunk.file_frames} frames"
        bad.append((chunk, f"chunk {chunk.index} (frames {job.frames_label(chunk)}) {state}"))
    if bad:
        shown = "; ".join(text for _, text in bad[:4])
        if len(bad) > 4:
            shown += f"; and {len(bad) - 4} more"
        raise MediaError(
            f"can't assemble: {shown} (run `vidstyle farm task JOB --index {bad[0][0].index}`)",
            job.path,
        )


#: (source frame index, RGB, alpha or None)
Picture = tuple[int, np.ndarray, "np.ndarray | None"]


def _open_chunk(job: Job, path: str):
    """A reader for a chunk's intermediate: deep chunks give the float working values they
    were written with (RenderJob.intermediate), and the alpha that was carried through."""
    return open_reader(path, rate=job.rate, deep=True, alpha=True)


def _chunk_frames(job: Job, chunk: Chunk) -> Iterator[Picture]:
    """(source frame index, RGB, alpha) for every frame of a chunk's intermediate, checked to
    be the frames the plan says (order is what maps them: FFV1 is intra-only, nothing is
    dropped)."""
    expected = chunk.file_start
    with _open_chunk(job, chunk.path) as reader:
        for frame in reader:
            yield expected, frame.rgb, frame.alpha
            expected += 1
    if expected != chunk.span.end:
        raise MediaError(
            f"chunk {chunk.index} ended at frame {expected}, expected {chunk.span.end}", chunk.path
        )


def blended_frames(job: Job) -> Iterator[Picture]:
    """The final frames in order: each chunk's own frames; where a chunk kept its warm-up
    frames, the previous chunk's last frames cross-faded into them (alpha: the source's,
    untouched)."""
    held: dict[int, np.ndarray] = {}
    for i, chunk in enumerate(job.chunks):
        following = job.chunks[i + 1] if i + 1 < len(job.chunks) else None
        hold_from = following.file_start if following is not None else None
        for index, rgb, alpha in _chunk_frames(job, chunk):
            if index < chunk.span.start:  # this chunk's warm-up: fade in over the previous one
                previous = held.pop(index, None)
                if previous is None:
                    raise MediaError(
                        f"chunk {chunk.index - 1} does not cover frame {index} of chunk "
                        f"{chunk.index}'s warm-up",
                        job.path,
                    )
                yield index, crossfade(previous, rgb, chunk.span, index), alpha
            elif hold_from is not None and index >= hold_from:
                held[index] = rgb
            else:
                yield index, rgb, alpha
    if held:
        raise MediaError(f"frames {sorted(held)} were not used by any chunk", job.path)


def output_complete(job: Job) -> bool:
    """The output exists with the source's frame count and is newer than every chunk."""
    out = job.output
    try:
        if is_image_sequence(out):
            files = list_sequence(out)
            if len(files) != job.frame_count:
                return False
            written_at = min(p.stat().st_mtime for _, p in files)
        else:
            if not Path(out).is_file() or probe(out).frame_count != job.frame_count:
                return False
            written_at = Path(out).stat().st_mtime
    except (MediaError, OSError):
        return False
    for chunk in job.chunks:
        target = Path(chunk.path).parent if chunk.is_sequence else Path(chunk.path)
        if not target.exists() or target.stat().st_mtime > written_at:
            return False
    return True


def run_assemble(job: Job, *, progress: bool = False, force: bool = False) -> TaskResult:
    """Join the chunks into the output with the source's timestamps, audio, colour tags and
    rotation; written atomically; the frame count is checked before and after."""
    from tqdm import tqdm

    if not force and output_complete(job):
        return TaskResult("assemble", True, frames=job.frame_count, path=job.output)
    started = time.perf_counter()
    check_chunks(job)
    settings = job.resolved_settings()
    enc = settings.encode
    info = probe(job.input, rate=job.rate)
    pts = source_timestamps(job)
    first = next(blended_frames_head(job))
    height, width = first.shape[:2]
    space = working_space_for(
        info.color_trc, info.color_primaries, mode=settings.render.working_space
    )
    kw = writer_options((width, height), info, enc)
    kw["space"] = space
    if is_image_sequence(job.output):
        kw["first_number"] = job.first_frame
    elif not info.is_image_sequence:  # audio (unless --no-audio) and subtitles
        kw["audio_from"] = Path(job.input)
        kw["audio"] = enc.audio
    writer = open_writer(job.output, **kw)
    bar = tqdm(total=job.frame_count, desc="assembling", unit="frame", disable=not progress,
               leave=False, dynamic_ncols=True)  # fmt: skip
    count = 0
    try:
        for index, rgb, alpha in blended_frames(job):
            if index != count:
                raise MediaError(f"frame {index} came where frame {count} was expected", job.path)
            writer.write(rgb, pts[index], alpha=alpha)
            count += 1
            bar.update(1)
        if count != job.frame_count:
            raise MediaError(
                f"assembled {count} frames, the source has {job.frame_count}", job.output
            )
        writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
    written = (
        len(list_sequence(job.output))
        if is_image_sequence(job.output)
        else probe(job.output).frame_count
    )
    if written != job.frame_count:
        raise MediaError(
            f"the written file has {written} frames, the source has {job.frame_count}",
            job.output,
        )
    return TaskResult("assemble", False, time.perf_counter() - started, count, job.output)


def blended_frames_head(job: Job) -> Iterator[np.ndarray]:
    """The first output frame (to size the writer) without decoding a whole chunk."""
    with _open_chunk(job, job.chunks[0].path) as reader:
        for frame in reader:
            yield frame.rgb
            return
    raise MediaError("chunk 0 has no frames", job.chunks[0].path)


def task_states(job: Job) -> list[dict]:
    """Each task with `state` done | pending (what `vidstyle farm status` shows)."""
    from vidstyle.farm.plan import ADAPT, CHUNK

    states = []
    for task in job.tasks:
        if task.kind == ADAPT:
            done = model_ready(job.model)
        elif task.kind == CHUNK:
            done = chunk_complete(job, job.chunks[task.chunk])  # type: ignore[index]
        else:
            done = output_complete(job)
        states.append(
            {
                "id": task.id,
                "kind": task.kind,
                "state": "done" if done else "pending",
                "frames": task.frames,
                "shell": task.shell,
            }
        )
    return states
