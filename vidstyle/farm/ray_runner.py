"""Run a job plan on Ray: locally (an embedded `ray.init()`) or on an existing cluster.

The plan's dependency graph becomes ObjectRef dependencies: every chunk task takes the adapt
task's result as an argument, the assemble task takes every chunk's, so Ray starts each task as
soon as what it needs exists. Each remote function calls the same task function the
`vidstyle farm` commands call; tasks are idempotent, so a retried task (a worker that crashed or
was killed, `max_retries`; an exception, `retry_exceptions`) simply renders its chunk again, and
running a half-finished job again redoes only what is missing. Adapt and chunk tasks ask for a
GPU when the cluster has them. Nodes must see the job's paths (shared storage) and have vidstyle
installed.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidstyle.errors import ConfigError, VidstyleError, file_of
from vidstyle.farm.plan import ADAPT, ASSEMBLE, CHUNK, Job
from vidstyle.notices import save_traceback

INSTALL_HINT = "Ray is not installed here: pip install 'vidstyle[farm]'"


def import_ray():
    """Ray is an optional extra: a one-line error when it is missing."""
    try:
        import ray
    except ImportError:
        raise VidstyleError(INSTALL_HINT) from None
    return ray


def parse_gpus(text: str | float | None) -> float | None:
    """--num-gpus-per-task: "auto" (None: 1 if the cluster has GPUs, else 0) or a number."""
    if text is None or str(text).strip().lower() == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"--num-gpus-per-task must be auto or a number, not {text!r}") from None
    if value < 0:
        raise ConfigError(f"--num-gpus-per-task must be 0 or more, not {text}")
    return value


# The remote bodies: module-level functions, so workers import them from the installed package.


def adapt_task(job_path: str) -> dict[str, Any]:
    from vidstyle.farm.tasks import run_adapt

    return vars(run_adapt(Job.load(job_path)))


def chunk_task(job_path: str, index: int, *_after: Any) -> dict[str, Any]:
    from vidstyle.farm.tasks import run_chunk

    return vars(run_chunk(Job.load(job_path), index))


def assemble_task(job_path: str, *_after: Any) -> dict[str, Any]:
    from vidstyle.farm.tasks import run_assemble

    return vars(run_assemble(Job.load(job_path)))


@dataclass
class RayRunResult:
    output: str
    frames: int
    seconds: float
    done: int  # tasks that did work
    skipped: int  # tasks that found their output already complete
    gpus_per_task: float

    def summary(self) -> str:
        gpu = f", {self.gpus_per_task:g} GPU per task" if self.gpus_per_task else ""
        return (
            f"{self.output}: {self.frames} frames in {self.seconds:.1f} s on Ray "
            f"({self.done} tasks run, {self.skipped} already done{gpu})"
        )


def _failure(ray, task_id: str, exc: BaseException, retries: int) -> VidstyleError:
    """One line for a failed task: a VidstyleError's own; anything else summarised (its type
    and first line, the file it happened on) with the worker's traceback saved to a log."""
    cause = getattr(exc, "cause", None) if isinstance(exc, ray.exceptions.RayTaskError) else None
    if isinstance(cause, VidstyleError):
        return type(cause)(f"farm task {task_id} failed: {cause.message}", cause.path)
    shown = cause if cause is not None else exc
    text = [t for t in str(shown).strip().splitlines() if t.strip()]
    name = type(shown).__name__
    line = f"{name}: {text[0]}" if text and cause is not None else (text[0] if text else name)
    saved = save_traceback(getattr(exc, "traceback_str", None) or str(exc))  # the worker's
    where = f"; worker traceback in {saved}" if saved else ""
    return VidstyleError(
        f"farm task {task_id} failed after {retries} retries: {line}{where}",
        file_of(shown) if cause is not None else None,
    )


def run_on_ray(
    job_file: str | os.PathLike[str],
    *,
    address: str | None = None,
    num_gpus_per_task: float | None = None,
    cpus_per_task: float = 1.0,
    num_cpus: int | None = None,
    max_retries: int = 3,
    progress: bool = True,
) -> RayRunResult:
    """Execute the plan; joins an already initialised Ray (e.g. a test's) if there is one."""
    from tqdm import tqdm

    ray = import_ray()
    job = Job.load(job_file)
    job_path = str(Path(job_file).absolute())
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(
            address=address,
            num_cpus=num_cpus if address is None else None,
            include_dashboard=False,
            logging_level="warning",
        )
    started = time.perf_counter()
    failed = False
    try:
        gpus = num_gpus_per_task
        if gpus is None:
            gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
        # Nothing else can run while the model adapts: it gets a whole node's CPUs (Ray sets
        # the task's torch/OpenMP threads to its CPU count).
        node_cpus = max(
            (n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")), default=1
        )
        common = dict(max_retries=max_retries, retry_exceptions=True)
        remote = {
            ADAPT: (ray.remote(adapt_task), gpus, max(cpus_per_task, node_cpus)),
            CHUNK: (ray.remote(chunk_task), gpus, cpus_per_task),
            ASSEMBLE: (ray.remote(assemble_task), 0, cpus_per_task),
        }
        refs: dict[str, Any] = {}
        for task in job.tasks:
            fn, task_gpus, task_cpus = remote[task.kind]
            args = [job_path] if task.chunk is None else [job_path, task.chunk]
            args += [refs[d] for d in task.depends_on]  # Ray starts it once these exist
            refs[task.id] = fn.options(
                name=f"vidstyle-{task.id}", num_gpus=task_gpus, num_cpus=task_cpus, **common
            ).remote(*args)
        return _follow(ray, job, refs, max_retries, gpus, started, progress, tqdm)
    except BaseException:
        failed = True
        raise
    finally:
        if started_here:
            ray.shutdown()  # stops this Ray's workers, also those killed mid-chunk
            if failed:
                from vidstyle.farm.tasks import remove_temporaries

                remove_temporaries(job)


def _follow(ray, job: Job, refs, max_retries, gpus, started, progress, tqdm) -> RayRunResult:
    """Wait for the tasks as they finish, with a progress bar; stop at the first failure."""
    pending = {ref: task_id for task_id, ref in refs.items()}
    results: dict[str, dict] = {}
    bar = tqdm(total=len(pending), desc="farm tasks", unit="task", disable=not progress,
               dynamic_ncols=True)  # fmt: skip
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                task_id = pending.pop(ref)
                try:
                    results[task_id] = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    for other in pending:
                        ray.cancel(other, force=False)  # they stop and clean up after themselves
                    with contextlib.suppress(Exception):
                        ray.wait(list(pending), num_returns=len(pending), timeout=10.0)
                    raise _failure(ray, task_id, exc, max_retries) from None
                bar.set_postfix_str(task_id, refresh=False)
                bar.update(1)
    finally:
        bar.close()
    assembled = results["assemble"]
    return RayRunResult(
        output=job.output,
        frames=int(assembled["frames"]),
        seconds=time.perf_counter() - started,
        done=sum(not r["skipped"] for r in results.values()),
        skipped=sum(bool(r["skipped"]) for r in results.values()),
        gpus_per_task=gpus,
    )
