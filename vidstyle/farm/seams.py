"""Do the chunk seams show? Warping error (Lai et al.) of every frame pair of the assembled
output, the pairs across each seam compared with the median of the other pairs.

Pairs across a hard cut are left out of the median and of the check (the output is meant to
change there). With cross-faded seams the change from one chain to the next is spread over the
overlap, so the report also gives the worst pair of each cross-fade window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from vidstyle.farm.plan import Job
from vidstyle.io import open_reader, probe

#: A seam is invisible when its pair's warping error is at most this times the median pair's.
SEAM_LIMIT = 1.5


@dataclass
class Seam:
    chunk: int  # the chunk that starts here
    frame: int  # its first frame (0-based); the seam pair is (frame - 1, frame)
    error: float  # warping error of the seam pair
    window_max: float  # worst pair from the chunk's warm-up start to its first frame (no cuts)
    at_cut: bool  # the seam lies on a hard cut: not checked

    def ratio(self, median: float) -> float:
        return self.error / median if median > 0 else float("inf")


@dataclass
class SeamReport:
    seams: list[Seam]
    median: float  # median warping error of the pairs that are neither seams nor cuts
    pairs: int
    cuts: list[int] = field(default_factory=list)  # frames t starting a new shot
    limit: float = SEAM_LIMIT

    @property
    def ok(self) -> bool:
        return all(s.at_cut or s.error <= self.limit * self.median for s in self.seams)

    def to_dict(self) -> dict:
        return {
            "median": self.median,
            "pairs": self.pairs,
            "cuts": self.cuts,
            "limit": self.limit,
            "ok": self.ok,
            "seams": [
                {
                    **vars(s),
                    "ratio": round(s.ratio(self.median), 3),
                    "window_max": None if math.isnan(s.window_max) else s.window_max,
                    "window_ratio": None
                    if math.isnan(s.window_max) or not self.median
                    else round(s.window_max / self.median, 3),
                }
                for s in self.seams
            ],
        }

    def table(self) -> str:
        lines = [f"{'seam':>4} {'frame':>6} {'E_warp':>10} {'x median':>9} {'window max':>11}"]
        for s in self.seams:
            note = "  (hard cut: not checked)" if s.at_cut else ""
            window = "-" if s.at_cut else f"{s.window_max / self.median:.2f}"
            lines.append(
                f"{s.chunk:>4} {s.frame:>6} {s.error:>10.5f} {s.ratio(self.median):>9.2f} "
                f"{window:>11}{note}"
            )
        verdict = "ok" if self.ok else f"SEAMS SHOW (> {self.limit}x median)"
        lines.append(
            f"median of the other {self.pairs} pairs: {self.median:.5f} "
            f"(cut pairs left out: frames {self.cuts}); {verdict}"
        )
        return "\n".join(lines)


def seam_report(job: Job, limit: float = SEAM_LIMIT) -> SeamReport:
    """Measure the assembled output of `job` against its input (one pass over both)."""
    from vidstyle.metrics.warping import WarpingError

    out_info = probe(job.output, rate=job.rate)
    side = max(out_info.display_width, out_info.display_height)
    meter = WarpingError(size=side)
    with (
        open_reader(job.input, rate=job.rate) as source,
        open_reader(job.output, rate=job.rate) as output,
    ):
        for a, b in zip(source, output, strict=True):
            meter.update(a.rgb, b.rgb)
    result = meter.result()
    errors = result.per_pair  # pair p = frames (p, p + 1)
    cuts = set(result.cuts)
    seam_pairs: set[int] = set()
    seams = []
    for chunk in job.chunks[1:]:
        span = chunk.span
        # the cross-fade's pairs (only the seam pair itself where the chunks are just joined)
        window = range(max(span.warmup_start - 1, 0), span.start) if chunk.keep_warmup else ()
        seam_pairs.update(window)
        seam_pairs.add(span.start - 1)
        seams.append(
            Seam(
                chunk=chunk.index,
                frame=span.start,
                error=errors[span.start - 1],
                window_max=max(
                    [errors[p] for p in [*window, span.start - 1] if (p + 1) not in cuts],
                    default=float("nan"),
                ),
                at_cut=chunk.at_cut or span.start in cuts,
            )
        )
    others = [e for p, e in enumerate(errors) if p not in seam_pairs and (p + 1) not in cuts]
    median = float(np.median(others)) if others else float("nan")
    return SeamReport(seams, median, len(others), sorted(cuts), limit)
