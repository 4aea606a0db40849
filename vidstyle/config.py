"""Settings: defaults <- preset (configs/<name>.toml) <- --config FILE <- command-line options.

Every knob lives in one of four tables, mirrored by the TOML files:
[network] the style network's size, [adapt] how it is trained for a style, [render] how frames are
processed, [encode] how the result is written.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import tomllib

from vidstyle.errors import ConfigError

TemporalMode = Literal["warm", "carry", "loss-only", "off"]
TEMPORAL_MODES: tuple[str, ...] = ("warm", "carry", "loss-only", "off")
WORKING_SPACE_MODES: tuple[str, ...] = ("auto", "off")
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


@dataclass
class NetworkSettings:
    channels: tuple[int, int, int] = (32, 64, 128)
    residual_blocks: int = 5
    outer_kernel: int = 9
    carry_max: float = 0.85  # most of the warped previous frame a pixel may keep
    antialias: bool = True  # shift-equivariant network: blurred stride-2, bilinear upsampling


@dataclass
class AdaptSettings:
    # Where training starts: "meta" = the shipped meta-learned start (body shared across styles,
    # the style's normalisation parameters predicted from the image), "random" = from scratch.
    start: str = "meta"
    steps: int = 200  # steps from the meta start (on CUDA, or any device without cpu_steps)
    cpu_steps: int = -1  # ... on a CPU (-1 = same as steps); 0 = the predicted network as is
    random_steps: int = 600  # steps from a random start (start = "random", or --temporal warm)
    meta_affine_lr: float = 3e-2  # from the meta start: the style's (gamma, beta) learn fast
    meta_body_lr: float = 1e-3  # ... the shared body at the meta-training rate
    batch_size: int = 4
    crop: int = 256  # training crop side, in work-resolution pixels
    learning_rate: float = 2e-3
    content_weight: float = 1.0
    style_weight: float = 10.0  # relative: style loss is normalised by the style's own Gram energy
    tv_weight: float = 1e-3
    temporal_weight: float = 100.0
    sequence_length: int = 3  # frames per training chain: the network learns from its own outputs
    burn_in: int = 4  # chain frames run before the trained ones (exposes carried-over drift)
    sample_runs: int = 32  # short runs of consecutive frames sampled across the video
    style_scale: float = 1.0  # style image long side relative to the work long side (stroke size)
    seed: int = 0


@dataclass
class RenderSettings:
    max_side: int = 1280  # long side the network works at (0 = source size)
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
    lanes: int = 0  # warm chains side by side on segments of the video (0 = auto: 4 on a GPU)
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


def _merge_table(target: Any, table: dict[str, Any], where: str) -> None:
    known = {f.name: f for f in fields(target)}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in known:
            raise ConfigError(f"unknown setting [{where}] {key}")
        current = getattr(target, name)
        try:
            if isinstance(current, tuple):
                value = tuple(type(current[0])(v) for v in value)
            elif isinstance(current, bool):
                if not isinstance(value, bool):
                    raise TypeError
            elif isinstance(current, (int, float, str)):
                value = type(current)(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"[{where}] {key}: expected {type(current).__name__}, got {value!r}"
            ) from None
        setattr(target, name, value)


def apply_table(settings: Settings, data: dict[str, Any], source: str) -> None:
    for section, table in data.items():
        if section == "description":
            continue
        if section not in ("network", "adapt", "render", "encode") or not isinstance(table, dict):
            raise ConfigError(f"{source}: unknown section [{section}]")
        _merge_table(getattr(settings, section), table, section)


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
    """Resolve settings in order: defaults, preset, config file, then explicit overrides."""
    settings = Settings()
    name = preset or DEFAULT_PRESET
    preset_path = configs_dir() / f"{name}.toml"
    if not preset_path.is_file():
        choices = ", ".join(available_presets()) or "none found"
        raise ConfigError(f"unknown preset {name!r} (available: {choices})")
    apply_table(settings, _read_toml(preset_path), f"preset {name}")
    settings.preset = name
    if config_file is not None:
        apply_table(settings, _read_toml(Path(config_file)), str(config_file))
    for section, table in (overrides or {}).items():
        _merge_table(
            getattr(settings, section), {k: v for k, v in table.items() if v is not None}, section
        )
    return settings.validate()


def settings_from_dict(data: dict[str, Any]) -> Settings:
    """Rebuild Settings from `Settings.to_dict()` output (job files, model cards)."""
    settings = Settings()
    apply_table(settings, {k: v for k, v in data.items() if k != "preset"}, "settings")
    settings.preset = str(data.get("preset", DEFAULT_PRESET))
    return settings.validate()
