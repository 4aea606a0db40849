"""Flow estimators by name, as the CLI and configs spell them."""

from __future__ import annotations

from typing import Any

from vidstyle.errors import ConfigError
from vidstyle.flow.base import FlowEstimator
from vidstyle.flow.dis import DISFlow

NAMES = ("dis", "dis-medium", "dis-fast", "dis-ultrafast", "raft", "raft-small", "raft-large")


def make_flow(name: str = "dis", **kw: Any) -> FlowEstimator:
    """ "dis" (= DIS medium) | "dis-fast" | "dis-ultrafast" | "raft" (= raft-small) | "raft-large".

    Keyword arguments go to the estimator (DISFlow: max_side; RAFTFlow: weights, device, iters,
    max_side). "raft" raises FlowError when its weights are not on disk.
    """
    if name == "dis" or name.startswith("dis-"):
        preset = name[4:] or "medium"
        if preset not in ("medium", "fast", "ultrafast"):
            raise ConfigError(f"unknown flow {name!r} (choose from {', '.join(NAMES)})")
        return DISFlow(preset=preset, **kw)
    if name in ("raft", "raft-small", "raft-large"):
        from vidstyle.flow.raft import RAFTFlow  # torchvision import only when asked for

        return RAFTFlow(model="large" if name == "raft-large" else "small", **kw)
    raise ConfigError(f"unknown flow {name!r} (choose from {', '.join(NAMES)})")
