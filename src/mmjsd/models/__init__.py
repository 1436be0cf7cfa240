"""Models: a spec (plain dict, saved with the weights) paired with a MultimodalVAE subclass.

    spec = model_spec(config, "mmjsd", "celeba", img_channels=3, text_len=256, alphabet_size=71)
    model = build_model(spec)
    out = model.loss({"img": img, "text": text}); out["loss"].backward()
    save_model("model.pt", model); model = load_model("model.pt")
    model, path = load_run_model(config, "celeba", "mmjsd", seed=0)   # a pipeline run's model.pt
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from mmjsd.artifacts.fingerprints import changed_keys, content_sha256
from mmjsd.artifacts.steps import code_digest
from mmjsd.core import extensions, paths
from mmjsd.core.files import check_checksum, content_checksum, torch_load, torch_save
from mmjsd.errors import DataError, detail
from mmjsd.models.base import MultimodalVAE, Posterior
from mmjsd.models.mmjsd import MMJSD
from mmjsd.models.mmpoe import MMPoE

MODELS: dict[str, type[MultimodalVAE]] = {"mmjsd": MMJSD, "mmpoe": MMPoE}


def model_class(name: str) -> type[MultimodalVAE] | None:
    """The class of model `name`: the package's, or one a config's extension registered (mmjsd.core.extensions)."""
    return MODELS.get(name) or extensions.added_models().get(name)
SPEC_KEYS = ("model", "dataset", "settings", "img_channels", "text_len", "alphabet_size")

__all__ = ["MODELS", "model_class", "MMJSD", "MMPoE", "MultimodalVAE", "Posterior",
           "model_spec", "build_model", "save_model", "load_model", "load_model_file", "load_run_model"]


def model_spec(config: dict, model_name: str, dataset: str, img_channels: int, text_len: int,
               alphabet_size: int) -> dict:
    """Everything needed to rebuild a model: the model name, the dataset's `model:` settings and
    the data shapes."""
    if model_class(model_name) is None:
        raise ValueError(f"unknown model {model_name!r} (known: {', '.join([*MODELS, *extensions.added_models()])})")
    if dataset not in config["model"]:
        raise ValueError(f"config has no model settings for dataset {dataset!r}")
    return {
        "model": model_name,
        "dataset": dataset,
        "settings": copy.deepcopy(config["model"][dataset]),
        "img_channels": int(img_channels),
        "text_len": int(text_len),
        "alphabet_size": int(alphabet_size),
    }


def build_model(spec: dict) -> MultimodalVAE:
    missing = [k for k in SPEC_KEYS if k not in spec]
    if missing:
        raise ValueError(f"model spec lacks {missing}")
    cls = model_class(spec["model"])
    if cls is None:
        raise ValueError(f"unknown model {spec['model']!r} (known: {', '.join([*MODELS, *extensions.added_models()])})")
    return cls(spec)


def save_model(path: str | Path, model: MultimodalVAE, fingerprint: dict | None = None) -> None:
    """Write {"spec", "state_dict", "fingerprint", "checksum"} atomically (same weights -> same
    bytes). `fingerprint`: what made it (train's run key: settings, data hash, code digest);
    `checksum`: over spec, weights and fingerprint, checked by load_model."""
    blob = {"spec": model.spec, "state_dict": model.state_dict(), "fingerprint": fingerprint or {}}
    blob["checksum"] = content_checksum(blob)
    torch_save(path, blob)


def load_model(path: str | Path, map_location: str | torch.device = "cpu", expect: dict | None = None,
               fix: str | None = None) -> MultimodalVAE:
    """Rebuild a model from save_model's file. Missing, unreadable or damaged files (checksum),
    and a model of another type or dataset than `expect` ({"model": .., "dataset": ..}), raise
    DataError naming the fix."""
    path = Path(path)
    fix = fix or f"re-run the training step that writes {path} (delete the file first if it is damaged)"
    model, _ = load_model_file(path, torch_load(path, "model file", fix), fix, expect)
    return model.to(map_location)


def load_model_file(path: Path, blob, fix: str, expect: dict | None = None) -> tuple[MultimodalVAE, dict]:
    """(model, fingerprint) from save_model's loaded `blob`, its checksum and `expect` checked."""
    if not isinstance(blob, dict) or "spec" not in blob or "state_dict" not in blob:
        raise DataError(f"model file {path} does not hold a model (expected keys 'spec' and 'state_dict')", fix)
    check_checksum(blob, "model file", path, fix)
    spec = blob["spec"] if isinstance(blob["spec"], dict) else {}
    for key, wanted in (expect or {}).items():
        if spec.get(key) != wanted:
            raise DataError(f"model file {path} holds a {spec.get('model')!r} model for {spec.get('dataset')!r}, "
                            f"not the expected {key} {wanted!r}", fix)
    try:
        model = build_model(blob["spec"])
        model.load_state_dict(blob["state_dict"])
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise DataError(f"model file {path} does not match its spec: {detail(exc)}", fix) from None
    return model, blob.get("fingerprint") or {}


def expected_run(config: dict, dataset: str, model_name: str, seed: int) -> dict:
    """What a model in this slot must record (train's run key, mmjsd.training.train): the slot itself, the
    settings that shape training, the bytes of the training split on disk and the training code."""
    expected = {"dataset": dataset, "model": model_name, "seed": seed, "train": config["train"][dataset],
                "adam_betas": config["train"]["adam_betas"], "spec": {"settings": config["model"][dataset]},
                "code": code_digest("train")}
    split = paths.processed(config, dataset, "train")
    if split.is_file():
        expected["data_sha256"] = content_sha256(split)   # cached per file: figure checks two models
    return expected


def load_run_model(config: dict, dataset: str, model_name: str, seed: int) -> tuple[MultimodalVAE, Path]:
    """(the model of one pipeline run, in eval mode on the CPU, and its path). Missing, damaged, or
    made for another slot (another dataset, model, seed, scale or config, other training data or
    training code: `expected_run`) -> DataError naming the command that retrains it."""
    path = paths.run_file(paths.RUN_MODEL, config, dataset, model_name, seed)
    retrain = (f"train it: `mmjsd --scale {config['scale']} train --dataset {dataset} --model {model_name} --seed {seed}` "
               f"(or `snakemake {path} --config scale={config['scale']}`)")
    if not path.is_file():
        raise DataError(f"trained model {path} not found", retrain)
    fix = f"delete it and retrain: `rm {path}`, then `snakemake {path} --config scale={config['scale']}`"
    model, recorded = load_model_file(path, torch_load(path, "model file", fix), fix,
                                      expect={"model": model_name, "dataset": dataset})
    changed = changed_keys(recorded, expected_run(config, dataset, model_name, seed))
    if changed:
        raise DataError(f"model file {path} was not trained for this slot ({dataset}/{model_name}/seed{seed} at scale "
                        f"{config['scale']}): it records other {', '.join(changed)}", fix)
    return model.eval(), path
