"""Training material for adaptation: short runs of consecutive frames with their optical flow.

The network is adapted to the footage it will stylize, so its training data is that footage:
`sample_runs` runs of `sequence_length` consecutive frames spread evenly across each video, at the
resolution the network will work at. Flow between consecutive frames (and its reliability mask)
is computed once here, so each training step only crops and stacks tensors. Still images (an
extra content folder) are runs of length one: they teach style, not time.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from vidstyle.errors import MediaError
from vidstyle.flow import link_to_previous, make_flow, shrink
from vidstyle.io import fit_size, is_image_sequence, load_image, open_reader, probe

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"})


@dataclass
class Run:
    """Consecutive frames (L, H, W, 3) uint8, flow t->t-1 (L-1, H, W, 2) fp16, masks (L-1, H, W)."""

    frames: np.ndarray
    flows: np.ndarray
    masks: np.ndarray

    @property
    def length(self) -> int:
        return len(self.frames)


@dataclass
class Batch:
    """A training batch on the device: frames (B, L, 3, c, c) in [0, 1], flows (B, L-1, 2, c, c)."""

    frames: torch.Tensor
    flows: torch.Tensor
    masks: torch.Tensor


def _run_from_frames(frames: list[np.ndarray], flow, flow_max_side: int | None = None) -> Run:
    flows, masks = [], []
    h, w = frames[0].shape[:2]
    small = [shrink(f, flow_max_side) for f in frames]
    for prev, cur in itertools.pairwise(small):
        back, mask = link_to_previous(flow, cur, prev).at_size(w, h)
        flows.append(back.astype(np.float16))
        masks.append((mask > 0.5).astype(np.uint8))
    h, w = frames[0].shape[:2]
    return Run(
        frames=np.stack(frames),
        flows=np.stack(flows) if flows else np.zeros((0, h, w, 2), np.float16),
        masks=np.stack(masks) if masks else np.zeros((0, h, w), np.uint8),
    )


def _enlarge_to(run: Run, min_side: int) -> Run:
    """Upscale a run whose frames are smaller than the crop (flow magnitudes scale with it)."""
    h, w = run.frames.shape[1:3]
    scale = min_side / min(h, w)
    if scale <= 1.0:
        return run
    size = (max(min_side, round(w * scale)), max(min_side, round(h * scale)))
    frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_CUBIC) for f in run.frames])
    flows = (
        np.stack(
            [cv2.resize(f.astype(np.float32), size) * np.float32(size[0] / w) for f in run.flows]
        ).astype(np.float16)
        if len(run.flows)
        else np.zeros((0, size[1], size[0], 2), np.float16)
    )
    if len(run.flows):  # y component scales with the height ratio
        flows[..., 1] *= np.float16((size[1] / h) / (size[0] / w))
    masks = (
        np.stack([cv2.resize(m, size, interpolation=cv2.INTER_NEAREST) for m in run.masks])
        if len(run.masks)
        else np.zeros((0, size[1], size[0]), np.uint8)
    )
    return Run(frames, flows, masks)


def video_runs(
    path: Path, *, max_side: int, runs: int, length: int, flow_max_side: int, flow: str = "dis"
) -> list[Run]:
    """`runs` runs of `length` consecutive frames spread evenly over the video (or image
    sequence) at work size."""
    info = probe(path)
    size = fit_size(info.display_width, info.display_height, max_side)
    length = max(1, min(length, info.frame_count))
    count = max(1, min(runs, info.frame_count // length))
    starts = np.linspace(0, info.frame_count - length, count).round().astype(int)
    estimator = make_flow(flow, max_side=None)  # frames are shrunk to flow_max_side first
    result = []
    for frames in _decode_runs(path, size, sorted(set(starts.tolist())), length):
        if frames:
            result.append(_run_from_frames(frames, estimator, flow_max_side))
    if not result:
        raise MediaError("no frames could be decoded for adaptation", path)
    return result


#: Runs closer together than this (frames, on average) are read in one pass rather than by
#: seeking to each: a seek decodes from the keyframe before it anyway.
DENSE_GAP = 60


def _decode_runs(path: Path, size: tuple[int, int], starts: list[int], length: int):
    """Yield the frames of each run (same order as `starts`), in one decoding pass when the
    runs are dense (a short clip: every seek would re-decode most of it), else seeking."""
    last = starts[-1] + length
    if (last - starts[0]) <= DENSE_GAP * len(starts):
        wanted = {index for start in starts for index in range(start, start + length)}
        decoded: dict[int, np.ndarray] = {}
        with open_reader(str(path), size=size, start_index=starts[0], end_index=last) as reader:
            for index, frame in enumerate(reader, start=starts[0]):
                if index in wanted:
                    decoded[index] = frame.rgb
        for start in starts:
            yield [decoded[i] for i in range(start, start + length) if i in decoded]
        return
    for start in starts:
        with open_reader(
            str(path), size=size, start_index=start, end_index=start + length
        ) as reader:
            yield [frame.rgb for frame in reader]


def images_at_side(paths: list[Path], max_side: int) -> list[np.ndarray]:
    """Still images (RGB uint8) resized with INTER_AREA so their long side is `max_side`."""
    out = []
    for path in paths:
        img = load_image(path)
        w, h = fit_size(img.shape[1], img.shape[0], max_side)
        out.append(cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA))
    return out


def still_runs(images: list[np.ndarray]) -> list[Run]:
    """Images already at work size as runs of length one (style, not time)."""
    return [_run_from_frames([image], None) for image in images]


def image_runs(paths: list[Path], max_side: int) -> list[Run]:
    """Still images as runs of length one, resized to the work size."""
    return still_runs(images_at_side(paths, max_side))


def content_runs(
    sources: list[Path],
    *,
    max_side: int,
    runs: int,
    length: int,
    flow_max_side: int,
    flow: str = "dis",
) -> list[Run]:
    """Runs from every content source: videos, image sequences, folders of videos/images."""
    result: list[Run] = []
    per_source = max(1, runs // max(1, len(sources)))
    for source in sources:
        source = Path(source)
        if source.is_dir():
            images = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            videos = sorted(
                p
                for p in source.iterdir()
                if p.suffix.lower() not in IMAGE_SUFFIXES
                and p.is_file()
                and not p.name.startswith(".")
            )
            result += image_runs(images[: max(runs, 1)], max_side)
            for video in videos:
                try:
                    result += video_runs(
                        video,
                        max_side=max_side,
                        runs=per_source,
                        length=length,
                        flow_max_side=flow_max_side,
                        flow=flow,
                    )
                except MediaError:
                    continue  # a folder may hold other files; the ones we can read are enough
        elif source.suffix.lower() in IMAGE_SUFFIXES and not is_image_sequence(str(source)):
            result += image_runs([source], max_side)
        else:  # a video file or an image sequence
            result += video_runs(
                source,
                max_side=max_side,
                runs=per_source,
                length=length,
                flow_max_side=flow_max_side,
                flow=flow,
            )
    if not result:
        raise MediaError("no usable content frames in the training sources", sources[0])
    return result


class RunSampler:
    """Random crops (same window through a run) and horizontal flips, stacked for the device."""

    def __init__(self, runs: list[Run], crop: int, seed: int = 0):
        # Crops as asked, unless even the largest frames are smaller; smaller frames are enlarged.
        self.crop = max(32, min(crop, max(min(r.frames.shape[1:3]) for r in runs)))
        self.runs = [_enlarge_to(r, self.crop) for r in runs]
        self.rng = np.random.default_rng(seed)
        self.max_length = max(r.length for r in self.runs)

    def _punch_holes(self, masks: np.ndarray, chance: float = 0.3) -> np.ndarray:
        """Zero random rectangles of the reliability masks: simulated disocclusions.

        Real footage has few disoccluded pixels, so without this the network rarely practises
        painting fresh regions next to carried-over ones, and the trails behind moving objects
        come out muddy.
        """
        c = masks.shape[-1]
        for t in range(len(masks)):
            if self.rng.random() < chance:
                h, w = (int(v) for v in self.rng.integers(c // 8, c // 2 + 1, size=2))
                y, x = int(self.rng.integers(0, c - h + 1)), int(self.rng.integers(0, c - w + 1))
                masks[t, y : y + h, x : x + w] = 0
        return masks

    def sample(self, batch_size: int, length: int, device: torch.device) -> Batch:
        candidates = [i for i, r in enumerate(self.runs) if r.length >= length] or list(
            range(len(self.runs))
        )
        length = min(length, min(self.runs[i].length for i in candidates))
        c = self.crop
        frames, flows, masks = [], [], []
        for i in self.rng.choice(candidates, size=batch_size):
            run = self.runs[i]
            h, w = run.frames.shape[1:3]
            y = int(self.rng.integers(0, h - c + 1))
            x = int(self.rng.integers(0, w - c + 1))
            f = run.frames[:length, y : y + c, x : x + c]
            fl = run.flows[: length - 1, y : y + c, x : x + c].astype(np.float32)
            m = run.masks[: length - 1, y : y + c, x : x + c]
            if self.rng.random() < 0.5:
                f, fl, m = f[:, :, ::-1], fl[:, :, ::-1].copy(), m[:, :, ::-1]
                fl[..., 0] *= -1
            m = self._punch_holes(np.array(m))  # a copy: the stored run stays intact
            frames.append(np.ascontiguousarray(f))
            flows.append(fl)
            masks.append(m)
        frames_t = torch.from_numpy(np.stack(frames)).to(device).permute(0, 1, 4, 2, 3)
        flows_t = torch.from_numpy(np.stack(flows)).to(device).permute(0, 1, 4, 2, 3)
        masks_t = torch.from_numpy(np.stack(masks)).to(device).unsqueeze(2)
        return Batch(frames_t.float().div_(255), flows_t.contiguous(), masks_t.float())
