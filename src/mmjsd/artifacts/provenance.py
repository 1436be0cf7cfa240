"""What every reported number carries: its config, seed, git commit and package versions."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from typing import Any

PROVENANCE_PACKAGES = ("torch", "torchvision", "numpy", "pandas", "scikit-learn", "mmjsd")


# The pipeline's own tracked outputs: a run rewrites the committed results/ and DVC's lock files,
# so their changes say nothing about the code or config that made a number.
OUTPUT_PATHSPECS = (":(exclude)results", ":(exclude,glob)**/dvc.lock")


def git_commit(cwd: str | os.PathLike | None = None) -> str:
    """The commit of the working tree, with '-dirty' when tracked files other than the pipeline's
    outputs (OUTPUT_PATHSPECS) differ; 'unknown' outside git."""
    try:
        commit, top = subprocess.run(
            ["git", "rev-parse", "HEAD", "--show-toplevel"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.split("\n")[:2]
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *OUTPUT_PATHSPECS],
            cwd=top, capture_output=True, text=True, check=True,
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PROVENANCE_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def provenance(config: dict | None = None, seed: int | None = None) -> dict[str, Any]:
    """What every reported number carries: config, seed, git commit, package versions.

    Deliberately free of timestamps and host names so that two CPU runs of the same seed write
    identical files (wall time and device are recorded separately, in the metrics that are
    allowed to differ).
    """
    record: dict[str, Any] = {"git_commit": git_commit(), "packages": package_versions()}
    if config is not None:
        record["config"] = config
    if seed is not None:
        record["seed"] = seed
    return record
