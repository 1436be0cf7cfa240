"""Experiment code outside the product: network variants that no shipped config uses.

The package holds only what the pipeline runs. A variant that was tried and not chosen lives in
the repository's `experiments/` folder and joins a process only when asked for:

    MMJSD_EXPERIMENTS=experiments/dsprites_pose.py mmjsd --scale repro train ...

Each named file (os.pathsep between several) defines `register()`, which calls
`register_image_decoder` below. Registered names become allowed config values for that process
(mmjsd.config extends the schema's enum with them), and the files enter the code digest of every
step it runs (mmjsd.steps.code_digest), so a checkpoint made with an experiment records it. Without
the variable nothing is loaded: editing an experiment changes no product checkpoint's digest.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

from mmjsd.errors import ConfigError

ENV = "MMJSD_EXPERIMENTS"
FIX = f"name existing experiment files in {ENV} (e.g. experiments/dsprites_pose.py), each with a register() function"

_loaded: list[Path] = []
# (network family module, decoder name) of every registration: the enum values config accepts
_image_decoders: list[tuple[ModuleType, str]] = []


def register_image_decoder(family: ModuleType, name: str, decoder: type) -> None:
    """Make `decoder` the image decoder `name` of one dataset's networks (mmjsd.networks.<dataset>)."""
    if name in family.IMAGE_DECODERS and family.IMAGE_DECODERS[name] is not decoder:
        raise ConfigError(f"experiment image decoder {name!r} is already a {family.DATASET} decoder",
                          "give the experiment's decoder a name of its own")
    family.IMAGE_DECODERS[name] = decoder
    _image_decoders.append((family, name))


def image_decoder_names() -> list[str]:
    """The image decoder names that loaded experiments added (for the config schema's enum)."""
    return sorted({name for _, name in _image_decoders})


def requested() -> list[Path]:
    value = os.environ.get(ENV, "")
    return [Path(part) for part in value.split(os.pathsep) if part.strip()]


def load(paths: list[Path] | None = None) -> list[Path]:
    """Import and register each experiment file once (default: those named by MMJSD_EXPERIMENTS)."""
    for path in (requested() if paths is None else paths):
        path = path.resolve()
        if path in _loaded:
            continue
        if not path.is_file() or path.suffix != ".py":
            raise ConfigError(f"experiment file {path} does not exist or is not a .py file", FIX)
        spec = importlib.util.spec_from_file_location(f"mmjsd_experiment_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not callable(getattr(module, "register", None)):
            raise ConfigError(f"experiment file {path} has no register() function", FIX)
        module.register()
        _loaded.append(path)
    return list(_loaded)


def loaded_files() -> list[Path]:
    return list(_loaded)


def unload() -> None:
    """Forget every registration (tests: the registries are module state)."""
    for family, name in _image_decoders:
        family.IMAGE_DECODERS.pop(name, None)
    _image_decoders.clear()
    _loaded.clear()
