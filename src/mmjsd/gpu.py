"""Claim one free GPU for this process before CUDA initialises.

Snakemake's `resources: gpu=1` is only a counter: it never assigns a device. Two training jobs
started under `--resources gpu=2` would both see every GPU and both pick device 0. So each job
takes an exclusive, non-blocking `flock` on one lock file per device index
(`<lock_dir>/mmjsd-gpu<index>.lock`), tries indices in order, and then narrows
CUDA_VISIBLE_DEVICES to the one it holds. The lock is held by the open file description and is
released by the kernel when the process exits, however it exits (no stale locks after a kill).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from mmjsd.errors import TrainingError

LOCK_DIR_ENV = "MMJSD_GPU_LOCK_DIR"


@dataclass
class GpuClaim:
    index: str          # the physical index (as CUDA_VISIBLE_DEVICES names it)
    lock_path: Path
    handle: IO          # keep a reference: closing it releases the lock

    def release(self) -> None:
        self.handle.close()


def default_lock_dir() -> Path:
    return Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / "mmjsd-gpu-locks")


def visible_gpus() -> list[str]:
    """GPU indices this process may use, found without initialising CUDA.

    CUDA_VISIBLE_DEVICES wins when set (a cluster scheduler may have narrowed it already);
    otherwise ask nvidia-smi. No driver, no GPUs: an empty list.
    """
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and d.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def try_claim(devices: list[str], lock_dir: Path) -> GpuClaim | None:
    """Take the first device whose lock is free; None when all are held."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    for index in devices:
        lock_path = lock_dir / f"mmjsd-gpu{index}.lock"
        handle = open(lock_path, "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        return GpuClaim(index=index, lock_path=lock_path, handle=handle)
    return None


def claim_gpu(devices: list[str], lock_dir: Path, wait_s: float = 600.0, poll_s: float = 2.0) -> GpuClaim:
    """Claim a free device, waiting up to `wait_s` for one to be released."""
    deadline = time.monotonic() + wait_s
    announced = False
    while True:
        claim = try_claim(devices, lock_dir)
        if claim is not None:
            if announced:
                print(f"claimed GPU {claim.index}", file=sys.stderr)
            return claim
        if not announced:
            # Say so in the job's log: a job that waits for a device looks hung otherwise.
            print(f"every GPU among {devices} is held by another job (locks in {lock_dir}); waiting up to {wait_s:.0f} s",
                  file=sys.stderr)
            announced = True
        if time.monotonic() >= deadline:
            raise TrainingError(
                f"no free GPU among {devices} after {wait_s:.0f} s (locks in {lock_dir})",
                "run fewer GPU jobs at once (--resources gpu=N with N <= number of GPUs) or remove locks of dead jobs",
            )
        time.sleep(poll_s)


def select_device(requested: str, lock_dir: Path | None = None) -> tuple[str, GpuClaim | None]:
    """Resolve --device auto|cpu|cuda to a torch device string, claiming a GPU when one is used.

    Must run before anything touches torch.cuda: it narrows CUDA_VISIBLE_DEVICES.
    """
    if requested == "cpu":
        return "cpu", None
    devices = visible_gpus()
    if not devices:
        if requested == "cuda":
            raise TrainingError("--device cuda was asked for but no GPU is visible", "use --device auto or cpu, or run on a GPU machine")
        return "cpu", None
    claim = claim_gpu(devices, lock_dir or default_lock_dir())
    os.environ["CUDA_VISIBLE_DEVICES"] = claim.index
    return "cuda", claim


def device_name(device: str) -> str:
    """What metrics files record as the device: 'cuda:<GPU name>' or 'cpu:<processor>'."""
    if device == "cuda":
        import torch

        return f"cuda:{torch.cuda.get_device_name(0)}"
    import platform

    return f"cpu:{platform.processor() or platform.machine()}"
