"""Settings: defaults <- preset (configs/<name>.toml) <- --config FILE <- command-line options.

Every knob lives in one of four tables, mirrored by the TOML files:
[network] the style network's architecture, [adapt] how it is trained for a style, [render] how
frames are processed, [encode] how the result is written.

The dataclasses below are the one place a default lives: each field's default is the `balanced`
(default) preset's value, with a comment saying what it does. A preset file holds only what
differs from them (configs/balanced.toml holds nothing but its description), so reading a
preset shows at once how it differs, and `Settings()` is what `load_settings()` returns.

Files are read strictly: an unknown table or key, or a value of the wrong type, is one
ConfigError naming the file, the table, the key and what was expected (`[render] max_side must
be an integer, not "big"`); nothing is coerced except an integer given for a number (`1` for
`1.0`).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vidstyle.errors import ConfigError

TemporalMode = Literal["warm", "carry", "loss-only", "off"]
TEMPORAL_MODES: tuple[str, ...] = ("warm", "carry", "loss-only", "off")
WORKING_SPACE_MODES: tuple[str, ...] = ("auto", "off")
META_SCHEDULES: tuple[str, ...] = ("constant", "cosine")
#: Modes where frame t waits for stylized frame t-1 (a chain that restarts at scene cuts).
RECURRENT_MODES: tuple[str, ...] = ("warm", "carry")


def training_mode(temporal: str) -> str:
    """How the network is adapted for a temporal mode: `carry` paints every frame with the
    per-frame (`off`) network and does the holding still itself, after it, so the two share one
    adapted model."""
    return "off" if temporal == "carry" else temporal


DEFAULT_PRESET = "balanced"
ADAPT_STARTS: tuple[str, ...] = ("meta", "random")


def uses_meta_start(settings: Settings) -> bool:
    """The meta start paints single frames; the warm network's extra inputs and gate are not
    part of it, so `--temporal warm` always trains from scratch."""
    return settings.adapt.start == "meta" and training_mode(settings.render.temporal) != "warm"


def adaptation_steps(settings: Settings, on_cpu: bool) -> int:
    """How many steps this device trains for, given where training starts."""
    a = settings.adapt
    if not uses_meta_start(settings):
        return a.random_steps
    return a.cpu_steps if on_cpu and a.cpu_steps >= 0 else a.steps


#: Model files written before these network options existed were built this way.
_CARD_CARRY_MAX = 0.85
_CARD_ANTIALIAS = False


@dataclass(frozen=True)
class NetworkSettings:
    """The style network's architecture: the speed/quality knob presets choose. It is also the
    network's own config (vidstyle.models.stylenet builds from it; model cards record it), so a
    network is described in one place. Frozen: a built network keeps it."""

    channels: tuple[int, int, int] = (16, 32, 64)  # the network the shipped meta start is for
    residual_blocks: int = 3
    outer_kernel: int = 5
    carry_max: float = 0.85  # the gate's ceiling: at least 15% is repainted every frame
    antialias: bool = True  # shift-equivariant network: blurred stride-2, bilinear upsampling

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkSettings:
        """The network a model card describes (cards predating an option get its old value)."""
        return cls(
            channels=tuple(int(c) for c in data["channels"]),
            residual_blocks=int(data["residual_blocks"]),
            outer_kernel=int(data["outer_kernel"]),
            carry_max=float(data.get("carry_max", _CARD_CARRY_MAX)),
            antialias=bool(data.get("antialias", _CARD_ANTIALIAS)),
        )


@dataclass
class AdaptSettings:
    # Where training starts: "meta" = the shipped meta-learned start (body shared across styles,
    # the style's normalisation parameters predicted from the image), "random" = from scratch.
    start: str = "meta"
    # which meta-learned start: one shipped in the package by name ("meta-slim", for the slim
    # network), or a .safetensors file made with `vidstyle meta train` / `meta average` (a
    # studio's own style library); its network must be this preset's
    meta_start: str = "meta-slim"
    steps: int = 300  # steps from the meta start (on CUDA, or any device without cpu_steps)
    # ... on a CPU (-1 = same as steps; 0 = the predicted network as is), sized for adaptation
    # within a minute on 2 cores (README, Measured)
    cpu_steps: int = 40
    random_steps: int = 1000  # steps from a random start (start = "random", or --temporal warm)
    meta_affine_lr: float = 6e-2  # from the meta start: the style's (gamma, beta) learn fast
    meta_body_lr: float = 1e-3  # ... the shared body at the meta-training rate
    # ... both rates "cosine": decayed to a tenth over the adaptation's steps (a constant rate
    # oscillates after ~20 steps), or "constant" (better for runs of ~20 steps or fewer)
    meta_schedule: str = "cosine"
    batch_size: int = 2
    crop: int = 128  # training crop side, in work-resolution pixels
    learning_rate: float = 2e-3
    content_weight: float = 1.25  # the slim network: keeps faces and shapes readable
    style_weight: float = 10.0  # relative: style loss is normalised by the style's own Gram energy
    tv_weight: float = 1e-3
    # sliced Wasserstein distance of the output's Lab colours to the style image's (the colour
    # figure of `vidstyle eval`): asks for the style's palette, which Gram losses can miss. 0.05: on
    # 28 held-out styles after 40 steps, median colour 4.41 -> 3.11 and style loss 0.903 -> 0.924x
    # random-400's with the shipped start (README, Measured)
    colour_weight: float = 0.05
    temporal_weight: float = 100.0
    sequence_length: int = 3  # frames per training chain: the network learns from its own outputs
    burn_in: int = 4  # chain frames run before the trained ones (exposes carried-over drift)
    sample_runs: int = 32  # short runs of consecutive frames sampled across the video
    style_scale: float = 1.0  # style image long side relative to the work long side (stroke size)
    seed: int = 0


@dataclass
class RenderSettings:
    max_side: int = 512  # long side the network works at (0 = source size)
    # long side of the output (0 = the source's size): the stylized frames are scaled to it
    output_max_side: int = 0
    temporal: str = "carry"
    flow: str = "dis"
    flow_max_side: int = 640  # optical flow is computed at most this size and scaled up
    scene_cut: bool = True
    strength: float = 1.0  # 0 = the original frame, 1 = fully stylized
    preserve_color: bool = False  # keep the source's colours, take luminance from the style
    tile: int = 0  # process in overlapping tiles of this size (0 = whole frames)
    tile_overlap: int = 64
    batch_size: int = 8  # frames per network call in frame-parallel modes
    lanes: int = 0  # warm chains side by side on segments of the video (0 = auto: 1)
    lane_overlap: int = 8  # warm-up frames of a lane's segment, cross-faded with the one before
    carry: float = 0.94  # --temporal carry: share of the warped previous frame kept where reliable
    carry_detail: float = 0.85  # ... of its finest band (1 px): renewed faster, stays crisp
    carry_tone_sigma: float = 32.0  # window (px) whose mean tone follows the fresh paint (0 = off)
    carry_sigma: float = 8.0  # window (px) of the contrast restoration after the carry blend
    device: str = "auto"
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    # HDR (PQ/HLG) and scene-linear sources: "auto" converts them to the display-referred
    # working space the network was trained on (highlights rolled off, invertibly) and back;
    # "off" feeds their code values as they are
    working_space: str = "auto"


@dataclass
class EncodeSettings:
    # "auto": follows the output container and the source (8-bit: libx264; deeper: x265 in
    # .mp4/.mkv, ProRes in .mov; alpha: ProRes 4444 in .mov, FFV1 in .mkv, VP9 in .webm)
    codec: str = "auto"
    crf: int = 18
    preset: str = "medium"
    pix_fmt: str = ""  # empty: the codec's format closest to the source's (depth, chroma, alpha)
    audio: bool = True


@dataclass
class Settings:
    network: NetworkSettings = field(default_factory=NetworkSettings)
    adapt: AdaptSettings = field(default_factory=AdaptSettings)
    render: RenderSettings = field(default_factory=RenderSettings)
    encode: EncodeSettings = field(default_factory=EncodeSettings)
    preset: str = DEFAULT_PRESET

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> Settings:
        r = self.render
        if r.temporal not in TEMPORAL_MODES:
            raise ConfigError(
                f"--temporal must be one of {', '.join(TEMPORAL_MODES)}, not {r.temporal!r}"
            )
        if not 0.0 <= r.strength <= 1.0:
            raise ConfigError(f"--strength must be between 0 and 1, not {r.strength}")
        if r.output_max_side < 0 or (0 < r.output_max_side < 16):
            raise ConfigError(
                f"--max-side must be 0 (source size) or at least 16, not {r.output_max_side}"
            )
        if r.max_side < 0 or (0 < r.max_side < 16):
            raise ConfigError(
                f"--work-side must be 0 (source size) or at least 16, not {r.max_side}"
            )
        if r.output_max_side and not 0 < r.max_side <= r.output_max_side:
            r.max_side = r.output_max_side  # never paint larger than the output
        if not (0.0 <= r.carry < 1.0 and 0.0 <= r.carry_detail < 1.0):
            raise ConfigError(
                f"render.carry and carry_detail must be in [0, 1), not {r.carry}, {r.carry_detail}"
            )
        if r.carry_sigma < 0 or r.carry_tone_sigma < 0:
            raise ConfigError(
                f"render.carry_sigma and carry_tone_sigma must be >= 0, not {r.carry_sigma}, "
                f"{r.carry_tone_sigma}"
            )
        if r.working_space not in WORKING_SPACE_MODES:
            raise ConfigError(
                f"--working-space must be one of {', '.join(WORKING_SPACE_MODES)}, "
                f"not {r.working_space!r}"
            )
        if r.lanes < 0 or r.lane_overlap < 0:
            raise ConfigError(f"--lanes ({r.lanes}) and lane_overlap must be 0 or more")
        if r.tile and r.tile <= 2 * r.tile_overlap:
            raise ConfigError(
                f"--tile ({r.tile}) must be larger than twice the tile overlap ({r.tile_overlap})"
            )
        a = self.adapt
        if a.start not in ADAPT_STARTS:
            raise ConfigError(
                f"adapt.start must be one of {', '.join(ADAPT_STARTS)}, not {a.start!r}"
            )
        if a.meta_schedule not in META_SCHEDULES:
            raise ConfigError(
                f"adapt.meta_schedule must be one of {', '.join(META_SCHEDULES)}, "
                f"not {a.meta_schedule!r}"
            )
        if a.steps < 0 or a.cpu_steps < -1 or a.random_steps < 1:
            raise ConfigError(
                "adapt: steps must be >= 0 (0: the predicted network as is), random_steps >= 1"
            )
        if a.batch_size < 1 or a.crop < 32 or a.sequence_length < 1:
            raise ConfigError("adapt: batch_size must be >= 1, crop >= 32, sequence_length >= 1")
        if not 0 <= self.encode.crf <= 63:
            raise ConfigError(f"--crf must be between 0 and 63, not {self.encode.crf}")
        return self


def configs_dir() -> Path:
    """Presets ship inside the wheel (vidstyle/configs); in a source checkout they are ./configs."""
    packaged = Path(__file__).parent / "configs"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "configs"


def available_presets() -> list[str]:
    return sorted(p.stem for p in configs_dir().glob("*.toml"))


SECTIONS: tuple[str, ...] = ("network", "adapt", "render", "encode")
_TABLES = "[network], [adapt], [render] or [encode]"


@functools.cache
def _field_types(section_type: type) -> dict[str, Any]:
    return typing.get_type_hints(section_type)


_KINDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
_PLURALS = {int: "integers", float: "numbers", bool: "booleans", str: "strings"}


def _expected(kind: Any) -> str:
    if typing.get_origin(kind) is tuple:
        items = typing.get_args(kind)
        return f"a list of {len(items)} {_PLURALS[items[0]]}"
    return _KINDS[kind]


def _shown(value: Any) -> str:
    """A value as the TOML file spells it: "big", true, 1.5, [16, 32]."""
    if isinstance(value, dict):
        return "a table"
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _typed(value: Any, kind: Any) -> Any:
    """`value` as a `kind` setting holds it; TypeError if it isn't one (an int is a float)."""
    if typing.get_origin(kind) is tuple:
        items = typing.get_args(kind)
        if not isinstance(value, (list, tuple)) or len(value) != len(items):
            raise TypeError
        return tuple(_typed(v, k) for v, k in zip(value, items, strict=True))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not kind:  # bool is an int subclass: `true` is no integer
        raise TypeError
    return value


def _merge_table(
    settings: Settings, section: str, table: dict[str, Any], source: str | Path | None
) -> None:
    """Set `table`'s keys in `settings.<section>`, each checked against its field's type."""
    current = getattr(settings, section)
    kinds = _field_types(type(current))
    changes = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in kinds:
            close = difflib.get_close_matches(name, kinds, n=1)
            known = f"did you mean {close[0]}?" if close else f"known: {', '.join(kinds)}"
            raise _error(f"[{section}] {key} is not a setting ({known})", source)
        try:
            changes[name] = _typed(value, kinds[name])
        except TypeError:
            raise _error(
                f"[{section}] {key} must be {_expected(kinds[name])}, not {_shown(value)}", source
            ) from None
    setattr(settings, section, dataclasses.replace(current, **changes))


def _error(message: str, source: str | Path | None) -> ConfigError:
    """A file (preset, --config) is the error's path; other sources are named in the line."""
    if isinstance(source, Path):
        return ConfigError(message, source)
    return ConfigError(f"{source}: {message}" if source else message)


def apply_table(settings: Settings, data: dict[str, Any], source: str | Path) -> None:
    """Apply a whole file (or `Settings.to_dict()` output): its tables, and a description."""
    for section, table in data.items():
        if section == "description":
            if not isinstance(table, str):
                raise _error(f"description must be a string, not {_shown(table)}", source)
        elif section not in SECTIONS:
            if isinstance(table, dict):
                raise _error(f"unknown table [{section}] (expected {_TABLES})", source)
            raise _error(f"{section} is outside a table (settings go in {_TABLES})", source)
        elif not isinstance(table, dict):
            raise _error(f"[{section}] must be a table, not {_shown(table)}", source)
        else:
            _merge_table(settings, section, table, source)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("config file not found", path) from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"not a valid TOML config ({exc})", path) from None


def load_settings(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> Settings:
    """Resolve settings in order: defaults, preset, config file, then explicit overrides
    (options the user gave; None values are options not given)."""
    settings = Settings()
    name = preset or DEFAULT_PRESET
    preset_path = configs_dir() / f"{name}.toml"
    if not preset_path.is_file():
        choices = ", ".join(available_presets()) or "none found"
        raise ConfigError(f"unknown preset {name!r} (available: {choices})")
    apply_table(settings, _read_toml(preset_path), preset_path)
    settings.preset = name
    if config_file is not None:
        apply_table(settings, _read_toml(Path(config_file)), Path(config_file))
    for section, table in (overrides or {}).items():
        if section not in SECTIONS:
            raise ConfigError(f"options: unknown table [{section}]")
        given = {k: v for k, v in table.items() if v is not None}
        _merge_table(settings, section, given, "options")
    return settings.validate()


def settings_from_dict(data: dict[str, Any], source: str = "settings") -> Settings:
    """Rebuild Settings from `Settings.to_dict()` output (job files, model cards)."""
    settings = Settings()
    apply_table(settings, {k: v for k, v in data.items() if k != "preset"}, source)
    settings.preset = str(data.get("preset", DEFAULT_PRESET))
    return settings.validate()
