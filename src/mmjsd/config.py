"""Load config.yaml, merge the chosen scale's overlay, and validate against the schema.

The same function serves the CLI and the Snakefile, so both see one configuration:
`load_config("config.yaml", scale="demo")`. Validation uses JSON Schema draft 2020-12
(src/mmjsd/schemas/config.schema.yaml), the dialect Snakemake's `validate` uses too.

The schema is package data, read through importlib.resources, so an installed (non-editable)
`mmjsd` finds it wherever it runs; the config file itself is the user's, a path relative to the
working directory.
"""

from __future__ import annotations

import copy
import math
import shlex
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from mmjsd.core import extensions
from mmjsd.data.text import outside_alphabet
from mmjsd.errors import ConfigError

SCHEMA = resources.files("mmjsd") / "schemas" / "config.schema.yaml"   # package data (pyproject.toml)
DEFAULT_CONFIG = Path("config.yaml")
FIX = "correct config.yaml (keys and allowed values: src/mmjsd/schemas/config.schema.yaml, mmjsd/schemas/ when installed)"
MISSING_CONFIG_FIX = ("give the config file with --config FILE (config.yaml ships with the repository, not with the "
                      "installed package: mmjsd --config /path/to/repository/config.yaml ...), or run mmjsd from the "
                      "repository root")


def deep_merge(base: dict, overlay: dict) -> dict:
    """Return base updated by overlay, recursively for nested dicts (lists are replaced)."""
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (plain YAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(f"key {key!r} appears twice in one mapping (lines {seen[key] + 1} and "
                                  f"{key_node.start_mark.line + 1}); YAML would silently keep the last",
                                  "keep one of the two and delete the other")
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        where = "" if path.is_absolute() else f" (looked in {Path.cwd()})"
        raise ConfigError(f"config file {path} not found{where}", MISSING_CONFIG_FIX)
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc.problem}", exc.fix) from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise ConfigError(f"{path} is not valid YAML{where}", "fix the YAML syntax") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} does not hold a mapping", "start from the repository's config.yaml")
    return data


def resolve(raw: dict, scale: str | None = None) -> dict:
    """Merge the overlay `raw['scales'][scale]` onto the base and validate the result."""
    raw = copy.deepcopy(raw)
    scales = raw.pop("scales", {}) or {}
    if not isinstance(scales, dict):
        raise ConfigError("config key 'scales' must be a mapping of scale name to overlay", FIX)
    if scale is not None and not str(scale).strip():
        known = ", ".join(["paper", *sorted(scales)])
        raise ConfigError(f"the scale is empty (known: {known})", "name one, e.g. --config scale=demo (Snakemake) or --scale demo (mmjsd)")
    scale = scale or raw.get("scale", "paper")
    if scale != "paper":
        if scale not in scales:
            known = ", ".join(["paper", *sorted(scales)])
            raise ConfigError(f"unknown scale {scale!r} (known: {known})", "choose one of the known scales or add an overlay under 'scales:' in config.yaml")
        raw = deep_merge(raw, scales[scale])
    raw["scale"] = scale
    load_extensions(raw)
    validate(raw)
    return raw


def load_config(path: str | Path = DEFAULT_CONFIG, scale: str | None = None) -> dict:
    raw = read_yaml(path)
    validate_raw(raw)
    return resolve(raw, scale)


def _schema() -> dict:
    try:
        text = SCHEMA.read_text(encoding="utf-8")
    except OSError as exc:   # a package installed without its data files
        raise ConfigError(f"the config schema {SCHEMA} is missing from the installed mmjsd package ({exc.strerror})",
                          "reinstall mmjsd from a complete source (pip install --force-reinstall <repository or wheel>)") from None
    schema = yaml.safe_load(text)
    # names registered by the config's extensions (mmjsd.core.extensions), loaded before validation
    decoders = extensions.image_decoder_names()
    if decoders:
        _extend_enum(schema, "image_decoder", decoders)
    models = schema["properties"]["models"]["items"]["enum"]
    models += [name for name in extensions.model_names() if name not in models]
    return schema


def load_extensions(raw: dict) -> None:
    """Import the files the config (its base and its overlays) lists under `extensions:`, so that
    their names validate; a value that is not a list of strings is left to the schema."""
    lists = [raw.get("extensions")] + [overlay.get("extensions") for overlay in (raw.get("scales") or {}).values()
                                       if isinstance(overlay, dict)]
    files = [f for given in lists if isinstance(given, list) for f in given if isinstance(f, str) and f]
    if files:
        extensions.load(files)


def _extend_enum(node: Any, key: str, values: list[str]) -> None:
    if isinstance(node, dict):
        for name, child in node.items():
            if name == key and isinstance(child, dict) and "enum" in child:
                child["enum"] = [*child["enum"], *(v for v in values if v not in child["enum"])]
            else:
                _extend_enum(child, key, values)
    elif isinstance(node, list):
        for child in node:
            _extend_enum(child, key, values)


def _non_finite(node: Any, where: str = "") -> str | None:
    """The dotted key of the first NaN or infinite number (JSON Schema's bounds let NaN through:
    every comparison with it is false), or None."""
    if isinstance(node, float) and not math.isfinite(node):
        return where or "<top level>"
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        found = _non_finite(child, f"{where}.{key}" if where else str(key))
        if found:
            return found
    return None


def _first_error(instance: Any, schema: dict) -> str | None:
    bad = _non_finite(instance)
    if bad is not None:
        return f"config value {bad}: {lookup_value(instance, bad)!r} is not a finite number"
    validator_cls = jsonschema.validators.validator_for(schema)
    validator = validator_cls(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: (len(e.path), list(map(str, e.path))))
    if not errors:
        return None
    error = errors[0]
    where = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    if error.validator == "additionalProperties":
        return f"config key {where}: {error.message}"
    hint = ""
    if error.validator in ("type", "anyOf", "oneOf") and isinstance(error.instance, str):
        try:
            float(error.instance)
        except ValueError:
            pass
        else:
            # YAML 1.1 (PyYAML) reads 1e-3 as a string: a float needs a dot and a signed exponent
            mantissa, _, exponent = error.instance.lower().partition("e")
            written = f"{mantissa if '.' in mantissa else mantissa + '.0'}e{exponent if exponent[:1] in '+-' else '+' + exponent}" if exponent else error.instance
            hint = (f" (YAML reads {error.instance} as a string, not a number: write {written}, "
                    f"with a dot and a signed exponent, or a plain decimal)")
    return f"config value {where}: {error.message}{hint}"


def lookup_value(node: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def validate(config: dict) -> None:
    """Raise ConfigError naming the first offending key/value, else return None."""
    message = _first_error(config, _schema())
    if message is None:
        _check_semantics(config)
        return
    raise ConfigError(message, FIX)


def validate_raw(raw: dict) -> None:
    """Validate the base config (without its overlays) and every overlay merged onto it."""
    if isinstance(raw, dict):
        load_extensions(raw)
    base = {k: v for k, v in raw.items() if k != "scales"}
    message = _first_error(base, _schema())
    if message is not None:
        raise ConfigError(message, FIX)
    for name in (raw.get("scales") or {}):
        try:
            resolve(raw, name)
        except ConfigError as exc:
            raise ConfigError(f"scale {name!r}: {exc.problem}", exc.fix) from None


def _check_semantics(config: dict) -> None:
    """Rules JSON Schema cannot express."""
    for number, text in enumerate(config["eval"]["figure"]["texts"], start=1):
        bad = outside_alphabet(text)
        if bad is not None:
            position, ch = bad
            hint = f"write it as {ch.lower()!r}" if ch.lower() != ch and outside_alphabet(ch.lower()) is None else "remove it"
            raise ConfigError(
                f"config value eval.figure.texts[{number}] {text!r}: character {ch!r} at position {position} "
                f"is not in the text alphabet (lower-case letters, digits, space and punctuation)",
                f"{hint} (the models read the authors' 71-symbol alphabet, src/mmjsd/data/text.py)",
            )
    if "celeba" in config["datasets"] and not config["eval"]["figure"]["texts"]:
        raise ConfigError("config value eval.figure.texts is an empty list: Figure 1 and CelebA's conditioning "
                          "measure generate faces from these strings",
                          "list at least one string under eval.figure.texts (e.g. 'male, smiling')")
    figure_seed = config["eval"]["figure"]["seed"]
    if figure_seed not in config["seeds"]:
        raise ConfigError(f"config value eval.figure.seed: {figure_seed} is not one of the seeds {config['seeds']}",
                          "set eval.figure.seed to a trained seed (Figure 1 draws that seed's model)")
    for dataset, settings in config["model"].items():
        weights = settings["jsd_weights"]
        if abs(sum(weights) - 1.0) > 1e-6:
            raise ConfigError(
                f"config value model.{dataset}.jsd_weights: {weights} sums to {sum(weights):.6g}, not 1",
                "give weights (prior, img, text) that sum to 1",
            )
        if settings["image_likelihood"] == "laplace" and "laplace_scale" not in settings:
            raise ConfigError(f"config key model.{dataset}.laplace_scale is missing (needed for the Laplace likelihood)", FIX)
    _check_widths(config)
    _check_probe_sizes(config)


# The narrowest layer of each network family at width 1 (networks/dsprites.py, celeba.py,
# classifier.py; tests/test_config.py holds them to the code). A width that rounds it to no
# units would leave every layer at the floor of `networks.common.scaled`: a different, tiny
# model under the same name.
NARROWEST_LAYER = {"dsprites": 32, "celeba": 128, "classifier": 32}
DSPRITES_GRID_ROWS = 737280     # the official grid (data/dsprites.py N_ROWS)


def _check_widths(config: dict) -> None:
    widths = [(f"model.{d}.width", d, config["model"][d]["width"]) for d in config["model"]]
    widths += [(f"classifier.{d}.width", "classifier", config["classifier"][d]["width"]) for d in config["classifier"]]
    for key, family, width in widths:
        for part, value in (width.items() if isinstance(width, dict) else [("", width)]):
            narrowest = NARROWEST_LAYER[family]
            if round(narrowest * value) < 1:
                raise ConfigError(
                    f"config value {key}{'.' + part if part else ''}: {value:g} leaves the narrowest layer ({narrowest} "
                    f"channels at width 1) with no units, so every layer would fall to the floor of 8",
                    f"give a width of at least {1 / narrowest:g} (1/{narrowest})")


def held_out_sizes(n: int, test_fraction: float, val_fraction: float) -> tuple[int, int]:
    """(test_fit rows, val_fit rows) that `prepare` makes from n rows (data/processed.split_indices)."""
    n_test = min(max(2, round(n * test_fraction)), n - 3)
    n_val = min(max(2, round((n - n_test) * val_fraction)), n - n_test - 1)
    return (n_test + 1) // 2, (n_val + 1) // 2


def _check_probe_sizes(config: dict) -> None:
    """The latent probe fits on eval.latent_fit_samples rows of test_fit (val_fit in selection):
    a dataset whose row count the config fixes must give it that many."""
    wanted = config["eval"]["latent_fit_samples"]
    for dataset in config["datasets"]:
        data = config["data"][dataset]
        if dataset == "dsprites":
            rows, key = data.get("subset") or DSPRITES_GRID_ROWS, f"data.dsprites.subset"
        else:
            # synthetic faces, and a folder's cap (`auto`'s synthetic fallback is announced at parse time)
            counts = [(data["synthetic_count"], "data.celeba.synthetic_count")] if data["source"] == "synthetic" else []
            if data["source"] in ("folder", "auto") and data.get("max_images"):
                counts.append((data["max_images"], "data.celeba.max_images"))      # at most this many
            if not counts:
                continue
            rows, key = min(counts)
        if rows < 5:
            continue    # prepare refuses it with its own message
        fit, val_fit = held_out_sizes(rows, data["test_fraction"], data["val_fraction"])
        if min(fit, val_fit) < wanted:
            raise ConfigError(
                f"config value {key}: {rows} rows leave {fit} for test_fit and {val_fit} for val_fit, fewer than "
                f"eval.latent_fit_samples ({wanted}): the latent probe would fit on fewer samples than configured",
                f"raise {key}, or lower eval.latent_fit_samples to at most {min(fit, val_fit)}")


def dump_yaml(config: dict) -> str:
    return yaml.safe_dump(config, sort_keys=True)


def cli_prefix(config: dict, config_file: str = "config.yaml") -> str:
    """The start of every Snakemake rule's command: this config file and scale, shell-quoted."""
    return f"mmjsd --config {shlex.quote(str(config_file))} --scale {shlex.quote(config['scale'])}"
