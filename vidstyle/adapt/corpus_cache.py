"""The meta-training corpus, prepared once: style targets and content images at work size, cached.

Every meta-training chunk needs each training style's Gram targets and VGG statistics, and every
content image decoded and resized: for a few hundred styles on a 2-core CPU that took 5-9
minutes of each chunk before its first step. They depend only on the corpus (its manifest hash),
the work size and the loss network, so they are computed once and kept in the cache directory
(`$VIDSTYLE_CACHE/corpus/<key>.safetensors`, written atomically like the model cache), where
later chunks, other run folders and other presets of the same size load them in seconds.
A cache file that is unreadable or made for something else is rebuilt, never trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from vidstyle.adapt.adapt import style_tensor
from vidstyle.adapt.cache import cache_dir
from vidstyle.adapt.corpus import Corpus
from vidstyle.adapt.data import images_at_side
from vidstyle.adapt.trainer import TRAIN_STYLE_LAYERS, StyleTargets
from vidstyle.models.predictor import STAT_LAYERS, style_statistics
from vidstyle.models.store import atomic_write
from vidstyle.models.vgg import VGG19Features, weights_path

FORMAT = "vidstyle-prepared-corpus/1"


@dataclass
class StyleBank:
    """Precomputed per-style targets: Gram matrices, their normaliser, and VGG statistics."""

    targets: list[StyleTargets]
    stats: torch.Tensor  # (S, 1920)
    names: list[str] = field(default_factory=list)


@dataclass
class PreparedCorpus:
    bank: StyleBank
    content: list[np.ndarray]  # RGB uint8 (H, W, 3), long side = work side
    loaded_from_cache: bool = False


def build_style_bank(
    paths: list[Path], vgg: VGG19Features, side: int, device: torch.device
) -> StyleBank:
    targets, stats = [], []
    for path in paths:
        with torch.no_grad():
            feats = vgg(style_tensor(path, side).to(device))
        targets.append(StyleTargets.from_features(feats))  # one VGG pass serves both
        stats.append(style_statistics(feats))
    return StyleBank(targets, torch.cat(stats), [p.name for p in paths])


def cache_key(corpus: Corpus, side: int) -> str:
    """Everything the prepared tensors depend on: the manifest, the size, the loss network."""
    vgg = weights_path()
    blob = json.dumps(
        {
            "format": FORMAT,
            "corpus_manifest_sha256": corpus.manifest_sha256,
            "work_side": side,
            "style_layers": TRAIN_STYLE_LAYERS,
            "stat_layers": STAT_LAYERS,
            "vgg": [vgg.name, vgg.stat().st_size],
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def prepare_corpus(
    corpus: Corpus,
    vgg: VGG19Features,
    side: int,
    device: torch.device,
    directory: Path | None = None,
) -> PreparedCorpus:
    """The training styles' bank and the content images, from the cache when it has them."""
    styles = [item.path for item in corpus.styles("train")]
    contents = [item.path for item in corpus.content()]
    path = (directory or cache_dir()) / "corpus" / f"{cache_key(corpus, side)}.safetensors"
    cached = _load(path, [p.name for p in styles], len(contents), device)
    if cached is not None:
        return cached
    prepared = PreparedCorpus(
        build_style_bank(styles, vgg, side, device), images_at_side(contents, side)
    )
    _save(prepared, path)
    return prepared


def _save(prepared: PreparedCorpus, path: Path) -> None:
    bank = prepared.bank
    tensors = {
        f"gram.{layer}": torch.stack([t.grams[layer] for t in bank.targets]).cpu().contiguous()
        for layer in TRAIN_STYLE_LAYERS
    }
    tensors["stats"] = bank.stats.cpu().contiguous()
    for i, image in enumerate(prepared.content):
        tensors[f"content.{i}"] = torch.from_numpy(np.ascontiguousarray(image))
    metadata = {"format": FORMAT, "styles": json.dumps(bank.names)}
    # a read-only or full cache only costs the next chunk the preparation again
    with contextlib.suppress(OSError):
        atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def _load(
    path: Path, names: list[str], contents: int, device: torch.device
) -> PreparedCorpus | None:
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
        if metadata.get("format") != FORMAT or json.loads(metadata.get("styles", "0")) != names:
            return None
        tensors = load_file(str(path))
        grams = {layer: tensors[f"gram.{layer}"].to(device) for layer in TRAIN_STYLE_LAYERS}
        stats = tensors["stats"].to(device)
        content = [tensors[f"content.{i}"].numpy() for i in range(contents)]
    except (SafetensorError, OSError, KeyError, ValueError):
        return None
    if stats.shape[0] != len(names) or any(g.shape[0] != len(names) for g in grams.values()):
        return None
    targets = [
        StyleTargets.from_grams({layer: grams[layer][i] for layer in TRAIN_STYLE_LAYERS})
        for i in range(len(names))
    ]
    return PreparedCorpus(StyleBank(targets, stats, names), content, loaded_from_cache=True)
