"""The meta-learned start: a style network body shared across styles plus a style predictor.

One safetensors file (`body.*` = a StyleNet, `predictor.*` = a StylePredictor) and a JSON card
beside it that says how it was made (corpus, steps, command, held-out figures). Like adapted
models, loading it never runs code. The slim start ships inside the package
(`vidstyle/models/weights/`), so a new style needs no download and no training from scratch.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from vidstyle.errors import ModelError
from vidstyle.models.predictor import StylePredictor
from vidstyle.models.store import atomic_write, file_sha256, read_sidecar
from vidstyle.models.stylenet import StyleNet, StyleNetConfig, style_parameter_count, style_vector

FORMAT = "vidstyle-meta-start"
FORMAT_VERSION = 1
WEIGHTS_DIR = Path(__file__).parent / "weights"
SHIPPED = "meta-slim"


def shipped_path(name: str = SHIPPED) -> Path:
    return WEIGHTS_DIR / f"{name}.safetensors"


def start_path(name: str = SHIPPED) -> Path:
    """`[adapt] meta_start`: a start shipped in the package by name, or a .safetensors file a
    user trained (`vidstyle meta train`, `meta average`). An unknown name is one clear error."""
    if name.endswith(".safetensors"):
        return Path(name).expanduser()
    path = shipped_path(name)
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in WEIGHTS_DIR.glob("*.safetensors")))
        raise ModelError(
            f"no meta-learned start named {name!r} in this installation (it has: {shipped}); "
            "[adapt] meta_start takes one of those or a .safetensors file",
            path,
        )
    return path


@dataclass
class MetaStart:
    """A loaded start: build a style's network with `network_for(stats)`."""

    body: StyleNet
    predictor: StylePredictor
    card: dict
    path: Path | None = None

    @property
    def config(self) -> StyleNetConfig:
        return self.body.config

    @property
    def sha256(self) -> str:
        return self.card.get("weights_sha256", "")

    def base_vector(self) -> torch.Tensor:
        """The body's own (gamma, beta) of the cold path, in `split_style_vector` order."""
        return style_vector(self.body)

    def style_vector(self, stats: torch.Tensor) -> torch.Tensor:
        """Predicted (gamma, beta) for a style from its VGG statistics (1, 1920) -> (P,)."""
        return self.base_vector() + self.predictor(stats)[0]


def save_meta_start(
    body: StyleNet, predictor: StylePredictor, card: dict, path: Path, half: bool = False
) -> Path:
    """Write weights then card, each atomically; the card records the weights' sha256.

    `half` stores the convolution and linear weights as float16: half the bytes, for a start
    shipped in the package. Vectors (norms, biases, statistics) stay float32; loading casts back.
    """
    path = Path(path)
    state = {f"body.{k}": v for k, v in body.state_dict().items()}
    state |= {f"predictor.{k}": v for k, v in predictor.state_dict().items()}
    state = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    if half:
        for key, value in state.items():
            if value.is_floating_point() and value.ndim >= 2:
                if value.abs().max() > torch.finfo(torch.float16).max:
                    raise ModelError(f"{key} does not fit float16; store it as is", path)
                state[key] = value.half()
    # a card read from another file may say how that one was stored: this one says its own
    card = {k: v for k, v in card.items() if k != "storage"}
    if half:
        card["storage"] = "float16 matrices, float32 vectors"
    atomic_write(path, lambda tmp: save_file(state, str(tmp), metadata={"format": FORMAT}))
    full = {
        **card,  # a loaded card's own format, network and sha256 are replaced, never kept
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "network": body.config.to_dict(),
        "weights_sha256": file_sha256(path),
    }
    text = json.dumps(full, indent=2, sort_keys=True)
    atomic_write(path.with_suffix(".json"), lambda tmp: tmp.write_text(text))
    return path


def read_card(path: Path) -> dict:
    return read_sidecar(Path(path), FORMAT, FORMAT_VERSION, "meta-learned start")


def load_meta_start(path: Path | None = None) -> MetaStart:
    """Load a start (the shipped one by default); any mismatch is one clear ModelError."""
    path = Path(path) if path is not None else shipped_path()
    card = read_card(path)
    try:
        config = StyleNetConfig.from_dict(card["network"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"meta-start card has no usable network ({exc})", path) from None
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise ModelError(f"corrupt meta-start weights ({exc})", path) from None
    body = StyleNet(config)
    predictor = StylePredictor(style_parameter_count(body))
    try:
        body.load_state_dict(_prefixed(state, "body."), strict=True)
        predictor.load_state_dict(_prefixed(state, "predictor."), strict=True)
    except RuntimeError:
        raise ModelError(
            "meta-start weights don't match the network its card describes", path
        ) from None
    return MetaStart(body.eval(), predictor.eval(), card, path)


def _prefixed(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


@functools.lru_cache(maxsize=4)
def load_start(name: str = SHIPPED) -> MetaStart:
    """A start by `start_path`'s name or file, loaded once per process (callers copy the body
    before training)."""
    return load_meta_start(start_path(name))


def corpus_lineage(start: MetaStart) -> str | None:
    """The corpus a start learnt from: a pack (`vidstyle meta pack`, the same images at the work
    size for a GPU machine) counts as the corpus it was made from."""
    training = start.card.get("training", {})
    return training.get("corpus_derived_from_sha256") or training.get("corpus_manifest_sha256")


def average_starts(paths: list[Path]) -> MetaStart:
    """The uniform weight average of starts from one training lineage (a "model soup",
    Wortsman et al. 2022).

    Branches continued from one shared checkpoint (different samplers, MAML chunks) sit in
    one basin; their average adapted better than each branch on most held-out styles
    (README, Measured). Averaging unrelated runs would not work: the starts must share
    the network and the corpus, and the card keeps where each came from.
    """
    if len(paths) < 2:
        raise ModelError("averaging needs at least two starts", Path(paths[0]) if paths else None)
    starts = [load_meta_start(Path(p)) for p in paths]
    first = starts[0]
    corpus = corpus_lineage(first)
    for start in starts[1:]:
        if start.config != first.config:
            raise ModelError("this start is for another network than the first one", start.path)
        if corpus_lineage(start) != corpus:
            raise ModelError(
                "this start was trained on another corpus than the first one", start.path
            )
    body, predictor = StyleNet(first.config), StylePredictor(style_parameter_count(first.body))
    for module, part in ((body, "body"), (predictor, "predictor")):
        states = [getattr(s, part).state_dict() for s in starts]
        module.load_state_dict(
            {
                key: torch.stack([s[key].float() for s in states]).mean(0).to(value.dtype)
                if value.is_floating_point()
                else value  # BN batch counters: not averaged, and recalibrated after adapting
                for key, value in states[0].items()
            }
        )
    trainings = [s.card.get("training", {}) for s in starts]
    histories = [list(t.get("history", [])) for t in trainings]
    shared = 0  # the chunks every ingredient went through: said once, not once per ingredient
    while all(len(h) > shared and h[shared] == histories[0][shared] for h in histories):
        shared += 1
    card = {k: v for k, v in first.card.items() if k not in ("heldout", "weights_sha256")}
    devices = [chunk["device"] for h in histories for chunk in h if "device" in chunk]
    card["training"] = {
        **{k: v for k, v in trainings[0].items() if k not in ("history", "note")},
        # every device any ingredient trained on (a CPU trunk may have a GPU branch)
        "device": "; ".join(dict.fromkeys(devices)) or trainings[0].get("device", ""),
        "history": histories[0][:shared],
        "method": f"uniform weight average of {len(starts)} meta-learned starts from one "
        "training lineage (model soup): history is what they share, averaged_from how each went on",
        "steps": max(int(t.get("steps", 0)) for t in trainings),
        "seconds": max(float(t.get("seconds", 0.0)) for t in trainings),
        "command": "vidstyle meta average OUT "
        + " ".join(str(p) for p in paths)
        + " (each made with vidstyle meta train: README)",
        "averaged_from": [
            {
                "file": str(p),
                "weights_sha256": s.sha256,
                "steps": t.get("steps"),
                "seconds": t.get("seconds"),
                "command": t.get("command"),
                "history_after_shared": h[shared:],
            }
            for p, s, t, h in zip(paths, starts, trainings, histories, strict=True)
        ],
    }
    return MetaStart(body.eval(), predictor.eval(), card)
