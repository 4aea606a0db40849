"""Meta-training: one style network body for all styles, and a style -> (gamma, beta) predictor.

Each step draws one training style (shuffled epochs, so every style is seen equally often) and a
batch of content crops, predicts the style's normalisation parameters from its VGG statistics,
paints the crops with the shared body under those parameters and optimises body and predictor
together on the same perceptual loss that adaptation uses (content + normalised Gram style +
TV, weights from the preset). One style per batch: the body uses batch normalisation, and at
adaptation its statistics are recomputed on one style's paintings of one video, so training
batches must not mix styles either.

With `inner_steps` k > 0 each step is also first-order MAML (Finn et al. 2017; Nichol et al.
2018): a copy of the style's network is adapted k steps exactly as the product adapts one (Adam,
(gamma, beta) at the high rate, body at the low one), scored on fresh crops, and that loss's
gradient at the adapted weights is added to the joint one. The start is then trained for what
users get after a few steps of adaptation, not only for the predicted network as is.

Hours of work on a 2-core CPU, so it runs in chunks: `run()` stops at a step or time limit,
checkpoints (weights, Adam moments, random generator states, step) atomically every few
minutes and on the way out, and a later call continues exactly where it stopped. Each
checkpoint also writes `start.safetensors`, the exportable start (body + predictor + card).
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch.func import functional_call

from vidstyle.adapt.corpus import Corpus, CorpusError
from vidstyle.adapt.corpus_cache import prepare_corpus
from vidstyle.adapt.data import RunSampler, still_runs
from vidstyle.adapt.trainer import TRAIN_STYLE_LAYERS
from vidstyle.errors import ConfigError, ModelError, VidstyleError
from vidstyle.models.device import Runtime
from vidstyle.models.losses import content_loss, total_variation
from vidstyle.models.meta_start import load_meta_start, save_meta_start
from vidstyle.models.predictor import StylePredictor
from vidstyle.models.store import atomic_write
from vidstyle.models.stylenet import (
    StyleNet,
    StyleNetConfig,
    split_style_vector,
    style_parameter_count,
    style_parameter_names,
    style_vector,
)
from vidstyle.models.vgg import CONTENT_LAYER, VGG19Features

CHECKPOINT = "checkpoint.safetensors"
STATE = "checkpoint.json"
START = "start.safetensors"
LOG = "log.jsonl"


@dataclass
class MetaSettings:
    """What meta-training learns with; the loss weights and geometry come from a preset."""

    network: StyleNetConfig
    work_side: int = 384  # long side of content and style images, as the preset renders
    crop: int = 128
    batch_size: int = 2
    content_weight: float = 1.25
    style_weight: float = 10.0
    tv_weight: float = 1e-3
    body_lr: float = 1e-3
    predictor_lr: float = 1e-4  # 1e-3 diverged in the feasibility prototype
    checkpoint_seconds: float = 300.0
    seed: int = 0
    inner_steps: int = 0  # > 0: first-order MAML over this many adaptation steps (see above)
    inner_affine_lr: float = 6e-2  # the adaptation's rates (the preset's meta_* rates)
    inner_body_lr: float = 1e-3
    # < 1: both learning rates decay along a cosine over this chunk's budget (its --steps or
    # --minutes, whichever ends it first) to this fraction of themselves; 1 = constant
    anneal_to: float = 1.0
    # > 0: this share of steps draws its style by difficulty (probability ~ the square of the
    # style's running style loss; after adaptation with inner_steps) instead of from the
    # shuffled epoch: trains for the tail of styles, which a share-of-styles target measures
    # (Task-Robust MAML, Collins et al. 2020, minimises the worst task's loss)
    hard_share: float = 0.0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["network"] = self.network.to_dict()
        return data


def _flatten_optimiser(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state = opt.state_dict()
    tensors = {
        f"opt.{index}.{key}": value.detach().cpu().contiguous()
        for index, entries in state["state"].items()
        for key, value in entries.items()
    }
    return tensors, {"param_groups": state["param_groups"]}


def _unflatten_optimiser(tensors: dict[str, torch.Tensor], groups: dict) -> dict:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": groups["param_groups"]}


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a farm scheduler's stop, `kill`) ends a chunk like Ctrl-C: checkpoint, exit.
    (A background job started from a script ignores SIGINT, so TERM is the signal it gets.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(_signum, _frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_work_side(corpus: Corpus, side: int) -> None:
    """Refuse a work size the corpus cannot give: 0 (a preset that renders at the source size)
    would shrink every style to 16 px, and a pack's images above its side are already smaller."""
    if side <= 0:
        raise ConfigError(
            "meta-training needs a fixed work size, but this preset renders at the source size: "
            "set [render] max_side in a --config file (384 is the slim start's)"
        )
    if corpus.packed_side is not None and side > corpus.packed_side:
        raise CorpusError(
            f"a pack made at side {corpus.packed_side} cannot train at work size {side}: "
            f"pack the corpus again with --side {side}",
            corpus.root,
        )


class MetaTrainer:
    """Owns the networks, optimiser, data and progress of one resumable meta-training run."""

    def __init__(
        self,
        corpus: Corpus,
        settings: MetaSettings,
        runtime: Runtime,
        directory: Path,
        init: Path | None = None,
    ):
        check_work_side(corpus, settings.work_side)
        self.corpus = corpus
        self.settings = settings
        self.runtime = runtime
        self.directory = Path(directory)
        device = runtime.device
        torch.manual_seed(settings.seed)
        self.body = StyleNet(settings.network).to(device)
        self.predictor = StylePredictor(style_parameter_count(self.body)).to(device)
        self.names = style_parameter_names(self.body)
        self.vgg = VGG19Features((*TRAIN_STYLE_LAYERS, CONTENT_LAYER)).to(device)
        self.vgg.to(memory_format=torch.channels_last)
        self.body.to(memory_format=torch.channels_last)
        self.styles = [item.path for item in corpus.styles("train")]
        prepared = prepare_corpus(corpus, self.vgg, settings.work_side, device)
        self.bank = prepared.bank
        self.predictor.set_normalisation(self.bank.stats.cpu())
        runs = still_runs(prepared.content)
        self.sampler = RunSampler(runs, settings.crop, seed=settings.seed)
        self.order_rng = np.random.default_rng(settings.seed + 1)
        self.order: list[int] = []
        # running style loss of each training style (None until seen): hard_share's weights
        self.difficulty: list[float | None] = [None] * len(self.styles)
        self.optimiser = torch.optim.Adam(
            [
                {"params": list(self.body.parameters()), "lr": settings.body_lr},
                {"params": list(self.predictor.parameters()), "lr": settings.predictor_lr},
            ]
        )
        self.step = 0
        self.seconds = 0.0
        self.history: list[dict] = []  # one entry per chunk: steps, minutes, learning rates
        if (self.directory / CHECKPOINT).is_file():
            self._resume()
        elif init is not None:
            self._initialise_from(init)

    # -- one step -------------------------------------------------------------------------

    def _next_style(self) -> int:
        seen = [i for i, d in enumerate(self.difficulty) if d is not None]
        # (no draw at all without hard_share: runs without it keep their exact style order)
        if self.settings.hard_share and seen and self.order_rng.random() < self.settings.hard_share:
            weights = np.array([self.difficulty[i] for i in seen]) ** 2
            return int(self.order_rng.choice(seen, p=weights / weights.sum()))
        if not self.order:
            self.order = self.order_rng.permutation(len(self.styles)).tolist()
        return self.order.pop()

    def style_overrides(self, index: int) -> dict[str, torch.Tensor]:
        """The body's (gamma, beta) plus the predicted offsets, as functional_call overrides."""
        offsets = self.predictor(self.bank.stats[index : index + 1])[0]
        vector = style_vector(self.body) + offsets
        overrides = {}
        for (w, b), (gamma, beta) in zip(
            self.names, split_style_vector(self.body, vector), strict=True
        ):
            overrides[w], overrides[b] = gamma, beta
        return overrides

    def _crops(self) -> torch.Tensor:
        s = self.settings
        batch = self.sampler.sample(s.batch_size, 1, self.runtime.device)
        return batch.frames[:, 0].contiguous(memory_format=torch.channels_last)

    def _loss(
        self, params: dict[str, torch.Tensor], frame: torch.Tensor, index: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The adaptation loss of the body under `params` (overrides) on one batch of crops."""
        s = self.settings
        with self.runtime.autocast():
            out = functional_call(self.body, params, (frame,))
            with torch.no_grad():
                content_target = self.vgg(frame)[CONTENT_LAYER]
            feats = self.vgg(out)
            c = s.content_weight * content_loss(feats[CONTENT_LAYER], content_target)
            st = s.style_weight * self.bank.targets[index].loss(feats)
        tv = s.tv_weight * total_variation(out.float())
        return c + st + tv, {"content": c.item(), "style": st.item(), "tv": tv.item()}

    def _adapted(self, overrides: dict[str, torch.Tensor], index: int) -> dict[str, torch.Tensor]:
        """A detached copy of the style's network after `inner_steps` of the product's
        adaptation (fresh Adam, two rates), as a full set of functional_call parameters."""
        s = self.settings
        params = {name: p.detach().clone() for name, p in self.body.named_parameters()}
        params |= {name: v.detach().clone() for name, v in overrides.items()}
        for value in params.values():
            value.requires_grad_(True)
        affine = [params[name] for name in overrides]
        body = [value for name, value in params.items() if name not in overrides]
        inner = torch.optim.Adam(
            [{"params": affine, "lr": s.inner_affine_lr}, {"params": body, "lr": s.inner_body_lr}]
        )
        for _ in range(s.inner_steps):
            loss, _ = self._loss(params, self._crops(), index)
            inner.zero_grad(set_to_none=True)
            loss.backward()
            inner.step()
        return params

    def accumulate_gradients(self) -> dict[str, float]:
        """Set the body's and predictor's .grad for one step; return the losses for the log.

        Joint: the loss of the predicted network. First-order MAML adds the gradient of the
        loss after adaptation, taken at the adapted weights and applied to the start's (the
        adapted (gamma, beta)'s gradient flows on into the predictor): a surrogate whose
        gradient is exactly that, `sum(param * grad)`, carries it through one backward pass.
        """
        index = self._next_style()
        self.body.train()
        overrides = self.style_overrides(index)
        loss, parts = self._loss(overrides, self._crops(), index)
        if self.settings.inner_steps:
            adapted = self._adapted(overrides, index)
            after, after_parts = self._loss(adapted, self._crops(), index)
            # (allow_unused: the warm-start path's parameters play no part in a cold frame)
            grads = torch.autograd.grad(after, list(adapted.values()), allow_unused=True)
            starts = dict(self.body.named_parameters()) | overrides
            for name, grad in zip(adapted, grads, strict=True):
                if grad is not None:
                    loss = loss + (starts[name] * grad).sum()
            parts["adapted_style"] = after_parts["style"]
        seen = parts.get("adapted_style", parts["style"])
        last = self.difficulty[index]
        self.difficulty[index] = seen if last is None else 0.7 * last + 0.3 * seen
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        return parts

    def train_step(self) -> dict[str, float]:
        parts = self.accumulate_gradients()
        self.optimiser.step()
        self.step += 1
        return parts

    # -- the chunked loop -----------------------------------------------------------------

    def run(
        self,
        steps: int | None = None,
        seconds: float | None = None,
        on_step: Callable[[int, dict[str, float]], None] | None = None,
    ) -> int:
        """Train until `steps` in total or `seconds` of this call; checkpoint; return the step."""
        started = time.perf_counter()
        self.history.append(
            {
                "from_step": self.step,
                "to_step": self.step,
                "body_lr": self.settings.body_lr,
                "predictor_lr": self.settings.predictor_lr,
                "device": self.runtime.describe(),
                # the crops decide what the start is good at (README, Measured): each chunk's
                "crop": self.settings.crop,
                "batch_size": self.settings.batch_size,
                "work_side": self.settings.work_side,
            }
        )
        if self.settings.anneal_to != 1.0:
            self.history[-1]["anneal_to"] = self.settings.anneal_to
        if self.settings.hard_share:
            self.history[-1]["hard_share"] = self.settings.hard_share
        if self.settings.inner_steps:
            self.history[-1]["first_order_maml"] = {
                "inner_steps": self.settings.inner_steps,
                "inner_affine_lr": self.settings.inner_affine_lr,
                "inner_body_lr": self.settings.inner_body_lr,
            }
        with _terminate_as_interrupt():
            self._loop(steps, seconds, on_step, started)
        return self.step

    def _loop(
        self,
        steps: int | None,
        seconds: float | None,
        on_step: Callable[[int, dict[str, float]], None] | None,
        started: float,
    ) -> None:
        last_save = started
        first = self.step
        window: list[dict[str, float]] = []
        try:
            while steps is None or self.step < steps:
                elapsed = time.perf_counter() - started
                if seconds is not None and elapsed >= seconds:
                    break
                progress = max(
                    (self.step - first) / max(1, steps - first) if steps is not None else 0.0,
                    elapsed / seconds if seconds else 0.0,
                )
                self._set_learning_rates(progress)
                t0 = time.perf_counter()
                losses = self.train_step()
                self.seconds += time.perf_counter() - t0
                self.history[-1]["to_step"] = self.step
                window.append(losses)
                if on_step is not None:
                    on_step(self.step, losses)
                if self.step % 50 == 0:
                    self._log(window)
                    window = []
                if time.perf_counter() - last_save >= self.settings.checkpoint_seconds:
                    self.save()
                    last_save = time.perf_counter()
        finally:
            self.save()  # also on Ctrl-C or SIGTERM: a chunk never loses finished steps

    def _set_learning_rates(self, progress: float) -> None:
        """The chunk's rates at `progress` (0..1) through its budget: constant, or cosine-annealed
        to `anneal_to` of themselves (a last chunk that settles gives a better start)."""
        floor = self.settings.anneal_to
        factor = floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        self.optimiser.param_groups[0]["lr"] = self.settings.body_lr * factor
        self.optimiser.param_groups[1]["lr"] = self.settings.predictor_lr * factor

    def _log(self, window: list[dict[str, float]]) -> None:
        means = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
        line = json.dumps({"step": self.step, "seconds": round(self.seconds, 1), **means})
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / LOG).open("a") as fh:
            fh.write(line + "\n")

    # -- checkpoints ----------------------------------------------------------------------

    def save(self) -> None:
        """Checkpoint (weights + optimiser + generators) and the exportable start, atomically."""
        self.directory.mkdir(parents=True, exist_ok=True)
        tensors = {f"body.{k}": v for k, v in self.body.state_dict().items()}
        tensors |= {f"predictor.{k}": v for k, v in self.predictor.state_dict().items()}
        opt_tensors, groups = _flatten_optimiser(self.optimiser)
        tensors |= opt_tensors
        tensors["torch_rng"] = torch.get_rng_state()
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        state = {
            "step": self.step,
            "seconds": self.seconds,
            "settings": self.settings.to_dict(),
            "corpus_manifest_sha256": self.corpus.manifest_sha256,
            "sampler_rng": self.sampler.rng.bit_generator.state,
            "order_rng": self.order_rng.bit_generator.state,
            "order": self.order,
            "difficulty": self.difficulty,
            "history": self.history,
            **groups,
        }
        atomic_write(self.directory / CHECKPOINT, lambda tmp: save_file(tensors, str(tmp)))
        text = json.dumps(state)
        atomic_write(self.directory / STATE, lambda tmp: tmp.write_text(text))
        save_meta_start(self.body, self.predictor, self.card(), self.directory / START)

    def _resume(self) -> None:
        state = json.loads((self.directory / STATE).read_text())
        if state["corpus_manifest_sha256"] != self.corpus.manifest_sha256:
            raise VidstyleError(
                "its checkpoint was trained on another corpus manifest; use a new folder",
                self.directory,
            )
        tensors = load_file(str(self.directory / CHECKPOINT))
        self.body.load_state_dict(
            {k[5:]: v for k, v in tensors.items() if k.startswith("body.")}, strict=True
        )
        self.predictor.load_state_dict(
            {k[10:]: v for k, v in tensors.items() if k.startswith("predictor.")}, strict=True
        )
        opt = {k: v for k, v in tensors.items() if k.startswith("opt.")}
        self.optimiser.load_state_dict(_unflatten_optimiser(opt, state))
        # this chunk's learning rates win over the checkpoint's (a later chunk may anneal)
        self.optimiser.param_groups[0]["lr"] = self.settings.body_lr
        self.optimiser.param_groups[1]["lr"] = self.settings.predictor_lr
        torch.set_rng_state(tensors["torch_rng"])
        self.sampler.rng.bit_generator.state = state["sampler_rng"]
        self.order_rng.bit_generator.state = state["order_rng"]
        self.order = list(state["order"])
        self.difficulty = list(state.get("difficulty", self.difficulty))
        self.step = int(state["step"])
        self.seconds = float(state["seconds"])
        self.history = list(state.get("history", []))

    def _initialise_from(self, init: Path) -> None:
        """Continue from an exported start (e.g. the shipped one, in a new session where the
        checkpoint's optimiser moments are gone): weights and step count carry over; Adam's
        moments rebuild within a few hundred steps."""
        start = load_meta_start(init)
        if start.config != self.settings.network:
            raise ModelError("this start is for another network than the preset's", init)
        self.body.load_state_dict(start.body.state_dict())
        self.predictor.load_state_dict(start.predictor.state_dict())
        training = start.card.get("training", {})
        self.step = int(training.get("steps", 0))
        self.seconds = float(training.get("seconds", 0.0))
        self.history = list(training.get("history", []))
        self.history.append({"initialised_from": str(init), "at_step": self.step})

    def card(self) -> dict:
        """How the start was made: what `vidstyle info` shows and the weights travel with."""
        return {
            "work_side": self.settings.work_side,
            "training": {
                "method": "joint multi-style training of the shared body and the style "
                "predictor (one style per step, Adam; each chunk's learning rates, and its "
                "first-order MAML inner steps if any, are in history)",
                "steps": self.step,
                "seconds": round(self.seconds, 1),
                "history": self.history,
                "device": self.runtime.describe(),
                "settings": self.settings.to_dict(),
                "corpus_manifest_sha256": self.corpus.manifest_sha256,
                **(
                    {"corpus_derived_from_sha256": self.corpus.derived_from_sha256}
                    if self.corpus.derived_from_sha256
                    else {}
                ),
                "styles_trained": len(self.styles),
                "styles_heldout": len(self.corpus.styles("heldout")),
                "content_images": len(self.corpus.content()),
                "command": "vidstyle meta train CORPUS DIRECTORY (run in chunks; see README)",
            },
        }
