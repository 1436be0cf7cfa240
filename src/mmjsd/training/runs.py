"""One way to open a trained run: `load_run(path)`, and `mmjsd inspect PATH`.

    run = load_run("results/repro/runs/dsprites/mmjsd/seed0")     # a run folder, model.pt or checkpoint.pt
    run.model            # the rebuilt model, eval mode, on `map_location`
    run.kind             # "model" (finished: model.pt) or "checkpoint" (resumable: checkpoint.pt)
    run.fingerprint      # train's run key: settings, data hash, code digest (what made the weights)
    run.position         # a checkpoint's epoch / batch / step / curve; None for model.pt

Both file kinds carry a checksum over their content, checked here before the weights are used
(torch.load does not notice damaged bytes inside a tensor). Benchmarks and diagnostics open runs
only through this function, with the paths given as arguments.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mmjsd.core import files, paths
from mmjsd.errors import DataError, detail
from mmjsd.models import MultimodalVAE, build_model, load_model_file
from mmjsd.training.checkpoints import CHECKPOINT_CHECKSUMMED, CHECKPOINT_FORMAT



@dataclass
class LoadedRun:
    model: MultimodalVAE
    path: Path
    kind: str
    fingerprint: dict
    position: dict | None


def run_file(path: str | Path) -> Path:
    """The file to open for `path`: itself, or in a run folder model.pt (finished), else checkpoint.pt."""
    path = Path(path)
    if not path.is_dir():
        return path
    for name in (Path(paths.RUN_MODEL).name, Path(paths.RUN_CHECKPOINT).name):
        if (path / name).is_file():
            return path / name
    raise DataError(f"run folder {path} holds neither model.pt nor checkpoint.pt",
                    "train the run first (`mmjsd train ...` or `snakemake`), or pass the folder of a trained run")


def load_run(path: str | Path, map_location: str | torch.device = "cpu") -> LoadedRun:
    """Rebuild the model of a run folder, a model.pt or a checkpoint.pt; damaged, foreign or
    unreadable files raise DataError naming the fix."""
    path = run_file(path)
    fix = f"retrain the run that writes {path} (delete the file first if it is damaged)"
    blob = files.torch_load(path, "run file", fix, weights_only=False)
    if isinstance(blob, dict) and "state_dict" in blob:
        model, fingerprint = load_model_file(path, blob, fix)
        return LoadedRun(model.to(map_location).eval(), path, "model", fingerprint, None)
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT or "model" not in blob:
        raise DataError(f"{path} holds neither a model (model.pt) nor a training checkpoint of format {CHECKPOINT_FORMAT}", fix)
    files.check_checksum(blob, "checkpoint", path, fix, keys=CHECKPOINT_CHECKSUMMED, required=True)
    try:
        model = build_model(blob["spec"])
        model.load_state_dict(blob["model"])
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise DataError(f"checkpoint {path} does not match its spec: {detail(exc)}", fix) from None
    return LoadedRun(model.to(map_location).eval(), path, "checkpoint", blob.get("run") or {}, json.loads(blob["position"]))


def describe(run: LoadedRun) -> dict[str, Any]:
    """What `mmjsd inspect` prints: the file, its kind, the spec, what made it and where it stood."""
    out: dict[str, Any] = {"path": str(run.path), "kind": run.kind, "spec": run.model.spec,
                           "parameters": sum(p.numel() for p in run.model.parameters()),
                           "fingerprint": run.fingerprint}
    if run.position is not None:
        out["position"] = {k: v for k, v in run.position.items() if k != "curve"}
    return out


def cli_inspect(args: argparse.Namespace, config: dict) -> int:
    run = load_run(args.path)
    print(json.dumps(files.json_safe(describe(run)), indent=2, sort_keys=True, default=str))
    return 0
