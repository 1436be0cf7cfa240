"""Code outside the package that a config asks for: new models and network variants.

The one way in is the config key `extensions:`, a list of Python files (paths from the
repository root, where the pipeline runs):

    extensions: [experiments/dsprites_pose.py]
    models: [mmjsd, mmpoe, my_model]

Each file defines `register()`, which calls `register_model` or `register_image_decoder` below.
Loading a config imports its files before validating it, so the registered names become allowed
values of `models` and `model.<dataset>.image_decoder` (mmjsd.config extends the schema's enums);
the files enter the code digest of every step (mmjsd.artifacts.steps.code_digest) and every rule's code
inputs (mmjsd.pipeline.jobs), so a checkpoint made with an extension records it and editing one reruns
what it touched. A config without the key loads nothing: the product's digests stay its own.

The lab uses it for variants that were tried and not chosen (`experiments/`,
benchmarks/fidelity.py --experiment FILE); a user extending the study uses it for a new model.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from mmjsd.core.vocabulary import MODELS as BUILT_IN_MODELS
from mmjsd.errors import ConfigError

FIX = "list existing Python files under `extensions:` in the config (paths from the repository root), each with a register() function"

_loaded: list[Path] = []
# (network family module, decoder name) of every image decoder registration
_image_decoders: list[tuple[ModuleType, str]] = []
_models: dict[str, type] = {}      # name -> model class (mmjsd.models.model_class reads it)


def register_image_decoder(family: ModuleType, name: str, decoder: type) -> None:
    """Make `decoder` the image decoder `name` of one dataset's networks (mmjsd.networks.<dataset>)."""
    if name in family.IMAGE_DECODERS and family.IMAGE_DECODERS[name] is not decoder:
        raise ConfigError(f"extension image decoder {name!r} is already a {family.DATASET} decoder",
                          "give the extension's decoder a name of its own")
    family.IMAGE_DECODERS[name] = decoder
    _image_decoders.append((family, name))


def register_model(name: str, model: type) -> None:
    """Make `model` (a models.base.MultimodalVAE subclass) trainable as `models: [..., name]`."""
    if name in BUILT_IN_MODELS or _models.get(name, model) is not model:
        raise ConfigError(f"extension model {name!r} is already a model", "give the extension's model a name of its own")
    _models[name] = model


def added_models() -> dict[str, type]:
    """The model classes that loaded extensions registered, by name."""
    return dict(_models)


def image_decoder_names() -> list[str]:
    """The image decoder names that loaded extensions added (for the config schema's enum)."""
    return sorted({name for _, name in _image_decoders})


def model_names() -> list[str]:
    """The model names that loaded extensions added (for the config schema's enum)."""
    return sorted(_models)


def load(paths: list[str | Path]) -> list[Path]:
    """Import and register each extension file once; the files loaded so far."""
    for given in paths:
        path = Path(given).resolve()
        if path in _loaded:
            continue
        if not path.is_file() or path.suffix != ".py":
            raise ConfigError(f"extension file {given} does not exist or is not a .py file", FIX)
        spec = importlib.util.spec_from_file_location(f"mmjsd_extension_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not callable(getattr(module, "register", None)):
            raise ConfigError(f"extension file {given} has no register() function", FIX)
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
    _models.clear()
    _loaded.clear()
