"""`vidstyle meta`: train the meta-learned start (the shipped weights come from this)."""

from __future__ import annotations

from pathlib import Path

import typer

from vidstyle.cli.common import PRESET_HELP, QUIET_HELP
from vidstyle.cli.common import user_errors as _user_errors
from vidstyle.errors import ConfigError

meta_app = typer.Typer(
    help="Meta-learned start: train the shared body and style predictor over a style corpus.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
user_errors = _user_errors("the last checkpoint is kept; run the same command to continue")


@meta_app.command("train")
@user_errors
def train_command(
    corpus: Path = typer.Argument(..., help="Corpus folder with manifest.json."),
    directory: Path = typer.Argument(..., help="Run folder: checkpoints, log, start.safetensors."),
    minutes: float = typer.Option(None, "--minutes", help="Stop (and checkpoint) after this long."),
    steps: int = typer.Option(None, "--steps", help="Stop at this many steps in total."),
    preset: str = typer.Option("draft", "--preset", "-p", help=PRESET_HELP),
    config: Path = typer.Option(
        None,
        "--config",
        "-c",
        help="TOML settings file on top of the preset: its [adapt] crop and batch_size set the "
        "training crops (each chunk's are recorded in the start's history).",
    ),
    body_lr: float = typer.Option(1e-3, "--body-lr", help="Adam learning rate of the body."),
    predictor_lr: float = typer.Option(1e-4, "--predictor-lr", help="... of the predictor."),
    init: Path = typer.Option(
        None,
        "--init",
        help="Start a new run folder from an exported start (e.g. the shipped one) and go on "
        "from its step count.",
    ),
    inner_steps: int = typer.Option(
        0,
        "--inner-steps",
        min=0,
        help="First-order MAML: also adapt each step's style this many steps (the preset's "
        "adaptation rates) and train for the loss after them; 0 = joint training only.",
    ),
    anneal_to: float = typer.Option(
        1.0,
        "--anneal-to",
        min=0.0,
        max=1.0,
        help="Decay both learning rates along a cosine over this chunk's --steps/--minutes to "
        "this fraction of themselves (e.g. 0.1 for a last chunk); 1 = constant.",
    ),
    hard_share: float = typer.Option(
        0.0,
        "--hard-share",
        min=0.0,
        max=1.0,
        help="This share of steps picks its style by difficulty (running style loss, squared) "
        "instead of from the shuffled epoch: trains for the styles that adapt worst.",
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """Train (or continue training) a meta-learned start. Resumable: run it again to go on."""
    from tqdm import tqdm

    from vidstyle.adapt.adapt import network_config
    from vidstyle.adapt.corpus import load_corpus
    from vidstyle.adapt.meta_train import MetaSettings, MetaTrainer
    from vidstyle.config import load_settings
    from vidstyle.models.device import resolve_runtime

    if minutes is None and steps is None:
        raise ConfigError("vidstyle meta train needs --minutes or --steps (or both)")
    settings = load_settings(preset, config)
    a = settings.adapt
    meta = MetaSettings(
        network=network_config(settings),
        work_side=settings.render.max_side,
        crop=a.crop,
        batch_size=a.batch_size,
        content_weight=a.content_weight,
        style_weight=a.style_weight,
        tv_weight=a.tv_weight,
        body_lr=body_lr,
        predictor_lr=predictor_lr,
        inner_steps=inner_steps,
        inner_affine_lr=a.meta_affine_lr,
        inner_body_lr=a.meta_body_lr,
        anneal_to=anneal_to,
        hard_share=hard_share,
    )
    trainer = MetaTrainer(load_corpus(corpus), meta, resolve_runtime(device), directory, init)
    first = trainer.step
    bar = tqdm(total=steps, initial=first, desc="meta-training", unit="step", disable=quiet)

    def on_step(step: int, losses: dict[str, float]) -> None:
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)

    try:
        last = trainer.run(steps, None if minutes is None else minutes * 60, on_step)
    finally:
        bar.close()
    typer.echo(
        f"meta-training: steps {first} -> {last} ({trainer.seconds / 60:.1f} min in all); "
        f"start written to {directory / 'start.safetensors'}"
    )


@meta_app.command("average")
@user_errors
def average_command(
    output: Path = typer.Argument(..., help="The averaged start to write (.safetensors)."),
    starts: list[Path] = typer.Argument(
        ..., help="Two or more starts (start.safetensors files) of one training lineage."
    ),
) -> None:
    """Average starts branched from one checkpoint into one ("model soup"); the card lists them.

    Use it on the ends of runs continued from the same start (e.g. with and without
    --hard-share or --inner-steps); runs trained apart from scratch do not average.
    """
    from vidstyle.models.meta_start import average_starts, save_meta_start

    soup = average_starts(starts)
    save_meta_start(soup.body, soup.predictor, soup.card, output)
    steps = soup.card["training"]["steps"]
    typer.echo(f"averaged {len(starts)} starts (up to step {steps}) into {output}")


@meta_app.command("grow")
@user_errors
def grow_command(
    output: Path = typer.Argument(..., help="The grown start to write (.safetensors)."),
    start: str = typer.Argument(
        "meta-slim", help="A start shipped in the package by name, or a .safetensors file."
    ),
    preset: str = typer.Option("best", "--preset", "-p", help=PRESET_HELP),
    config: Path = typer.Option(None, "--config", "-c", help="TOML settings file on top."),
    seed: int = typer.Option(0, "--seed", help="Which channels the new ones copy, and shares."),
) -> None:
    """Grow a start into the preset's bigger network, computing exactly what it computed.

    Net2Net: copied channels, identity residual blocks, zero-padded outer kernels. Then go on
    training at the new size with `vidstyle meta train CORPUS RUN -p PRESET --init OUTPUT`
    instead of from random (the full-width start from the slim one: README).
    """
    from vidstyle.adapt.adapt import network_config
    from vidstyle.config import load_settings
    from vidstyle.models.grow import grow_start
    from vidstyle.models.meta_start import load_start, save_meta_start

    source = load_start(start)
    grown = grow_start(source, network_config(load_settings(preset, config)), seed=seed)
    save_meta_start(grown.body, grown.predictor, grown.card, output)
    old, new = source.config, grown.config
    typer.echo(
        f"grew {source.path} ({list(old.channels)}, {old.residual_blocks} blocks) into {output} "
        f"({list(new.channels)}, {new.residual_blocks} blocks)"
    )


@meta_app.command("compact")
@user_errors
def compact_command(
    start: Path = typer.Argument(..., help="A start (.safetensors) to ship."),
    output: Path = typer.Argument(..., help="The compact copy to write (.safetensors)."),
) -> None:
    """Store a start's weight matrices as float16: half the bytes, to ship it in the package.

    Score the compact file itself (bench/meta_starts.py): it is what users adapt from.
    """
    from vidstyle.models.meta_start import load_meta_start, save_meta_start

    loaded = load_meta_start(start)
    save_meta_start(loaded.body, loaded.predictor, loaded.card, output, half=True)
    before, after = start.stat().st_size, output.stat().st_size
    typer.echo(f"wrote {output}: {after / 1e6:.1f} MB (from {before / 1e6:.1f} MB)")


@meta_app.command("pack")
@user_errors
def pack_command(
    corpus: Path = typer.Argument(..., help="Corpus folder with manifest.json."),
    output: Path = typer.Argument(..., help="New folder for the pack."),
    side: int = typer.Option(384, "--side", min=32, help="Work size's long side (the preset's)."),
    quality: int = typer.Option(95, "--quality", min=50, max=100, help="JPEG quality."),
) -> None:
    """Pack a corpus at the work size to carry it to a GPU machine (about half the bytes).

    Images larger than the work size are stored as training resizes them; the pack is a
    corpus of its own (its manifest says what it was derived from): `vidstyle meta train PACK
    RUN` trains on it as on the original, up to the JPEG re-encoding.
    """
    from vidstyle.adapt.corpus_pack import pack_corpus

    manifest = pack_corpus(corpus, output, side, quality)
    total = sum(p.stat().st_size for p in output.rglob("*") if p.is_file())
    typer.echo(f"packed {corpus} into {output} ({total / 1e6:.1f} MB; {manifest.name} lists it)")
