"""What made each artifact, and the check its consumer makes before using it (issue 15 item 1).

Checkpoints and models carry train's run key (training/train.py). The other artifacts carry a fingerprint
of the same kind, a canonical JSON string (deterministic bytes; no paths, hosts or times):

| artifact | fingerprint | checked by |
|---|---|---|
| processed split (`prepare`) | sha256 of the raw input (the npz; for a CelebA folder its manifest, data/manifest.py), the config keys `prepare` reads (steps.STEP_PARAMS), the digest of the data code | train, train-classifier, evaluate, figure (`data.processed.check_split`) |
| classifier (`train_classifier`) | sha256 of the train/test splits it learnt from, its config keys, the digest of the classifier code; plus a checksum of weights, spec and fingerprint | evaluate (`classifiers.load_classifier`) |
| eval.json (`evaluate`) | sha256 of the model, classifiers and splits it read, its config keys, the digest of the evaluation code | recorded (aggregate reads the numbers) |

A consumer recomputes what it can see (its config, the code on disk, the inputs that exist) and
refuses a mismatch with one line naming what changed and the exact `snakemake ... --forcerun`
that rebuilds the artifact and what depends on it. Inputs that are not on disk (a raw file
deleted after `prepare`) are not compared; everything else is.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

from mmjsd.artifacts.steps import code_digest, step_settings
from mmjsd.core import paths as P
from mmjsd.core.files import file_sha256
from mmjsd.core.vocabulary import MODALITIES
from mmjsd.errors import DataError
from mmjsd.lab import holdout

FORMAT = 1


def canonical(fingerprint: dict) -> str:
    """The stored form: sorted-key JSON (equal content, equal bytes)."""
    return json.dumps(fingerprint, sort_keys=True, separators=(",", ":"))


@functools.lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(path)


def content_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (remembered per size and mtime within a process: evaluate's two
    classifiers name the same splits)."""
    path = Path(path)
    stat = path.stat()
    return _file_sha256(str(path), stat.st_size, stat.st_mtime_ns)


def rebuild_command(config: dict, path: str | os.PathLike, config_file: str | os.PathLike = "config.yaml") -> str:
    """The snakemake call that rebuilds `path` (the job that writes it) and everything downstream."""
    extra = f" --configfile {config_file}" if Path(config_file) != Path("config.yaml") else ""
    return f"snakemake all --config scale={config['scale']}{extra} --forcerun {path}"


def other_run(recorded: dict, wanted: dict, present_only: bool = False) -> str | None:
    """"seed 1, model 'x'" for the keys of `wanted` (dataset, model, seed, ...) whose value in
    `recorded` differs (with `present_only`, keys `recorded` lacks are not compared), else None."""
    other = {k: recorded.get(k) for k, v in wanted.items() if (k in recorded or not present_only) and recorded.get(k) != v}
    return ", ".join(f"{k} {v!r}" for k, v in other.items()) or None


def changed_keys(recorded: Any, expected: Any, prefix: str = "") -> list[str]:
    """Dotted names under which `recorded` differs from `expected` (keys only `recorded` has are
    not compared: they may hold what the consumer cannot recompute)."""
    if isinstance(recorded, dict) and isinstance(expected, dict):
        names = []
        for key in sorted(expected):
            names += changed_keys(recorded.get(key), expected[key], f"{prefix}{key}.")
        return names
    return [] if recorded == expected else [prefix.rstrip(".")]


def refuse_stale(kind: str, path: Path, recorded: str | None, expected: dict, rule: str, config: dict,
            config_file: str | os.PathLike) -> None:
    fix = f"rebuild it and what depends on it (rule {rule}): `{rebuild_command(config, path, config_file)}`"
    if not isinstance(recorded, str):
        raise DataError(f"{kind} {path} records no fingerprint (written before fingerprints were kept), so what "
                        f"made it cannot be checked", fix)
    try:
        stored = json.loads(recorded)
    except ValueError:
        raise DataError(f"{kind} {path} holds an unreadable fingerprint", fix) from None
    changed = changed_keys(stored, expected)
    if changed:
        raise DataError(f"{kind} {path} was made from other inputs, config or code than this run's "
                        f"(changed: {', '.join(changed)}); a stale {kind} is never used", fix)


# --- classifiers ------------------------------------------------------------------------------

def classifier_fingerprint(config: dict, dataset: str, modality: str) -> dict:
    """What a classifier records (and what evaluate expects): the splits it learnt from (those
    on disk), its config keys and the classifier code."""
    # the held-out split it is scored on: test in the pipeline, val in a selection run (mmjsd.lab.holdout)
    splits = {name: content_sha256(P.processed(config, dataset, name)) for name in ("train", holdout.splits()[0])
              if P.processed(config, dataset, name).is_file()}
    return {"format": FORMAT, "made_by": "train_classifier", "dataset": dataset, "modality": modality,
            "splits_sha256": splits, "settings": step_settings(config, "train_classifier", dataset),
            "code": code_digest("classifier")}


def check_classifier(recorded: str | None, path: str | os.PathLike, config: dict, dataset: str, modality: str,
                     config_file: str | os.PathLike = "config.yaml") -> None:
    refuse_stale("classifier", Path(path), recorded, classifier_fingerprint(config, dataset, modality), "train_classifier",
            config, config_file)


# --- evaluation -------------------------------------------------------------------------------

def eval_fingerprint(config: dict, dataset: str, model: str, seed: int) -> dict:
    """What eval.json records: the bytes of everything evaluate read, its config keys, its code."""
    model_path = P.run_file(P.RUN_MODEL, config, dataset, model, seed)
    return {"format": FORMAT, "made_by": "evaluate",
            "model_sha256": content_sha256(model_path),
            "classifiers_sha256": {m: content_sha256(P.fill(P.CLASSIFIER, config, dataset=dataset, modality=m))
                                   for m in MODALITIES},
            "splits_sha256": {name: content_sha256(P.processed(config, dataset, name)) for name in holdout.splits()},
            "settings": step_settings(config, "evaluate", dataset),
            "code": code_digest("evaluate")}


def check_eval_slot(config: dict, record: dict, path: Path, dataset: str, model: str, seed: int, fix: str,
               config_file: str | Path = "config.yaml") -> None:
    """An eval.json is reported under its slot only when it is that slot's evaluation: the same
    dataset, model, seed and scale, the evaluation settings of this config, and (when the model
    file is on disk) computed from that model file. A file copied from another run is refused."""
    other = other_run(record, {"dataset": dataset, "model": model, "seed": seed, "scale": config["scale"]})
    if other:
        raise DataError(f"{path} is the evaluation of another run ({other}), "
                        f"not of {dataset}/{model}/seed{seed} at scale {config['scale']}", fix)
    fingerprint = record.get("fingerprint") or {}
    if not isinstance(fingerprint.get("settings"), dict):
        raise DataError(f"{path} records no evaluation settings, so what made it cannot be checked", fix)
    changed = changed_keys(fingerprint["settings"], step_settings(config, "evaluate", dataset))
    if changed:
        raise DataError(f"{path} was computed under other evaluation settings (changed: {', '.join(changed)})", fix)
    model_path = P.run_file(P.RUN_MODEL, config, dataset, model, seed)
    if model_path.is_file() and fingerprint.get("model_sha256") != content_sha256(model_path):
        # the model was replaced after this evaluation (perhaps by one of another scale or config, which
        # evaluate would refuse): rebuild the model, and so its evaluation, rather than only re-evaluate
        raise DataError(f"{path} was computed from another model file than {model_path}",
                        f"rebuild the model and what depends on it: `{rebuild_command(config, model_path, config_file)}`")
