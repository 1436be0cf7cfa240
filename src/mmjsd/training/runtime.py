"""How a step runs its networks: the device and CPU threads it uses, and the batches it cuts.

`mmjsd train`, `train-classifier` and `evaluate` start with `place(args, config)`: claim a GPU
share before anything touches CUDA (mmjsd.training.gpu narrows CUDA_VISIBLE_DEVICES to the claimed
device), else the CPU, and set torch's CPU threads (`--threads`, else Snakemake's
$SNAKEMAKE_THREADS, else config `train.threads`). They then walk their rows in batches of
consecutive index ranges (`batches`, `nth_batch`) and move each batch to the device of the
network (`module_device`).
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from mmjsd.training.gpu import GpuClaim, select_device


@dataclass
class Placement:
    device: str                  # "cpu" or "cuda"
    claim: GpuClaim | None       # the GPU share held (its lock is released when the process ends)
    threads: int                 # torch CPU threads

    def where(self) -> str:
        """' (GPU i, share s)' for a log line, '' on the CPU."""
        return f" (GPU {self.claim.index}, share {self.claim.share:.2f})" if self.claim is not None else ""


def place(args: argparse.Namespace, config: dict) -> Placement:
    """The device (`--device`, `--gpu-lock-dir`, `--gpu-share`) and threads of one step."""
    # Before anything touches CUDA: the claim narrows CUDA_VISIBLE_DEVICES to the GPU it holds.
    device, claim = select_device(args.device, args.gpu_lock_dir, share=args.gpu_share)
    threads = int(args.threads or int(os.environ.get("SNAKEMAKE_THREADS", 0) or config["train"]["threads"]))
    torch.set_num_threads(threads)
    return Placement(device, claim, threads)


def module_device(module: nn.Module) -> torch.device:
    """The device a network's parameters live on (inputs are moved there batch by batch); CPU if it has none."""
    first = next(module.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def n_batches(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)


def nth_batch(rows: torch.Tensor, index: int, batch_size: int) -> torch.Tensor:
    """Batch `index` of `rows`: rows[index * batch_size : (index + 1) * batch_size] (the last may be short)."""
    return rows[index * batch_size:(index + 1) * batch_size]


def batches(rows: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    """`rows` (an index tensor, or any tensor) in consecutive batches of `batch_size`."""
    for index in range(n_batches(rows.shape[0], batch_size)):
        yield nth_batch(rows, index, batch_size)
