"""Threaded stages joined by bounded queues: decode, flow and encode overlap with the network.

Bounded queues are what keep memory flat whatever the video length: a stage that runs ahead
blocks once `depth` items wait for the next stage. Exceptions in a stage thread are re-raised in
the consumer, and closing a stage unblocks and stops its thread (no hung process on Ctrl-C).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
_END = object()


@dataclass
class StageClock:
    """Busy seconds per stage, to report per-stage throughput and find the bottleneck."""

    busy: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.busy[stage] = self.busy.get(stage, 0.0) + seconds

    def timed(self, stage: str, iterable: Iterable[T]) -> Iterator[T]:
        """Yield from `iterable`, charging the time spent producing each item to `stage`."""
        it = iter(iterable)
        while True:
            start = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                self.add(stage, time.perf_counter() - start)
                return
            self.add(stage, time.perf_counter() - start)
            yield item


class Prefetch(Generic[T]):
    """Iterate `source` in a background thread, keeping at most `depth` items ready."""

    def __init__(
        self, source: Iterable[T], depth: int = 8, name: str = "prefetch", owns: Any = None
    ):
        self._owns = owns  # closed by close(), after the thread has stopped (e.g. the reader)
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(source,), name=name, daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, source: Iterable[T]) -> None:
        try:
            for item in source:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(exc)

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        while True:  # drain so a blocked producer sees the stop flag
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=5)
        if self._owns is not None:
            owned, self._owns = self._owns, None
            owned.close()


def ordered_map(
    fn: Callable[[T], R], items: Iterable[T], workers: int, ahead: int | None = None
) -> Iterator[tuple[T, R]]:
    """Map `fn` over `items` in a thread pool, yielding (item, result) in input order.

    At most `ahead` results are in flight, so a slow consumer holds back the producers.
    """
    ahead = ahead or 2 * workers
    pending: deque[tuple[T, Future]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="flow") as pool:
        try:
            for item in items:
                pending.append((item, pool.submit(fn, item)))
                if len(pending) >= ahead:
                    first, fut = pending.popleft()
                    yield first, fut.result()
            while pending:
                first, fut = pending.popleft()
                yield first, fut.result()
        finally:
            for _, fut in pending:
                fut.cancel()


class BackgroundSink(Generic[T]):
    """Consume items in a background thread (the encoder), with a bounded backlog."""

    def __init__(self, consume: Callable[[T], None], depth: int = 8, name: str = "sink"):
        self._consume = consume
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if self._error is None:
                try:
                    self._consume(item)
                except BaseException as exc:
                    self._error = exc

    def put(self, item: T) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(item)

    def close(self) -> None:
        """Wait for the backlog to be consumed; re-raise the consumer's error if any."""
        self._queue.put(_END)
        self._thread.join()
        if self._error is not None:
            raise self._error


def batched(items: Iterator[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of `size` items (the last may be shorter); itertools.batched is 3.12+."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
