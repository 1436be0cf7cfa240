"""The one registry of what shapes each pipeline step's outputs: its config keys and its code.

The Snakefile's `params:` and code inputs, the fingerprint every artifact records
(mmjsd.artifacts.fingerprints) and `prepare` itself read it. (DVC wraps the whole Snakemake run of a scale:
its stage depends on all the code and every step's config section, dvc.yaml.)

Config keys (STEP_PARAMS): `{dataset}` is the job's dataset. Not listed on purpose: keys that
change no output (train.checkpoint_every_epochs, train.threads, resources), and keys whose effect
reaches a step through its input files (data.* through the processed splits).

Code (STEP_MODULES -> code_files): the package files a step runs are the closure of the mmjsd
imports of its entry module, read from the source (ast), so the list cannot drift from the code.
The code digest hashes each file's syntax tree without docstrings: a comment, a docstring or
whitespace changes no digest and reruns nothing; any other edit changes it (docs/RELIABILITY.md).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
from pathlib import Path

from mmjsd.core import extensions

PACKAGE_ROOT = Path(__file__).resolve().parent.parent

STEP_PARAMS: dict[str, list[str]] = {
    "dsprites_render": ["data.dsprites"],
    "celeba_synthesize": ["data.celeba"],
    "prepare": ["data.{dataset}"],
    "train": ["model.{dataset}", "train.{dataset}", "train.adam_betas", "precision"],
    "train_classifier": ["classifier.{dataset}", "precision"],
    # KEY@DATASET: read by that dataset's jobs only. CelebA's conditioning measure scores faces
    # generated from the figure strings; dSprites' evaluation never reads them.
    "evaluate": ["eval.batch_size", "eval.max_test_samples", "eval.latent_fit_samples", "eval.figure.texts@celeba", "precision"],
    "figure": ["eval.figure"],
}

# The module each step's command runs (its `cli_*` function lives there). The first four record
# their code digest in what they write (mmjsd.artifacts.fingerprints); every step's files are inputs of its
# Snakemake rule and deps of its DVC stage (code_paths).
STEP_MODULES = {
    "prepare": "mmjsd.data.prepare",
    "train": "mmjsd.training.train",
    "classifier": "mmjsd.evaluation.classifiers",
    "evaluate": "mmjsd.evaluation.evaluate",
    "dsprites_render": "mmjsd.data.dsprites_render",
    "celeba_synthesize": "mmjsd.data.celeba_faces",
    "aggregate": "mmjsd.reporting.aggregate",
    "figure": "mmjsd.reporting.figure",
    "plots": "mmjsd.reporting.plots",
    "report": "mmjsd.reporting.report",
}
SOURCE_PREFIX = "src/mmjsd/"     # where the package's files sit, relative to the repository root


def lookup(node, dotted: str):
    """The value at a dotted key (`model.dsprites.width`) of a nested dict, or None."""
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def step_keys(step: str, dataset: str | None = None) -> list[str]:
    """The config keys `step` reads for `dataset` (`{dataset}` filled in; a KEY@DATASET entry only
    for that dataset, and for every dataset when `dataset` is None)."""
    keys = []
    for entry in STEP_PARAMS[step]:
        key, _, only = entry.partition("@")
        if not only or dataset is None or dataset == only:
            keys.append(key.format(dataset=dataset))
    return keys


def step_settings(config: dict, step: str, dataset: str | None = None) -> dict:
    """{key: value} of the keys `step` reads (for `dataset`'s jobs)."""
    return {k: lookup(config, k) for k in step_keys(step, dataset)}


def step_params(config: dict, step: str, dataset: str | None = None) -> str:
    """The same as canonical JSON, for Snakemake's params: Snakemake compares params as text, so
    keys are sorted (reordering config.yaml reruns nothing; changing a value reruns the job)."""
    return json.dumps(step_settings(config, step, dataset), sort_keys=True, separators=(",", ":"))


# --- code -------------------------------------------------------------------------------------

def _module_file(module: str) -> Path | None:
    """The source file of an mmjsd module name, or None when it is not a module of the package."""
    parts = module.split(".")
    if parts[0] != "mmjsd":
        return None
    base = PACKAGE_ROOT.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> set[str]:
    """The mmjsd modules `path` imports (`import mmjsd.x`, `from mmjsd.x import y`, where y may
    itself be a module, and relative imports)."""
    package = ".".join(("mmjsd", *path.relative_to(PACKAGE_ROOT).with_suffix("").parts[:-1]))
    if path.name == "__init__.py":
        package = ".".join(("mmjsd", *path.relative_to(PACKAGE_ROOT).parts[:-1]))
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    # a module's parent packages run too (their __init__)
    return {".".join(name.split(".")[:i]) for name in found if name.startswith("mmjsd") for i in range(1, len(name.split(".")) + 1)}


@functools.lru_cache(maxsize=None)
def code_files(step: str) -> tuple[str, ...]:
    """The package files (relative to src/mmjsd, sorted) that `step` runs: the import closure of
    its entry module."""
    seen: set[Path] = set()
    todo = [STEP_MODULES[step]]
    while todo:
        path = _module_file(todo.pop())
        if path is None or path in seen:
            continue
        seen.add(path)
        todo.extend(_imports(path))
    return tuple(sorted(p.relative_to(PACKAGE_ROOT).as_posix() for p in seen))


def code_paths(step: str, config: dict | None = None) -> list[str]:
    """The files `step` runs, relative to the repository root: the inputs of its Snakemake rule,
    so that Snakemake reruns it (and what follows) when one of them changes. With `config`, the
    extension files it lists too (mmjsd.core.extensions: they enter every step's code digest)."""
    return [SOURCE_PREFIX + name for name in code_files(step)] + list((config or {}).get("extensions") or [])


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                node.body = node.body[1:] or [ast.Pass()]
    return tree


def normalised_source(path: Path) -> bytes:
    """A file's syntax tree without docstrings: equal for edits of comments, docstrings or layout."""
    return ast.dump(_without_docstrings(ast.parse(path.read_text(), str(path)))).encode()


def code_digest(step: str) -> str:
    """sha256 (16 hex digits) of the normalised source of the files `step` runs, in name order."""
    digest = hashlib.sha256()
    for name in code_files(step):
        digest.update(name.encode() + b"\0")
        digest.update(normalised_source(PACKAGE_ROOT / name))
    for path in extensions.loaded_files():    # none unless the config lists some (mmjsd.core.extensions)
        digest.update(b"experiment:" + path.name.encode() + b"\0")
        digest.update(normalised_source(path))
    return digest.hexdigest()[:16]
