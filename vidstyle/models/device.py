"""Choosing the device and the numeric precision the networks run at.

Where the processor has native bf16 instructions (AVX512-BF16, AMX), bf16 autocast with
channels_last runs the style network and VGG training steps much faster than fp32 (README,
Measured), so bf16 is the CPU default there; elsewhere it would be emulated (slower), so fp32.
On CUDA: bf16 where supported (no loss scaling needed), else fp16.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from vidstyle.errors import ConfigError


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags for flag in ("avx512_bf16", "amx_bf16"))


@dataclass(frozen=True)
class Runtime:
    """Where and how tensors are computed."""

    device: torch.device
    dtype: torch.dtype  # autocast dtype; float32 means no autocast

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def describe(self) -> str:
        name = torch.cuda.get_device_name(self.device) if self.is_cuda else "cpu"
        return f"{name} ({str(self.dtype).replace('torch.', '')})"


_PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_runtime(device: str = "auto", precision: str = "auto") -> Runtime:
    """Turn the user's --device/--precision into a Runtime, with a clear error if unusable."""
    if device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except RuntimeError:
            raise ConfigError(
                f"--device: unknown device {device!r} (use auto, cpu, cuda, cuda:N)"
            ) from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: CUDA is not available on this machine")
        if dev.type not in ("cpu", "cuda"):
            raise ConfigError(f"--device {device}: only cpu and cuda are supported")
    if precision == "auto":
        if dev.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            dtype = torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    elif precision in _PRECISIONS:
        dtype = _PRECISIONS[precision]
        if dev.type == "cpu" and dtype == torch.float16:
            raise ConfigError("--precision fp16 is for CUDA; use bf16 or fp32 on the CPU")
    else:
        raise ConfigError(f"--precision must be auto, fp32, bf16 or fp16, not {precision!r}")
    return Runtime(dev, dtype)
