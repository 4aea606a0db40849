"""Warping error E_warp (Lai et al. 2018, "Learning Blind Video Temporal Consistency", as in their
released evaluation code): how much an output video changes where its input video does not.

For each pair of consecutive frames (t, t+1):
1. Flow is computed between the INPUT frames, forward w = flow I_t -> I_{t+1} and backward
   ŵ = flow I_{t+1} -> I_t (default: OpenCV DIS "medium" at full resolution).
2. Occlusion at t (Sundaram et al.): with ŵ sampled bilinearly at x + w(x), x is occluded if
   |w + ŵ|² > 0.01·(|w|² + |ŵ|²) + 0.5 or |∇u|² + |∇v|² > 0.01·|w|² + 0.002 (w = (u, v), forward
   differences). M = 1 - occluded.
3. The next OUTPUT frame is warped back: W(x) = O_{t+1}(x + w(x)), bilinear, coordinates clamped
   at the border.
4. E_t = Σ M·(O_t - W)² / Σ M, both sums over pixels and the 3 RGB channels, images in [0, 1]
   (if M is empty, E_t = 0, as in Lai et al.'s code).
E_warp = mean of E_t over all pairs. Frames are compared at the input's size unless `size` says
otherwise (an int = long side, or (width, height)); an output of another size is resized to it
(cv2 INTER_AREA when shrinking, INTER_LINEAR when enlarging). Hard cuts (vidstyle.flow.scenecut)
are listed in `cuts`; Lai et al. keep their pairs in the mean (the default), skip_cuts=True leaves
them out. The input video's own E_warp (output = input) is the floor: it is not 0, because flow
and the mask are imperfect. Numbers are only comparable within one implementation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from vidstyle.errors import MediaError
from vidstyle.flow import (
    DISFlow,
    FlowEstimator,
    bidirectional_flow,
    is_scene_cut,
    reliability_mask,
    warp,
)

Size = tuple[int, int]


@dataclass
class WarpingErrorResult:
    mean: float  # E_warp: mean of per_pair (nan when there are no pairs)
    per_pair: list[float]  # E_t for the pairs (0, 1), (1, 2), ...
    pairs: int
    size: Size | None = None  # (width, height) the frames were compared at
    reliable_fraction: float = float("nan")  # mean over pairs of the fraction of pixels in M
    reliable_per_pair: list[float] = field(default_factory=list, repr=False)
    cuts: list[int] = field(default_factory=list)  # frames t starting a new shot (pair t-1, t)
    skipped_cuts: bool = False  # True: the pairs in `cuts` are left out of mean/per_pair


def _compute_size(width: int, height: int, size: int | Size | None) -> Size:
    if size is None:
        return width, height
    if isinstance(size, int):  # long side
        scale = size / max(width, height)
        return max(1, round(width * scale)), max(1, round(height * scale))
    return int(size[0]), int(size[1])


def _resize(frame: np.ndarray, size: Size) -> np.ndarray:
    height, width = frame.shape[:2]
    if (width, height) == size:
        return frame
    shrinking = size[0] * size[1] < width * height
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _to_unit(frame: np.ndarray) -> np.ndarray:
    """RGB uint8 -> float32 in [0, 1]; float frames are taken to be in [0, 1] already."""
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an RGB (H, W, 3) frame, got shape {frame.shape}")
    if frame.dtype == np.uint8:
        return frame.astype(np.float32) / 255.0
    return frame.astype(np.float32, copy=False)


def pair_error(
    prev_out: np.ndarray, next_out: np.ndarray, flow_fwd: np.ndarray, mask: np.ndarray
) -> float:
    """E_t = Σ M·(O_t - O_{t+1}(x + w(x)))² / Σ M over pixels x 3 channels (0 when M is empty)."""
    diff = prev_out - warp(next_out, flow_fwd)
    weighted = np.sum(mask[..., None] * diff * diff, dtype=np.float64)
    denom = float(mask.sum(dtype=np.float64)) * diff.shape[2]
    return float(weighted / denom) if denom > 0 else 0.0


class MultiWarpingError:
    """E_warp of several outputs of one input, sharing the input's flow (the expensive part).

    Streaming, bounded memory: only the previous input frame and previous output frames are kept.
    The input itself is scored as output `input_name` (the floor) unless `input_name` is None.
    """

    def __init__(
        self,
        flow: FlowEstimator | None = None,
        size: int | Size | None = None,
        input_name: str | None = "input",
        check_bounds: bool = False,
        skip_cuts: bool = False,
    ):
        self.skip_cuts = skip_cuts
        self.cuts: list[int] = []
        self._frame_index = 0
        self.flow = flow if flow is not None else DISFlow("medium", max_side=None)
        self.size_option = size
        self.input_name = input_name
        self.check_bounds = check_bounds  # False = Lai et al.: no out-of-frame rule in M
        self.size: Size | None = None
        self._names: tuple[str, ...] | None = None
        self._prev_input: np.ndarray | None = None
        self._prev_outputs: dict[str, np.ndarray] = {}
        self._errors: dict[str, list[float]] = {}
        self._reliable: list[float] = []

    def update(
        self, input_frame: np.ndarray, outputs: Mapping[str, np.ndarray]
    ) -> dict[str, float] | None:
        """Add frame t of the input and of each output; returns E for pair (t-1, t) once t >= 1
        (None at frame 0, and at a cut when skip_cuts is set)."""
        height, width = input_frame.shape[:2]
        if self.size is None:
            self.size = _compute_size(width, height, self.size_option)
            self._source_size = (width, height)
            self._names = tuple(outputs) + ((self.input_name,) if self.input_name else ())
            if self.input_name in outputs:
                raise ValueError(f"output name {self.input_name!r} is reserved for the input")
            self._errors = {name: [] for name in self._names}
        elif (width, height) != self._source_size:
            raise MediaError(
                f"input frame size changed from {self._source_size[0]}x{self._source_size[1]} "
                f"to {width}x{height}"
            )
        if set(outputs) | ({self.input_name} if self.input_name else set()) != set(self._names):
            raise ValueError(f"outputs must be the same every frame: {sorted(outputs)}")
        frame_in = _resize(input_frame, self.size)
        current = {name: _to_unit(_resize(frame, self.size)) for name, frame in outputs.items()}
        if self.input_name:
            current[self.input_name] = _to_unit(frame_in)

        errors = None
        if self._prev_input is not None:
            fwd, bwd = bidirectional_flow(self.flow, self._prev_input, frame_in)
            mask = reliability_mask(fwd, bwd, check_bounds=self.check_bounds)
            if is_scene_cut(self._prev_input, frame_in, mask=mask):
                self.cuts.append(self._frame_index)
                if self.skip_cuts:
                    self._advance(frame_in, current)
                    return None
            self._reliable.append(float(mask.mean()))
            errors = {
                name: pair_error(self._prev_outputs[name], frame, fwd, mask)
                for name, frame in current.items()
            }
            for name, value in errors.items():
                self._errors[name].append(value)
        self._advance(frame_in, current)
        return errors

    def _advance(self, frame_in: np.ndarray, current: dict[str, np.ndarray]) -> None:
        self._prev_input = frame_in
        self._prev_outputs = current
        self._frame_index += 1

    def result(self) -> dict[str, WarpingErrorResult]:
        return {
            name: WarpingErrorResult(
                mean=float(np.mean(values)) if values else float("nan"),
                per_pair=list(values),
                pairs=len(values),
                size=self.size,
                reliable_fraction=float(np.mean(self._reliable))
                if self._reliable
                else float("nan"),
                reliable_per_pair=list(self._reliable),
                cuts=list(self.cuts),
                skipped_cuts=self.skip_cuts,
            )
            for name, values in self._errors.items()
        }


class WarpingError:
    """E_warp of one output video against its input (see the module doc), streaming."""

    def __init__(
        self,
        flow: FlowEstimator | None = None,
        size: int | Size | None = None,
        check_bounds: bool = False,
        skip_cuts: bool = False,
    ):
        self._multi = MultiWarpingError(
            flow, size, input_name=None, check_bounds=check_bounds, skip_cuts=skip_cuts
        )

    def update(self, input_frame: np.ndarray, output_frame: np.ndarray) -> float | None:
        errors = self._multi.update(input_frame, {"output": output_frame})
        return None if errors is None else errors["output"]

    def result(self) -> WarpingErrorResult:
        results = self._multi.result()
        if "output" in results:
            return results["output"]
        return WarpingErrorResult(mean=float("nan"), per_pair=[], pairs=0)

    @staticmethod
    def multi(
        inputs: Iterable[np.ndarray],
        outputs: Mapping[str, Iterable[np.ndarray]],
        flow: FlowEstimator | None = None,
        size: int | Size | None = None,
        input_name: str | None = "input",
        check_bounds: bool = False,
        skip_cuts: bool = False,
    ) -> dict[str, WarpingErrorResult]:
        """E_warp of every output (and of the input itself, as `input_name`) with ONE flow pass.

        All iterables are consumed in lockstep, one frame at a time; they must have equally many
        frames (MediaError naming the short one otherwise).
        """
        meter = MultiWarpingError(
            flow, size, input_name=input_name, check_bounds=check_bounds, skip_cuts=skip_cuts
        )
        names: Sequence[str] = list(outputs)
        iters = [iter(outputs[name]) for name in names]
        done = object()
        count = 0
        for frame_in in inputs:
            frames = [next(it, done) for it in iters]
            short = [name for name, frame in zip(names, frames, strict=True) if frame is done]
            if short:
                raise MediaError(
                    f"output {short[0]!r} ended after {count} frames; the input has more"
                )
            meter.update(frame_in, dict(zip(names, frames, strict=True)))  # type: ignore[arg-type]
            count += 1
        longer = [name for name, it in zip(names, iters, strict=True) if next(it, done) is not done]
        if longer:
            raise MediaError(f"output {longer[0]!r} has more frames than the input ({count})")
        return meter.result()
