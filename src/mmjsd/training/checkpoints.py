"""Training checkpoints and the timing sidecar (mmjsd.training.train writes and restores them).

`checkpoint.pt` holds model, optimiser, every RNG state, the position (epoch, batch, step, the
running sums of the epoch in progress, the curve) and train's run key, with a content checksum
over all of it. A checkpoint whose run key differs from the run's (other settings, data bytes or
training code) is never resumed. `timing.json` sums wall time and samples over every call; it is
kept out of the checkpoint's bytes so that a resumed run ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mmjsd.core import files
from mmjsd.errors import DataError, TrainingError

CHECKPOINT_FORMAT = 2        # 2: run key with data hash and code digest, content checksum
# the checkpoint keys its checksum covers
CHECKPOINT_CHECKSUMMED = ("run", "spec", "model", "optimizer", "rng", "position")


@dataclass
class Position:
    epoch: int = 0            # epoch in progress (0-based)
    batch: int = 0            # next batch index within that epoch
    step: int = 0             # optimiser steps taken in total
    sums: dict = field(default_factory=dict)   # running loss sums of the epoch in progress
    count: int = 0            # samples summed in `sums`
    curve: list = field(default_factory=list)  # one row per finished epoch


def rng_state(device: str) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device == "cuda":
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict, device: str) -> None:
    torch.set_rng_state(state["torch"])
    if device == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"])




def save_checkpoint(path: Path, model, optimizer, position: Position, device: str, run_key: dict) -> None:
    state = {
        "format": CHECKPOINT_FORMAT,
        "run": run_key,
        "spec": model.spec,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "rng": rng_state(device),
        # JSON, not a pickled dict: pickle memoises repeated strings by object identity, so a
        # resumed run (strings from the loaded checkpoint) would write other bytes than a fresh one.
        "position": json.dumps(position.__dict__, sort_keys=True),
    }
    # Checked on load: torch.load does not notice damaged bytes inside a tensor's data.
    state["checksum"] = files.content_checksum({k: state[k] for k in CHECKPOINT_CHECKSUMMED})
    files.torch_save(path, state)


def load_checkpoint(path: Path, run_key: dict) -> dict | None:
    """The checkpoint's state when it belongs to this run (same settings, data bytes and training
    code); None (train from scratch, with a note naming what changed) when it belongs to another;
    TrainingError when its bytes are damaged."""
    if not path.exists():
        return None
    fix = f"delete {path} and run again: the run trains from scratch"
    # a truncated file from a killed writer cannot exist (atomic), but a copied one can;
    # weights_only=False: our own file, holding the optimiser's state
    state = files.torch_load(path, "checkpoint", fix, weights_only=False, error=TrainingError)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        print(f"note: {path} has an older format (no fingerprint); training from scratch", file=sys.stderr)
        return None
    files.check_checksum(state, "checkpoint", path, fix, keys=CHECKPOINT_CHECKSUMMED, required=True, error=TrainingError)
    if state.get("run") != run_key:
        # The config, the data or the training code changed since it was written: its state
        # cannot continue this run (a stale checkpoint is never resumed).
        old = state.get("run") or {}
        changed = sorted(k for k in set(old) | set(run_key) if old.get(k) != run_key.get(k))
        print(f"note: {path} was written under other settings (changed: {', '.join(changed)}); training from scratch",
              file=sys.stderr)
        return None
    return state


# --------------------------------------------------------------------------------------------
# Time across calls: a sidecar beside the checkpoint (wall times would break identical bytes)
# --------------------------------------------------------------------------------------------

@dataclass
class Timing:
    wall_time_s: float = 0.0   # summed over every call of this run
    samples: int = 0           # samples trained, summed over every call (steps redone after a kill count twice)
    started_at: str = ""       # UTC time the first call started (for the report's run times)
    finished_at: str = ""      # UTC time the last call stopped


def _run_digest(run_key: dict) -> str:
    return hashlib.sha256(json.dumps(run_key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_timing(path: Path, run_key: dict) -> Timing:
    """The totals of earlier calls of this same run; zero when absent, unreadable or another run's."""
    try:
        record = files.read_json(path, "")
        if record.get("run") == _run_digest(run_key):
            return Timing(float(record["wall_time_s"]), int(record["samples"]), str(record.get("started_at", "")),
                          str(record.get("finished_at", "")))
    except (DataError, OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return Timing()


def save_timing(path: Path, run_key: dict, timing: Timing) -> None:
    # Unrounded: metrics.json rounds to 2 decimals, and a metrics file rebuilt from this one must
    # give the same number (rounding twice, 3 then 2 decimals, can differ by 0.01).
    files.write_json(path, {"run": _run_digest(run_key), "wall_time_s": timing.wall_time_s,
                            "samples": timing.samples, "started_at": timing.started_at, "finished_at": utc_now()})


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
