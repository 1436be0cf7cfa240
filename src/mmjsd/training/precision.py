"""Numeric precision of the networks: bf16 autocast where the hardware runs it natively.

One switch per device type, `precision: {cuda: bf16|fp32, cpu: bf16|fp32}` in config.yaml (set
per scale), read by training, classifier training and evaluation alike. Under bf16 only the
networks' matrix products (linear, convolutions) run in bfloat16 (torch.autocast's op lists);
likelihoods, KLs, the JS term and the products of experts are computed in float32 because the
objectives cast their inputs with `.float()` (models/base.py, models/mmjsd.py, models/mmpoe.py).

On a CPU without native bf16 (no avx512_bf16 / AMX: oneDNN would emulate it, slower than fp32)
a `cpu: bf16` setting falls back to fp32 and says so once; the precision actually used is what
metrics files record.
"""

from __future__ import annotations

import contextlib
import functools
import sys

import torch

PRECISIONS = ("fp32", "bf16")


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when oneDNN runs bf16 kernels natively on this CPU (avx512_bf16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        return False


def resolve(config: dict, device: str) -> str:
    """The precision to use on `device` ("cpu" or "cuda"): the config's choice, or fp32 when the
    CPU cannot run bf16 natively."""
    wanted = config["precision"]["cuda" if device == "cuda" else "cpu"]
    if wanted == "bf16" and device != "cuda" and not cpu_has_native_bf16():
        print("note: precision.cpu is bf16 but this CPU has no native bf16 (avx512_bf16/AMX); using fp32",
              file=sys.stderr)
        return "fp32"
    return wanted


def autocast(device: str, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context for `precision` on `device` (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda" if device == "cuda" else "cpu", dtype=torch.bfloat16)
