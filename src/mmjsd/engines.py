"""One engine at a time in a checkout: Snakemake and `dvc repro` write the same files.

Both engines run the same `mmjsd` commands on the same paths, so two of them at once would
overwrite each other's outputs mid-run. Each side therefore refuses while the other runs:

- A Snakemake run holds a shared lock on `.snakemake/mmjsd-engine.lock` for its whole life
  (taken at parse time by workflow/rules/common.smk). Under `dvc repro` (DVC sets DVC_STAGE for
  each stage's command) every `mmjsd` command refuses to start while that lock is held.
- At parse time the Snakefile refuses to start while DVC's lock table (`.dvc/tmp/rwlock`) lists a
  stage of a live process.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import IO

from mmjsd.errors import MmjsdError
from mmjsd.files import process_alive

LOCK_FILE = Path(".snakemake") / "mmjsd-engine.lock"
DVC_LOCK_TABLE = Path(".dvc") / "tmp" / "rwlock"


class EngineBusy(MmjsdError):
    """The other workflow engine is running in this checkout."""


def hold_snakemake_lock(root: str | os.PathLike = ".") -> IO:
    """Take the Snakemake side's shared lock; it lasts as long as the returned file stays open."""
    path = Path(root) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a")
    fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
    return handle


def snakemake_running(root: str | os.PathLike = ".") -> bool:
    path = Path(root) / LOCK_FILE
    if not path.is_file():
        return False
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return False


def dvc_running(root: str | os.PathLike = ".") -> str | None:
    """The command of a live process that DVC's lock table lists as running a stage, or None."""
    try:
        table = json.loads((Path(root) / DVC_LOCK_TABLE).read_text())
    except (OSError, ValueError):
        return None
    infos = list((table.get("write") or {}).values())
    infos += [info for readers in (table.get("read") or {}).values() for info in readers]
    for info in infos:
        if isinstance(info, dict) and isinstance(info.get("pid"), int) and info["pid"] != os.getpid() and process_alive(info["pid"]):
            return f"pid {info['pid']}: {info.get('cmd', 'dvc')}"
    return None


def refuse_if_dvc_running(root: str | os.PathLike = ".") -> None:
    running = dvc_running(root)
    if running:
        raise EngineBusy(f"`dvc repro` is running in this checkout ({running}); both engines write the same outputs",
                         "wait for it to end, or run Snakemake in another clone")


def refuse_under_dvc_if_snakemake_running() -> None:
    """Called by every `mmjsd` command: under DVC, refuse while a Snakemake run holds its lock."""
    if "DVC_STAGE" not in os.environ:
        return
    root = os.environ.get("DVC_ROOT", ".")
    if snakemake_running(root):
        raise EngineBusy(f"Snakemake is running in this checkout ({Path(root).resolve()}); both engines write the same outputs",
                         "wait for it to end, or run `dvc repro` in another clone")
