"""Parse-time check of the artifacts already on disk: a damaged input never costs good outputs.

Snakemake deletes a job's outputs before it reruns the job. A truncated processed split has a
new mtime, so a plain `snakemake all` reran (and first deleted) the good classifier and
evaluation files downstream of it, then failed on the damaged file. The Snakefile therefore
checks, before any job starts, that every torch file of this scale that exists is a complete zip
archive (its central directory is at the end, so a truncated file fails; this reads only the
directory, milliseconds even for the gigabyte splits). Damage inside a tensor's bytes is caught
on load by the checksums stored in checkpoints and models. The same holds for the JSON files
(a truncated eval.json would cost the tables), and for a model file that names another slot's
dataset, model or seed (a run folder copied from another seed would cost that slot's eval.json):
none of these can be repaired by the job Snakemake would start, so the run stops first.

A file that the command line asks to rebuild (`--forcerun PATH`, `-R PATH`, `--forceall`) is not
checked for damage: that is the fix these errors print, and it must work as printed. It must
still be replaceable (its folder writable, the file not immutable), since Snakemake deletes it. Snakemake 9 gives a
Snakefile no access to its DAG settings at parse time, so they are read from the command line
(`snakemake_request`).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import zipfile
from pathlib import Path

from mmjsd import paths as P
from mmjsd.data.processed import load_split
from mmjsd.errors import DataError, detail
from mmjsd.files import seal_problem, torch_load
from mmjsd.fingerprints import other_run, rebuild_command
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


def json_damage(path: str | os.PathLike) -> str | None:
    """None when `path` holds valid JSON, else why not."""
    try:
        json.loads(Path(path).read_bytes())
    except (ValueError, OSError) as exc:
        return f"it is not valid JSON ({detail(exc)})"
    return None


def eval_damage(path: str | os.PathLike, dataset: str, model: str, seed: int, scale: str) -> str | None:
    """json_damage, a JSON value that is not a sealed evaluation record (one edited by hand), and
    an eval.json that names another run (dataset, model, seed or scale): the file is parsed once."""
    try:
        record = json.loads(Path(path).read_bytes())
    except (ValueError, OSError) as exc:
        return f"it is not valid JSON ({detail(exc)})"
    problem = seal_problem(record)
    if problem:
        return problem
    other = other_run(record, {"dataset": dataset, "model": model, "seed": seed, "scale": scale})
    return f"it is the evaluation of another run ({other})" if other else None


def slot_damage(path: str | os.PathLike, dataset: str, model: str, seed: int) -> str | None:
    """None when the model file at a run's slot records that slot's dataset, model and seed (or
    records nothing to compare), else what it records. Reads the small pickled part only (mmap)."""
    try:
        blob = torch_load(path, "model file", "", mmap=True)
    except DataError:   # unreadable files are zip_damage's (or the job's) to report
        return None
    recorded = blob.get("fingerprint") if isinstance(blob, dict) else None
    if not isinstance(recorded, dict):
        return None
    other = other_run(recorded, {"dataset": dataset, "model": model, "seed": seed}, present_only=True)
    return f"it holds the model of another run ({other}), not of {dataset}/{model}/seed{seed}" if other else None


def split_damage(path: str | os.PathLike) -> str | None:
    """None when a processed split loads and matches the checksum stored in it, else why not."""
    try:
        load_split(path)
    except DataError as exc:
        return exc.problem.replace(f"processed split {path} is damaged: ", "").replace(f"processed data {path} ", "")
    return None


def newer_than_a_consumer(split: Path, consumers: list[Path]) -> bool:
    """A split changed after something built from it: Snakemake would rerun (and first delete) that."""
    mtime = split.stat().st_mtime
    return any(c.exists() and c.stat().st_mtime < mtime for c in consumers)


SNAKEMAKE_INCOMPLETE = Path(".snakemake") / "incomplete"


def interrupted_outputs(root: str | os.PathLike = ".") -> set[Path]:
    """The outputs Snakemake marked when their job started and never unmarked: the job was killed.
    Snakemake keeps one empty file per output in .snakemake/incomplete, named by the base64 of
    the output's path (its persistence module); a path is resolved from the working folder."""
    folder = Path(root) / SNAKEMAKE_INCOMPLETE
    found = set()
    for marker in folder.iterdir() if folder.is_dir() else []:
        try:
            found.add((Path(root) / base64.b64decode(marker.name).decode()).resolve())
        except (ValueError, UnicodeDecodeError):
            continue
    return found


def replace_damage(path: str | os.PathLike) -> str | None:
    """None when the pipeline could replace `path` (delete it, rename a new file onto it), else why not.
    Snakemake deletes an output before its job reruns; an immutable file (`chattr +i`) or a folder
    that cannot be written makes that a traceback inside Snakemake."""
    path = Path(path)
    if not os.access(path.parent, os.W_OK):
        return f"its folder {path.parent} cannot be written, so the file cannot be replaced"
    if os.geteuid() == 0 and not os.access(path, os.W_OK):   # root passes every permission check but these
        return "it cannot be replaced (immutable, `chattr +i`, or on a read-only file system)"
    return None


def snakemake_request(argv: list[str]) -> tuple[bool, bool, set[Path]]:
    """(dry run, force all, paths to force) from a Snakemake command line."""
    dry = force_all = False
    forced: set[Path] = set()
    taking = False
    for token in argv[1:]:
        if token.startswith("--forcerun="):
            forced.add(Path(token.split("=", 1)[1]).resolve())
            continue
        if token.startswith("-"):
            taking = token in ("--forcerun", "-R")
            if token in ("--dry-run", "--dryrun") or re.fullmatch(r"-[pqrkn]*n[pqrkn]*", token):
                dry = True
            if token in ("--forceall", "-F"):
                force_all = True
            continue
        if taking:
            forced.add(Path(token).resolve())
    return dry, force_all, forced


def json_outputs(config: dict) -> list[Path]:
    """Every JSON file a rule of this scale declares as output (runs and classifiers)."""
    out = [P.run_file(t, config, d, m, s) for t in (P.RUN_METRICS, P.RUN_SUMMARY, P.RUN_EVAL, P.RUN_EVAL_SUMMARY)
           for d in config["datasets"] for m in config["models"] for s in config["seeds"]]
    out += [P.fill(t, config, dataset=d, modality=mod) for t in (P.CLASSIFIER_METRICS, P.CLASSIFIER_SUMMARY)
            for d in config["datasets"] for mod in MODALITIES]
    return out


def torch_outputs(config: dict) -> list[Path]:
    """Every torch file the pipeline writes for this scale: processed splits, models, classifiers."""
    out = [P.processed(config, d, s) for d in config["datasets"] for s in P.SPLITS]
    out += [P.run_file(P.RUN_MODEL, config, d, m, s) for d in config["datasets"] for m in config["models"] for s in config["seeds"]]
    out += [P.fill(P.CLASSIFIER, config, dataset=d, modality=mod) for d in config["datasets"] for mod in MODALITIES]
    return out


def check_outputs(config: dict, config_file: str = "config.yaml", argv: list[str] | None = None) -> None:
    """DataError for the first damaged output of this scale (torch file, JSON file, or a model in
    another run's slot), naming the exact command that rebuilds it and what depends on it (and
    nothing else). Files the command line `argv` forces to be rebuilt are not checked."""
    _, force_all, forced = snakemake_request(argv or [])
    finals = [P.fill(t, config) for t in (P.TABLE1, P.TABLE1_MD, P.TABLE1_CELEBA, P.METRICS, P.FIGURE1, P.REPORT, P.PLOT_CURVES, P.PLOT_COHERENCE)]
    # Whatever the command line forces, Snakemake deletes what it reruns: every output must be replaceable.
    checks = [(path, replace_damage) for path in [*torch_outputs(config), *json_outputs(config), *finals]]
    if not force_all:
        evals = {P.run_file(P.RUN_EVAL, config, d, m, s) for d in config["datasets"] for m in config["models"] for s in config["seeds"]}
        checks += [(path, zip_damage) for path in torch_outputs(config)]
        checks += [(path, json_damage) for path in json_outputs(config) if path not in evals]   # eval.json: eval_damage below
        checks += [(P.run_file(P.RUN_MODEL, config, d, m, s), lambda path, d=d, m=m, s=s: slot_damage(path, d, m, s))
                   for d in config["datasets"] for m in config["models"] for s in config["seeds"]]
        checks += [(P.run_file(P.RUN_EVAL, config, d, m, s), lambda path, d=d, m=m, s=s: eval_damage(path, d, m, s, config["scale"]))
                   for d in config["datasets"] for m in config["models"] for s in config["seeds"]]
        # A killed rebuild of `prepare` leaves its splits missing while what was built from them stays:
        # Snakemake needs no missing intermediate file when the final outputs exist, and would say
        # "Nothing to be done". Its own record of the interrupted job tells this apart from splits
        # deleted on purpose after training: say what to run.
        interrupted = interrupted_outputs()
        for dataset in config["datasets"]:
            splits = [P.processed(config, dataset, name) for name in P.SPLITS]
            lost = [split for split in splits if not split.exists() and split.resolve() in interrupted]
            if lost and lost[0].resolve() not in forced:
                raise DataError(
                    f"{len(lost)} processed {dataset} split(s) are missing after an interrupted rebuild ({lost[0]} ...); "
                    f"no job was started",
                    f"rebuild them and what depends on them: `{rebuild_command(config, lost[0], config_file)}`")
        # A split edited in place (one label changed: same size, valid file) is caught by its checksum,
        # but only when read: read it here when Snakemake would rerun what was built from it.
        for dataset in config["datasets"]:
            consumers = [P.fill(P.CLASSIFIER, config, dataset=dataset, modality=m) for m in MODALITIES]
            consumers += [P.run_file(t, config, dataset, m, s) for t in (P.RUN_MODEL, P.RUN_EVAL)
                          for m in config["models"] for s in config["seeds"]]
            checks += [(split, split_damage) for split in (P.processed(config, dataset, name) for name in P.SPLITS)
                       if split.exists() and newer_than_a_consumer(split, consumers)]
    for path, damage in checks:
        if not path.exists() or (path.resolve() in forced and damage is not replace_damage):
            continue
        problem = damage(path)
        if problem is not None and damage is replace_damage:
            blocked = path if os.access(path.parent, os.W_OK) else path.parent     # the file itself, or its folder
            raise DataError(f"{path}: {problem}; no job was started",
                            f"make {'it' if blocked == path else 'its folder'} writable (`chattr -i {shlex.quote(str(blocked))}` "
                            f"if immutable, else `chmod u+w {shlex.quote(str(blocked))}`), then run again")
        if problem is not None:
            raise DataError(
                f"{path} is damaged: {problem}; no job was started, so nothing built from it was deleted",
                f"rebuild it and what depends on it: `{rebuild_command(config, path, config_file)}`")
