"""After `dvc pull`: make the pulled outputs Snakemake's own, so that nothing is retrained.

DVC wraps Snakemake (dvc.yaml): it versions and shares a scale's data, models and tables, and
Snakemake decides which jobs run. Snakemake decides from file times and from its own records
(`.snakemake/metadata`: the params and code that made each output). A `dvc pull` into a fresh
clone brings the files but neither: their times follow the order of the copy, and there are no
records. A plain `snakemake all` would then retrain whatever happens to look older than its
inputs, and a later config edit would rerun nothing, since no params were recorded to compare.

`mmjsd --scale S adopt-pulled` first asks DVC whether the pulled outputs are exactly those its
lock file records for this checkout's code and config (`dvc status` clean), then lets Snakemake
touch every output of the scale in DAG order (`--touch --forceall`), which also writes its
records for the current params and code. Both are the tools' own mechanisms, nothing is rewritten
by hand.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from mmjsd.errors import MmjsdError

DVC_UP_TO_DATE = "Data and pipelines are up to date."


class NotAdoptable(MmjsdError):
    """The pulled outputs are not those the checkout's dvc.lock records."""


def pipeline_file(scale: str) -> str:
    """The dvc.yaml that wraps `scale`: the root one for the demo (a bare `dvc repro` runs it),
    pipelines/<scale>/dvc.yaml for every other scale."""
    return "dvc.yaml" if scale == "demo" else f"pipelines/{scale}/dvc.yaml"


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        raise NotAdoptable(f"`{name}` is not on PATH", "activate the environment that has it (.venv/bin), then run again")
    return found


def snakemake_touch_command(scale: str, config_file: str) -> list[str]:
    command = [_tool("snakemake"), "all", "--config", f"scale={scale}", "--touch", "--forceall", "--cores", "1", "--quiet"]
    if config_file != "config.yaml":
        command[2:2] = ["--configfile", config_file]
    return command


def cli_adopt_pulled(args: argparse.Namespace, config: dict) -> int:
    scale = config["scale"]
    pipeline = pipeline_file(scale)
    status = subprocess.run([_tool("dvc"), "status", pipeline], capture_output=True, text=True)
    if status.returncode != 0 or DVC_UP_TO_DATE not in status.stdout:
        changed = " ".join((status.stdout + status.stderr).split())[:300]
        raise NotAdoptable(
            f"the outputs of scale '{scale}' are not those {pipeline}'s lock records for this checkout ({changed})",
            f"pull them first (`dvc pull {pipeline}`), or rebuild what changed: `dvc repro {pipeline}`")
    touched = subprocess.run(snakemake_touch_command(scale, str(args.config)), capture_output=True, text=True)
    if touched.returncode != 0:
        tail = " ".join((touched.stderr or touched.stdout).split())[-300:]
        raise NotAdoptable(f"Snakemake could not record the pulled outputs of scale '{scale}' ({tail})",
                           f"fix what it names, then run `mmjsd --scale {scale} adopt-pulled` again")
    print(f"adopt-pulled: the pulled outputs of scale '{scale}' are Snakemake's own: `snakemake all --config "
          f"scale={scale}` and `dvc repro {pipeline}` rerun nothing until the code, the config or an input changes")
    return 0
