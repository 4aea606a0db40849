"""Frame timing you can trust: a display-order timestamp for every frame, and the rule that
gives each decoded frame its place in that list.

Containers and decoders label frames, and the labels can lie: raw streams have none, some
muxers repeat or drop them, and DivX-era AVIs with packed B-frames come out of FFmpeg's decoder
with swapped labels (pts 1, 3, 2, 5, 4, ...) although the pictures are in the right order.
What can be trusted is the decoder's output order (it is the display order) and the set of
timestamps the container's index holds. So:

- `repair_timestamps` turns the demuxed labels into a strictly increasing timeline: sane labels
  are kept exactly (VFR stays VFR); missing or repeated ones are filled in from the frame rate
  between their sane neighbours, or, when even that is impossible, the whole stream is timed
  from the frame rate.
- `FramePlacer` gives each decoded frame its index in that timeline: by its label while labels
  agree with the timeline (so frames a decoder drops leave their gap), by counting once a label
  is missing, repeated or goes backwards.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from fractions import Fraction
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")

#: Frames a placer holds while a jump in the labels is unexplained: a decoder that reorders
#: (B-frames) fills such a gap within its reorder depth (at most 16 frames in H.264/HEVC).
HOLD = 16

# FFmpeg's own test (mpeg4videodec.c): user data "DivX503b1393p" = DivX 5.03, build 1393, packed
_DIVX = re.compile(rb"DivX(\d+)(?:Build|b)(\d+)(p?)")


def divx_packed_bframes(data: bytes) -> bool:
    """True when an MPEG-4 Part 2 header or first frame says it uses packed B-frames."""
    match = _DIVX.search(data[:4096])
    return bool(match and match.group(3) == b"p")


def frame_step(rate: Fraction | None, time_base: Fraction) -> Fraction:
    """Ticks of `time_base` per frame at `rate` (25 fps when the rate is unknown)."""
    return 1 / (Fraction(rate or 25) * Fraction(time_base))


def rate_text(rate: Fraction | None) -> str:
    if rate is None:
        return "25 fps (assumed)"
    return f"{float(rate):.6g} fps"


def repair_timestamps(
    labels: Sequence[int | None], rate: Fraction | None, time_base: Fraction
) -> tuple[np.ndarray, str | None]:
    """Display-order pts (int64, strictly increasing) for frames whose demuxed labels, in
    decode order, are `labels`; and what was wrong with the labels (None if nothing)."""
    n = len(labels)
    present = [int(x) for x in labels if x is not None]
    if len(present) == n and len(set(present)) == n:
        return np.sort(np.asarray(present, dtype=np.int64)), None
    step = frame_step(rate, time_base)
    missing = n - len(present)
    repeated = len(present) - len(set(present))
    bad = missing + repeated
    if missing == n:
        what = "no frame has a timestamp"
    elif not repeated:
        what = f"{bad} of {n} frames have no timestamp"
    elif not missing:
        what = f"{bad} of {n} frames repeat a timestamp"
    else:
        what = f"{bad} of {n} frames have no timestamp or repeat one"
    local = _fill_between(labels, step)
    if local is not None:
        return local, f"{what}; those are timed from the frame rate ({rate_text(rate)})"
    start = min(present) if present else 0
    grid = np.asarray([start + round(k * step) for k in range(n)], dtype=np.int64)
    return grid, f"{what}; every frame is timed from the frame rate ({rate_text(rate)})"


def _fill_between(labels: Sequence[int | None], step: Fraction) -> np.ndarray | None:
    """Keep the labels that increase in decode order, fill the others in between their
    neighbours one frame step apart (evenly if the gap is narrower). None when the labels are
    reordered (B-frames: the display position of an unlabelled frame is unknown) or a gap is
    too narrow to hold its frames."""
    values: list[int | None] = []
    last = None
    for x in labels:
        if x is None or (last is not None and x == last):
            values.append(None)
            continue
        if last is not None and x < last:
            return None
        values.append(int(x))
        last = int(x)
    known = [i for i, v in enumerate(values) if v is not None]
    if not known:
        return None
    out = list(values)
    first, final = known[0], known[-1]
    for j in range(first):  # leading frames: before the first label
        out[j] = values[first] - round((first - j) * step)  # type: ignore[operator]
    for j in range(final + 1, len(values)):  # trailing frames: after the last one
        out[j] = values[final] + round((j - final) * step)  # type: ignore[operator]
    for a, b in itertools.pairwise(known):
        holes = b - a - 1
        if not holes:
            continue
        lo, hi = values[a], values[b]
        assert lo is not None and hi is not None
        if lo + round(holes * step) < hi:
            fill = [lo + round(k * step) for k in range(1, holes + 1)]
        elif hi - lo > holes:
            fill = [lo + round(k * Fraction(hi - lo, holes + 1)) for k in range(1, holes + 1)]
        else:
            return None
        out[a + 1 : b] = fill
    arr = np.asarray(out, dtype=np.int64)
    if len(arr) > 1 and not (np.diff(arr) > 0).all():
        return None
    return arr


def extend(timeline: np.ndarray, index: int, step: Fraction) -> int:
    """pts of frame `index`, past the end of `timeline` one frame step apart."""
    if index < len(timeline):
        return int(timeline[index])
    if not len(timeline):
        return round(index * step)
    return int(timeline[-1]) + round((index - len(timeline) + 1) * step)


class FramePlacer(Generic[T]):
    """Index decoded frames, in the decoder's output order, into `timeline`.

    `push(label, item)` returns the (index, item) pairs that are now placed (possibly none,
    possibly several, in order); `finish()` the rest. Starts trusting labels (`trust=True`):
    a label equal to the next expected timestamp places its frame there; one further ahead is a
    gap, held until it is explained (by frames inside the gap: the decoder reorders, labels are
    not to be trusted; or by HOLD later frames: the decoder dropped frames). A missing,
    repeated or backwards label turns trust off: from then on frames are counted."""

    def __init__(self, timeline: np.ndarray, next_index: int = 0, trust: bool = True):
        self.timeline = timeline
        self.next = int(next_index)
        self.trusted = trust
        self.reason: str | None = None  # why labels stopped being trusted
        self.dropped = 0  # frames the labels skipped (the decoder could not decode them)
        self._held: list[tuple[int, int, T]] = []  # (index by label, label, item)
        self._last_label: int | None = None

    def _lookup(self, label: int) -> int | None:
        j = int(np.searchsorted(self.timeline, label))
        return j if j < len(self.timeline) and int(self.timeline[j]) == label else None

    def _distrust(self, reason: str) -> list[tuple[int, T]]:
        self.trusted = False
        self.reason = reason
        placed = []
        for _, _, item in self._held:
            placed.append((self.next, item))
            self.next += 1
        self._held.clear()
        return placed

    def _count(self, item: T) -> tuple[int, T]:
        index = self.next
        self.next += 1
        return index, item

    def _release_held(self) -> list[tuple[int, T]]:
        placed = [(j, item) for j, _, item in self._held]
        if placed:
            self.dropped += placed[-1][0] + 1 - self.next - len(placed)
            self.next = placed[-1][0] + 1
        self._held.clear()
        return placed

    def push(self, label: int | None, item: T) -> list[tuple[int, T]]:
        if not self.trusted:
            return [self._count(item)]
        if label is None:
            return [*self._distrust("frames without a timestamp"), self._count(item)]
        label = int(label)
        previous = self._held[-1][1] if self._held else self._last_label
        if previous is not None and label <= previous:
            why = "repeated timestamps" if label == previous else "timestamps out of order"
            return [*self._distrust(why), self._count(item)]
        j = self._lookup(label)
        if j is None or j < self.next:
            why = "timestamps that are not in the container's index"
            return [*self._distrust(why), self._count(item)]
        self._last_label = label
        if self._held:
            self._held.append((j, label, item))
            return self._release_held() if len(self._held) > HOLD else []
        if j == self.next:
            return [self._count(item)]
        self._held.append((j, label, item))  # a gap: dropped frames, or reordered labels?
        return []

    def finish(self) -> list[tuple[int, T]]:
        return self._release_held()
