"""Claim a GPU, or a share of one, for this process before CUDA initialises.

Snakemake's resources are counters: they never assign a device. So each GPU job places itself:
it takes a share of one visible device (1.0 = the whole device; `resources.gpu_share` in
config.yaml gives one per dataset, so four small dSprites jobs pack onto one GPU) and narrows
CUDA_VISIBLE_DEVICES to that device.

Placement, per lock folder (`$MMJSD_GPU_LOCK_DIR`, default `<tmp>/mmjsd-gpu-locks`):
- `mmjsd-gpu<index>.lock` is the device's mutex, held only while a job places itself;
- each job holds an exclusive `flock` on its own claim file
  `mmjsd-gpu<index>.<pid>-<n>.<units>.claim` for its lifetime (`units`: its share in 1/100 of a
  device). Under the mutex a job sums the claims whose lock is still held; a claim file
  nobody holds belongs to a job that ended (however it ended: the kernel drops the lock of a
  killed process) and is deleted. The job takes the fullest device that still fits its share
  (best fit, so that a whole device stays free for a CelebA job as long as possible).
- A job that finds no room waits, without a deadline by default, and says so in its log.

The Snakemake side (workflow/rules/common.smk, `snakemake_gpu_units`): `--resources gpu=N`
keeps meaning N devices; the workflow turns it into a pool of N x 100 `gpu_units` and each GPU
job asks for its share x 100. Without `--resources gpu=N` the pool is the number of visible
GPUs (0 on a CPU machine, where GPU jobs ask for nothing), so the default never starts more GPU
work than the devices hold.
"""

from __future__ import annotations

import fcntl
import itertools
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from mmjsd.errors import TrainingError, detail

LOCK_DIR_ENV = "MMJSD_GPU_LOCK_DIR"
UNITS_PER_GPU = 100     # a share is held in whole hundredths of a device
_claim_numbers = itertools.count()


@dataclass
class GpuClaim:
    index: str          # the physical index (as CUDA_VISIBLE_DEVICES names it)
    lock_path: Path     # this job's claim file
    handle: IO          # keep a reference: closing it releases the claim
    units: int = UNITS_PER_GPU

    @property
    def share(self) -> float:
        return self.units / UNITS_PER_GPU

    def release(self) -> None:
        if not self.handle.closed:
            try:
                self.lock_path.unlink()
            except FileNotFoundError:
                pass
            self.handle.close()


def default_lock_dir() -> Path:
    """$MMJSD_GPU_LOCK_DIR, else <tmp>/mmjsd-gpu-locks; one folder per SLURM job, whose devices
    SLURM has already narrowed (two jobs on one node may both see their own GPU as index 0)."""
    if os.environ.get(LOCK_DIR_ENV):
        return Path(os.environ[LOCK_DIR_ENV])
    slurm_job = os.environ.get("SLURM_JOB_ID")
    name = f"mmjsd-gpu-locks-slurm{slurm_job}" if slurm_job else "mmjsd-gpu-locks"
    return Path(tempfile.gettempdir()) / name


def share_units(share: float) -> int:
    """A share of a device in (0, 1] -> whole hundredths (rounded up, at least 1)."""
    if not 0 < share <= 1:
        raise TrainingError(f"GPU share {share} is outside (0, 1]",
                            "set resources.gpu_share.<dataset> (or --gpu-share) to a fraction of one device, e.g. 0.25")
    return max(1, min(UNITS_PER_GPU, math.ceil(round(share * UNITS_PER_GPU, 6))))


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


def _used_units(lock_dir: Path, index: str) -> int:
    """Sum the live claims on one device (call under its mutex); delete the claims of ended jobs."""
    used = 0
    for path in lock_dir.glob(f"mmjsd-gpu{index}.*.claim"):
        try:
            units = int(path.name.rsplit(".", 2)[-2])
            handle = open(path, "r")
        except (ValueError, FileNotFoundError):
            continue
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            used += units           # its job holds it: live
        else:
            path.unlink(missing_ok=True)  # nobody holds it: the job ended
        finally:
            handle.close()
    return used


def try_claim(devices: list[str], lock_dir: Path, share: float = 1.0) -> GpuClaim | None:
    """Take `share` of the fullest device that still has room for it; None when none has."""
    units = share_units(share)
    try:
        lock_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise TrainingError(f"the GPU lock folder {lock_dir} is a file, not a folder",
                            f"remove or move {lock_dir}, or point ${LOCK_DIR_ENV} (or --gpu-lock-dir) at a folder") from None
    mutexes = []
    try:
        free = {}
        for index in sorted(devices):   # one order for every job: no deadlock between placers
            mutex = open(lock_dir / f"mmjsd-gpu{index}.lock", "a+")
            fcntl.flock(mutex.fileno(), fcntl.LOCK_EX)   # held for milliseconds by whoever places itself
            mutexes.append(mutex)
            free[index] = UNITS_PER_GPU - _used_units(lock_dir, index)
        fitting = [index for index in devices if free[index] >= units]
        if not fitting:
            return None
        index = min(fitting, key=lambda i: (free[i], devices.index(i)))  # best fit, then device order
        path = lock_dir / f"mmjsd-gpu{index}.{os.getpid()}-{next(_claim_numbers)}.{units}.claim"
        handle = open(path, "w")
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        handle.write(f"pid {os.getpid()} share {units / UNITS_PER_GPU:.2f}\n")
        handle.flush()
        return GpuClaim(index=index, lock_path=path, handle=handle, units=units)
    finally:
        for mutex in mutexes:
            mutex.close()


def claim_gpu(devices: list[str], lock_dir: Path, share: float = 1.0, wait_s: float | None = None,
              poll_s: float = 2.0, remind_s: float = 600.0) -> GpuClaim:
    """Claim `share` of a device, waiting for room (forever when `wait_s` is None) and saying so."""
    started = time.monotonic()
    announced, reminded = False, started
    while True:
        claim = try_claim(devices, lock_dir, share)
        if claim is not None:
            if announced:
                print(f"claimed GPU {claim.index} (share {claim.share:.2f}) after waiting "
                      f"{time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
            return claim
        waited = time.monotonic() - started
        if not announced:
            # Say so in the job's log: a job that waits for a device looks hung otherwise.
            limit = "without a deadline" if wait_s is None else f"up to {wait_s:.0f} s"
            print(f"no room for a {share_units(share) / UNITS_PER_GPU:.2f} share on any GPU among {devices}: "
                  f"held by other jobs (locks in {lock_dir}); waiting {limit}", file=sys.stderr, flush=True)
            announced = True
        elif time.monotonic() - reminded >= remind_s:
            print(f"still waiting for a GPU ({waited:.0f} s)", file=sys.stderr, flush=True)
            reminded = time.monotonic()
        if wait_s is not None and waited >= wait_s:
            raise TrainingError(
                f"no free GPU among {devices} after {wait_s:.0f} s (locks in {lock_dir})",
                "run fewer GPU jobs at once (--resources gpu=N with N <= number of GPUs) or wait longer",
            )
        time.sleep(poll_s)


def select_device(requested: str, lock_dir: Path | None = None, share: float | None = 1.0,
                  wait_s: float | None = None) -> tuple[str, GpuClaim | None]:
    """Resolve --device auto|cpu|cuda to a torch device string, claiming a GPU share when one is used.

    Must run before anything touches torch.cuda: it narrows CUDA_VISIBLE_DEVICES.
    """
    if requested == "cpu":
        return "cpu", None
    share = 1.0 if share is None else share
    devices = visible_gpus()
    if not devices:
        if requested == "cuda":
            raise TrainingError("--device cuda was asked for but no GPU is visible", "use --device auto or cpu, or run on a GPU machine")
        return "cpu", None
    claim = claim_gpu(devices, lock_dir or default_lock_dir(), share=share, wait_s=wait_s)
    os.environ["CUDA_VISIBLE_DEVICES"] = claim.index
    problem = _cuda_problem()
    if problem is not None:
        claim.release()
        raise TrainingError(
            f"GPU {claim.index} is visible (CUDA_VISIBLE_DEVICES={','.join(devices)}) but CUDA cannot use it: {problem}",
            "install or repair the NVIDIA driver, or run on the CPU: unset CUDA_VISIBLE_DEVICES (or set it to -1) or pass --device cpu")
    return "cuda", claim


def _cuda_problem() -> str | None:
    """None when CUDA can run on the claimed device, else why not (no driver, a CPU-only torch)."""
    import torch   # here, not at the top: the Snakefile imports this module to count GPUs, without torch

    try:
        if not torch.cuda.is_available():
            return ("torch.cuda.is_available() is False (no NVIDIA driver, or a CPU-only torch build "
                    f"{torch.__version__})")
        torch.cuda.init()
    except (RuntimeError, AssertionError) as exc:
        return detail(exc)
    return None


def config_share(config: dict, dataset: str) -> float:
    """The configured share of a device for one dataset's GPU jobs (1.0 when not configured)."""
    return float((config.get("resources", {}).get("gpu_share") or {}).get(dataset, 1.0))


def snakemake_gpu_units(requested_gpus: int | None, visible: int) -> int:
    """The workflow's pool of `gpu_units`: N devices from `--resources gpu=N`, else the visible GPUs."""
    devices = visible if requested_gpus is None else requested_gpus
    return max(0, int(devices)) * UNITS_PER_GPU


def job_gpu_units(share: float, pool: int) -> int:
    """What one GPU job asks of the pool: its share in hundredths; nothing when there is no GPU."""
    return share_units(share) if pool > 0 else 0


def cpu_model() -> str:
    """The processor by name ('AMD EPYC 7763 64-Core Processor'), else the architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_bf16_path() -> str:
    """Which bf16 kernels this CPU has, from its flags: "amx" (AMX tiles), "avx512_bf16", or "none"
    (then the pipeline runs fp32, precision.resolve). The same seed gives the same bytes only on
    the same path: their kernels round differently (docs/USAGE.md, "Where bytes repeat")."""
    try:
        flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("flags")), [])
    except OSError:
        return "unknown"
    if "amx_bf16" in flags:
        return "amx"
    return "avx512_bf16" if "avx512_bf16" in flags else "none"


def gpu_names() -> list[str]:
    """Names of the GPUs on this machine from nvidia-smi, without initialising CUDA; [] without."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def device_name(device: str) -> str:
    """What metrics files record as the device: 'cuda:<GPU name>' or 'cpu:<processor> (<n> cores,
    bf16 path <amx|avx512_bf16|none>)': a CPU run's bytes repeat only on the same bf16 path."""
    if device == "cuda":
        import torch   # here: see _cuda_problem

        return f"cuda:{torch.cuda.get_device_name(0)}"
    return f"cpu:{cpu_model()} ({os.cpu_count()} cores, bf16 path {cpu_bf16_path()})"

