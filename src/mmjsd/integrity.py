"""Parse-time check of the artifacts already on disk (issue 15 item 2): a damaged input never
costs good outputs.

Snakemake deletes a job's outputs before it reruns the job. A truncated processed split has a
new mtime, so a plain `snakemake all` reran (and first deleted) the good classifier and
evaluation files downstream of it, then failed on the damaged file. The Snakefile therefore
checks, before any job starts, that every torch file of this scale that exists is a complete zip
archive (its central directory is at the end, so a truncated file fails; this reads only the
directory, milliseconds even for the gigabyte splits). Damage inside a tensor's bytes is caught
on load by the checksums stored in checkpoints and models.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from mmjsd import paths as P
from mmjsd.errors import DataError, detail
from mmjsd.fingerprints import rebuild_command
from mmjsd.vocabulary import MODALITIES


def zip_damage(path: str | os.PathLike) -> str | None:
    """None when `path` is a complete zip archive (every member's data inside the file), else why not."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size == 0:
            return "it is empty (0 bytes)"
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.header_offset + info.compress_size > size:
                    return f"member {info.filename} runs past the end of the file (truncated)"
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return f"it is not a complete torch file ({detail(exc)})"
    return None


def torch_outputs(config: dict) -> list[Path]:
    """Every torch file the pipeline writes for this scale: processed splits, models, classifiers."""
    out = [P.processed(config, d, s) for d in config["datasets"] for s in P.SPLITS]
    out += [P.run_file(P.RUN_MODEL, config, d, m, s) for d in config["datasets"] for m in config["models"] for s in config["seeds"]]
    out += [P.fill(P.CLASSIFIER, config, dataset=d, modality=mod) for d in config["datasets"] for mod in MODALITIES]
    return out


def check_outputs(config: dict, config_file: str = "config.yaml") -> None:
    """DataError for the first damaged torch file of this scale, naming the exact command that
    rebuilds it and what depends on it (and nothing else)."""
    for path in torch_outputs(config):
        if not path.exists():
            continue
        problem = zip_damage(path)
        if problem is not None:
            raise DataError(
                f"{path} is damaged: {problem}; no job was started, so nothing built from it was deleted",
                f"rebuild it and what depends on it: `{rebuild_command(config, path, config_file)}`")
