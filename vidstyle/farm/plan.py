"""The job plan: one adapt task, one task per frame-range chunk, one assemble task, in job.json.

A plan is what a render farm (OpenCue, Deadline, Tractor, Flamenco) or Ray needs to run a long
shot on many machines: each task is a plain, idempotent command line over a frame range, and
everything a task needs (absolute paths, the fully resolved settings, the source's timing, the
chunk layout) is in the job file, so a task on any machine renders exactly what the plan says.

Chunk seams. A chunk starts its warm-start chain `overlap` frames before its first frame so the
first kept frame already has temporal context. That is not enough on its own: the warm-started
network keeps strokes it has already painted, so two chains started at different frames do not
converge and the frame pair across a seam jumps. Two things make seams invisible:
- boundaries are moved (by at most a quarter chunk) onto nearby hard cuts, where the chain
  restarts anyway: such a seam is exactly what a single-machine render gives;
- elsewhere (`seam="blend"`) a chunk also writes its warm-up frames, and assemble cross-fades the
  previous chunk's last frames into them with a linear ramp, so the jump is spread over
  overlap + 1 frame pairs instead of landing on one.
The default overlap follows the mode's memory (`default_overlap`): a `carry` chain keeping 94%
a frame still holds 61% of its first frame after 8 frames, and a plain join then jumps; after 23
frames a quarter is left (at most half a chunk: 20 frames of the default 40, 29% left).

A chunk's frames are a pipeline Span (pipeline/span.py: the warm lanes of a single-machine render
cut a shot the same way), and assemble joins chunks with the same cross-fade as the lanes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shlex
import sys
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from vidstyle.config import RECURRENT_MODES, Settings, settings_from_dict
from vidstyle.errors import ConfigError, MediaError, VidstyleError
from vidstyle.io import frame_timestamps, is_image_sequence, open_reader, probe
from vidstyle.io.patterns import list_sequence
from vidstyle.pipeline.span import Span
from vidstyle.rates import parse_rate

JOB_VERSION = 1
CHUNK_FORMATS = ("mkv", "png", "exr")
SEAM_MODES = ("blend", "cut")
#: Task kinds, in the order they run.
ADAPT, CHUNK, ASSEMBLE = "adapt", "chunk", "assemble"


@dataclass
class Chunk:
    """Frames `span.start` to `span.end` (0-based source indices, end excluded) of the final
    output, rendered by one task.

    The chain starts at `span.warmup_start` (start - overlap, clamped at 0; = start at a hard
    cut). The intermediate at `path` holds frames [file_start, end): with `keep_warmup` the
    warm-up frames too, for the cross-fade. `path` is a .mkv file or a numbered image pattern
    whose numbers are source frame index + 1.

    In job.json a chunk is one flat object: {index, start, end, warmup_start, path,
    keep_warmup, at_cut} (docs/farm.md)."""

    index: int
    span: Span
    path: str
    keep_warmup: bool = False
    at_cut: bool = False  # starts on a detected hard cut: no warm-up, no cross-fade

    @property
    def file_start(self) -> int:
        return self.span.warmup_start if self.keep_warmup else self.span.start

    @property
    def file_frames(self) -> int:
        return self.span.end - self.file_start

    @property
    def rendered(self) -> Span:
        """What the chunk task renders: the file's frames, after the rest of the warm-up."""
        return Span(self.file_start, self.span.end, self.file_start - self.span.warmup_start)

    @property
    def is_sequence(self) -> bool:
        return is_image_sequence(self.path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "start": self.span.start,
            "end": self.span.end,
            "warmup_start": self.span.warmup_start,
            "path": self.path,
            "keep_warmup": self.keep_warmup,
            "at_cut": self.at_cut,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        start, end, warmup_start = (int(data[k]) for k in ("start", "end", "warmup_start"))
        return cls(
            index=int(data["index"]),
            span=Span(start, end, start - warmup_start),
            path=str(data["path"]),
            keep_warmup=bool(data.get("keep_warmup", False)),
            at_cut=bool(data.get("at_cut", False)),
        )


@dataclass
class Task:
    id: str
    kind: str  # adapt | chunk | assemble
    depends_on: list[str]
    command: list[str]  # argv, absolute paths
    shell: str  # the same, quoted for a shell
    chunk: int | None = None
    frames: str | None = None  # farm frame numbers this task renders, e.g. "81-120"


@dataclass
class Job:
    """Everything in job.json (see docs/farm.md)."""

    job_id: str
    input: str
    input_rate: str | None  # frame rate of an image-sequence input ("24/1"); None for videos
    style: str
    output: str
    work_dir: str
    model: str
    model_given: bool  # --model at plan time: no adapt task
    settings: dict[str, Any]
    source: dict[str, Any]  # frame_count, rate, time_base, width, height, audio, first_frame, cuts
    chunk_size: int
    overlap: int
    seam: str
    chunk_format: str
    launcher: list[str]
    chunks: list[Chunk] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    vidstyle_version: str = ""  # every task must run the version that planned the job
    version: int = JOB_VERSION
    path: Path | None = None  # where it was loaded from / saved to (not stored)

    # -- derived ---------------------------------------------------------------------------
    @property
    def frame_count(self) -> int:
        return int(self.source["frame_count"])

    @property
    def first_frame(self) -> int:
        """Farm frame number of source frame 0 (1, or an input sequence's first number)."""
        return int(self.source.get("first_frame", 1))

    @property
    def rate(self) -> Fraction | None:
        return parse_rate(self.input_rate, "input_rate", self.path) if self.input_rate else None

    def resolved_settings(self) -> Settings:
        """The job's settings; refuses to render with another vidstyle version than the one
        that planned the job (its chunks would not match the others')."""
        from vidstyle import __version__

        if self.vidstyle_version and self.vidstyle_version != __version__:
            raise VidstyleError(
                f"planned with vidstyle {self.vidstyle_version}, this is {__version__}: install "
                "the same version on every machine, or plan the job again",
                self.path,
            )
        return settings_from_dict(self.settings)

    def task(self, task_id: str) -> Task:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise VidstyleError(f"no task {task_id!r} in the job", self.path)

    def frames_label(self, chunk: Chunk) -> str:
        return f"{chunk.span.start + self.first_frame}-{chunk.span.end - 1 + self.first_frame}"

    # -- files -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("path")
        data["chunks"] = [chunk.to_dict() for chunk in self.chunks]
        order = ["version", "vidstyle_version", "job_id", "input", "input_rate", "style",
                 "output", "work_dir"]  # fmt: skip
        return {**{k: data.pop(k) for k in order}, **data}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically: a farm may read the file while it is being re-planned."""
        path = Path(path).absolute()
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        os.replace(tmp, path)
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Job:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise VidstyleError("job file not found", path) from None
        except (OSError, ValueError) as exc:
            raise VidstyleError(f"not a readable job file ({exc})", path) from None
        if not isinstance(data, dict) or data.get("version") != JOB_VERSION:
            raise VidstyleError(
                f"not a vidstyle job file of version {JOB_VERSION} (plan it again)", path
            )
        try:
            data["chunks"] = [Chunk.from_dict(c) for c in data["chunks"]]
            data["tasks"] = [Task(**t) for t in data["tasks"]]
            job = cls(**data)
        except (KeyError, TypeError, ValueError) as exc:
            raise VidstyleError(f"job file is incomplete or damaged ({exc})", path) from None
        job.path = path.absolute()
        return job


# -- frame specs -----------------------------------------------------------------------------

_RANGE = re.compile(r"^\s*(-?\d+)\s*(?:-\s*(-?\d+))?\s*(?:[x:]\s*\d+)?\s*$")


def parse_frames(spec: str) -> list[tuple[int, int]]:
    """Farm frame specs: "81-120" (OpenCue #FRAME_START#-#FRAME_END#, Deadline
    <STARTFRAME>-<ENDFRAME>, Deadline Cloud chunks), "81", "1-30, 47-327" (Flamenco)."""
    ranges = []
    for part in spec.split(","):
        m = _RANGE.match(part)
        if not m:
            raise ConfigError(f"--frames: can't read {spec!r} (expected e.g. 81-120 or 1-30,47-80)")
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) is not None else a
        if b < a:
            raise ConfigError(f"--frames: range {a}-{b} ends before it starts")
        ranges.append((a, b))
    return ranges


def chunks_for_frames(job: Job, spec: str) -> list[Chunk]:
    """The chunks a farm task with frame range(s) `spec` renders: those whose first frame lies
    in it. When the farm's chunks are the plan's (same --chunk), that is exactly one; when they
    differ, every chunk is still rendered by exactly one task. An end past the last frame
    (the farm's last chunk overshoots) is clamped."""
    first, last = job.first_frame, job.first_frame + job.frame_count - 1
    wanted: list[tuple[int, int]] = []
    for a, b in parse_frames(spec):
        if a > last or b < first:
            raise ConfigError(f"--frames {a}-{b} is outside the shot (frames {first}-{last})")
        wanted.append((max(a, first) - first, min(b, last) - first))
    return [c for c in job.chunks if any(a <= c.span.start <= b for a, b in wanted)]


# -- planning --------------------------------------------------------------------------------


def layout(
    frame_count: int,
    chunk: int,
    overlap: int,
    cuts: list[int] | tuple[int, ...] = (),
    snap: int = 0,
    reach: int | None = None,
) -> list[tuple[int, int, int, bool]]:
    """Chunks as (start, end, warmup_start, at_cut): every frame in exactly one chunk, chunks
    of `chunk` frames except where a boundary moved by at most `snap` frames onto a hard cut
    (never making a chunk with a successor shorter than max(overlap, chunk // 2): its last
    frames are the next chunk's cross-fade).

    A chunk's chain starts `overlap` frames early, or at the latest hard cut up to `reach`
    (default 2 * overlap) frames before its start: the previous chunk's chain restarts at that
    cut too, so from there both chains are the same and the seam is exact."""
    if chunk < 1:
        raise ConfigError(f"--chunk must be at least 1 frame, not {chunk}")
    if overlap < 0:
        raise ConfigError(f"--overlap must be 0 or more, not {overlap}")
    reach = 2 * overlap if reach is None else reach
    shortest = max(overlap, chunk // 2, 1)
    cut_set = sorted(set(cuts))
    bounds: list[int] = []
    for nominal in range(chunk, frame_count, chunk):
        prev = bounds[-1] if bounds else 0
        best = nominal
        if snap:
            after = min(nominal + chunk, frame_count)  # where the next chunk ends unsnapped
            near = [
                c
                for c in cut_set
                if abs(c - nominal) <= snap
                and c - prev >= shortest
                and (after - c >= shortest or after == frame_count)
                and c < frame_count
            ]
            if near:
                best = min(near, key=lambda c: (abs(c - nominal), c))
        if best - prev < shortest or best >= frame_count:
            best = nominal
        if best > prev:
            bounds.append(best)
    starts = [0, *bounds]
    ends = [*bounds, frame_count]
    out = []
    for i, (start, end) in enumerate(zip(starts, ends, strict=True)):
        at_cut = start in cut_set
        if at_cut or start == 0:
            warm_from = start
        else:
            earlier = [c for c in cut_set if max(starts[i - 1], start - reach) <= c < start]
            warm_from = earlier[-1] if earlier else max(0, start - overlap)
        out.append((start, end, warm_from, at_cut))
    return out


def detect_cuts_near(
    source: str,
    settings: Settings,
    centers: list[int],
    before: int,
    after: int,
    frame_count: int,
    rate: Fraction | None = None,
) -> list[int]:
    """Hard cuts (frame t starting a new shot) from `before` frames before to `after` frames
    after each center, found with the same flow, mask and rule the render engine uses, so a
    chain started at one matches a single-machine render's. Only those windows are decoded."""
    from vidstyle.flow import bidirectional_flow, is_scene_cut, make_flow, reliability_mask
    from vidstyle.pipeline.job import work_size

    info = probe(source, rate=rate)
    size = work_size(info.display_width, info.display_height, settings.render.max_side)
    flow = make_flow(settings.render.flow, max_side=settings.render.flow_max_side)
    windows: list[list[int]] = []
    for c in sorted(centers):
        lo, hi = max(0, c - before - 1), min(frame_count, c + after + 1)
        if windows and lo <= windows[-1][1]:
            windows[-1][1] = max(windows[-1][1], hi)
        else:
            windows.append([lo, hi])
    cuts: list[int] = []
    for lo, hi in windows:
        with open_reader(source, rate=rate, size=size, start_index=lo, end_index=hi) as reader:
            previous = None
            for frame in reader:
                if previous is not None:
                    back, forward = bidirectional_flow(flow, frame.rgb, previous.rgb)
                    mask = reliability_mask(back, forward)
                    if is_scene_cut(frame.rgb, previous.rgb, back, mask):
                        cuts.append(frame.index)
                previous = frame
    return cuts


def default_launcher() -> list[str]:
    """How task commands start vidstyle: this Python with `-m vidstyle` (works without the
    console script on PATH; farm machines need the same install path, or pass --launcher)."""
    return [sys.executable, "-m", "vidstyle"]


def _digest(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def _first_number(source: str) -> int:
    """An input sequence's first frame number (VFX shots start at 1001), else 1."""
    if not is_image_sequence(source):
        return 1
    files = list_sequence(source)
    return files[0][0] if files and files[0][0] is not None else 1


def default_overlap(settings: Settings, chunk: int) -> int:
    """Warm-up frames a chunk runs before its range: enough for what its chain started from to
    fade to a quarter (carry: log 0.25 / log carry, 23 frames at 0.94; warm: 8, measured), at
    most half a chunk; 0 for the frame-parallel modes."""
    render = settings.render
    if render.temporal not in RECURRENT_MODES:
        return 0
    frames = 8
    if render.temporal == "carry" and render.carry > 0:
        frames = math.ceil(math.log(0.25) / math.log(render.carry))
    return min(frames, chunk // 2)


def plan_job(
    input: str | os.PathLike[str],
    style: str | os.PathLike[str],
    output: str | os.PathLike[str],
    settings: Settings,
    *,
    job_path: str | os.PathLike[str],
    chunk: int = 40,
    overlap: int | None = None,
    chunk_format: str = "mkv",
    seam: str = "blend",
    snap_cuts: bool = True,
    rate: Fraction | None = None,
    model: str | os.PathLike[str] | None = None,
    work_dir: str | os.PathLike[str] | None = None,
    launcher: list[str] | None = None,
    start_number: int | None = None,
) -> Job:
    """Describe the job (and write it to `job_path`). Cheap: probes the input, reads the style
    image's bytes, and decodes only the frames around chunk boundaries (to find cuts)."""
    from vidstyle.adapt.adapt import training_fingerprint, work_side
    from vidstyle.adapt.cache import content_fingerprint, file_sha256, model_key
    from vidstyle.io import check_writable, load_image

    if chunk < 1:
        raise ConfigError(f"--chunk must be at least 1 frame, not {chunk}")
    if overlap is not None and overlap < 0:
        raise ConfigError(f"--overlap must be 0 or more, not {overlap}")
    if chunk_format not in CHUNK_FORMATS:
        raise ConfigError(f"--chunk-format must be one of {', '.join(CHUNK_FORMATS)}")
    if seam not in SEAM_MODES:
        raise ConfigError(f"--seam must be one of {', '.join(SEAM_MODES)}")
    if overlap is None:
        overlap = default_overlap(settings, chunk)
    if overlap >= chunk and overlap > 0:
        raise ConfigError(f"--overlap ({overlap}) must be smaller than --chunk ({chunk})")
    if settings.render.temporal not in RECURRENT_MODES:
        overlap = 0  # frames are stylized independently: nothing to warm up or cross-fade
    source = os.path.abspath(os.fspath(input))
    job_path = Path(job_path).absolute()
    out = os.path.abspath(os.fspath(output))
    style_path = Path(style).absolute()
    info = probe(source, rate=rate)
    load_image(style_path)
    if model is not None:
        from vidstyle.jobs import check_model_style
        from vidstyle.models.store import load_card

        model = Path(model).absolute()
        if not model.is_file():
            raise VidstyleError("model file not found", model)
        check_model_style(style_path, load_card(model), model)
    if is_image_sequence(out):
        check_writable(Path(out).parent / "probe")
    else:
        check_writable(out)
    n = info.frame_count

    # Hard cuts near the boundaries: a boundary moves onto one (up to a quarter chunk away),
    # a warm-up starts at one (up to 2 * overlap before a chunk). Both make the seam exact.
    cuts: list[int] = []
    use_cuts = snap_cuts and settings.render.scene_cut and n > chunk
    snap = chunk // 4 if use_cuts else 0
    if use_cuts:
        centers = list(range(chunk, n, chunk))
        before = max(snap, 2 * overlap)
        cuts = detect_cuts_near(source, settings, centers, before, snap, n, rate=info.rate)
    spans = layout(n, chunk, overlap, cuts, snap)

    # Names that change whenever what they hold would: a re-plan with other settings never
    # picks up stale chunks or a model for another style.
    if model is None:
        side = work_side([Path(source)], settings.render.max_side)
        mkey = model_key(
            file_sha256(style_path),
            training_fingerprint(settings, side),
            [content_fingerprint(Path(source))],
        )
    else:
        mkey = file_sha256(model)
    work = Path(work_dir).absolute() if work_dir else job_path.with_suffix(".vidstyle")
    model_path = model if model is not None else work / f"model-{mkey[:16]}.safetensors"
    render_cfg = asdict(settings.render)
    # don't change a chunk's pixels (beyond rounding; chunks are rendered with one lane)
    for k in ("device", "precision", "batch_size", "lanes", "lane_overlap"):
        render_cfg.pop(k, None)
    job_id = _digest(mkey, render_cfg, content_fingerprint(Path(source)), spans, chunk_format,
                     seam, overlap, str(rate))[:12]  # fmt: skip
    chunk_dir = work / f"chunks-{job_id}"
    chunks = []
    for i, (start, end, warm_from, at_cut) in enumerate(spans):
        if chunk_format == "mkv":
            path = chunk_dir / f"chunk-{i:04d}.mkv"
        else:
            path = chunk_dir / f"chunk-{i:04d}" / f"frame.%06d.{chunk_format}"
        keep = seam == "blend" and warm_from < start
        chunks.append(Chunk(i, Span(start, end, start - warm_from), str(path), keep, at_cut))

    from vidstyle import __version__

    job = Job(
        vidstyle_version=__version__,
        job_id=job_id,
        input=source,
        input_rate=None if not info.is_image_sequence else f"{info.rate}",
        style=str(style_path),
        output=out,
        work_dir=str(work),
        model=str(model_path),
        model_given=model is not None,
        settings=settings.to_dict(),
        source={
            "frame_count": n,
            "rate": None if info.rate is None else f"{info.rate}",
            "time_base": f"{info.time_base}",
            "width": info.display_width,
            "height": info.display_height,
            "audio": bool(info.audio),
            "is_image_sequence": info.is_image_sequence,
            "first_frame": _first_number(source) if start_number is None else start_number,
            "cuts_near_boundaries": cuts,
        },
        chunk_size=chunk,
        overlap=overlap,
        seam=seam,
        chunk_format=chunk_format,
        launcher=list(launcher or default_launcher()),
        chunks=chunks,
    )
    job.tasks = make_tasks(job, job_path)
    work.mkdir(parents=True, exist_ok=True)
    chunk_dir.mkdir(exist_ok=True)
    job.save(job_path)
    return job


def make_tasks(job: Job, job_path: Path) -> list[Task]:
    def task(task_id: str, kind: str, deps: list[str], args: list[str], **kw: Any) -> Task:
        argv = [*job.launcher, "farm", *args]
        return Task(task_id, kind, deps, argv, shlex.join(argv), **kw)

    jp = str(job_path)
    tasks = []
    deps: list[str] = []
    if not job.model_given:
        tasks.append(task("adapt", ADAPT, [], ["adapt", jp]))
        deps = ["adapt"]
    for c in job.chunks:
        tasks.append(
            task(
                f"chunk-{c.index:04d}",
                CHUNK,
                list(deps),
                ["task", jp, "--index", str(c.index)],
                chunk=c.index,
                frames=job.frames_label(c),
            )
        )
    chunk_ids = [t.id for t in tasks if t.kind == CHUNK]
    tasks.append(task("assemble", ASSEMBLE, chunk_ids, ["assemble", jp]))
    return tasks


def source_timestamps(job: Job) -> list[int]:
    """pts of every source frame (image sequences: 0, 1, 2, ... in time base 1/rate)."""
    pts = frame_timestamps(job.input)
    if len(pts) != job.frame_count:
        raise MediaError(
            f"the input now has {len(pts)} frames, the plan says {job.frame_count}: "
            "it changed since planning; plan the job again",
            job.input,
        )
    return pts
