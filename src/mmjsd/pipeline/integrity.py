"""Checks of the artifacts on disk before any job runs: a damaged input never costs good outputs.

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
checked for damage: that is the fix these errors print, and it must work as printed. Snakemake 9
gives a Snakefile no access to its DAG settings at parse time, so mmjsd.pipeline.startup reads them
with Snakemake's own parser and passes them to `check_outputs`.

`check_planned` runs later, from `onstart`, with Snakemake's plan: every file a planned job reads
and no planned job rebuilds passes its consumer's own check, and every output a planned job
replaces can be replaced (its folder writable, the file not immutable).
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import zipfile
from pathlib import Path

from mmjsd.artifacts.fingerprints import check_eval_slot, other_run, rebuild_command
from mmjsd.core.files import seal_problem, torch_load
from mmjsd.data.processed import load_checked_split
from mmjsd.errors import DataError, detail
from mmjsd.pipeline.jobs import jobs


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


def lock_held(root: str | os.PathLike = ".") -> bool:
    """A Snakemake run holds this working folder (or a killed one left its lock for `--unlock`):
    its incomplete-output markers are then its own jobs in flight, not interrupted ones."""
    locks = Path(root) / ".snakemake" / "locks"
    return locks.is_dir() and any(locks.iterdir())


def file_outputs(table: list, suffix: str) -> list[Path]:
    """Every output file of these jobs (mmjsd.pipeline.jobs) whose name ends in `suffix`."""
    return [path for job in table if not job.step.directory for path in job.outputs.values() if path.suffix == suffix]


def lost_outputs(job, interrupted: set[Path]) -> list[Path]:
    """The outputs of `job` that Snakemake marked as started (`interrupted_outputs`) and that are missing."""
    return [path for path in job.outputs.values() if not path.exists() and path.resolve() in interrupted]


def check_outputs(config: dict, config_file: str = "config.yaml", force_all: bool = False,
                  forced: frozenset | set = frozenset()) -> None:
    """At parse time: DataError for the first damaged output of this scale (torch file, JSON file,
    an eval.json edited by hand, a model in another run's slot) or the first job killed with its
    outputs missing, naming the exact command that rebuilds it and what depends on it. Files the
    command line forces to be rebuilt (`forced`, every file with `force_all`) are not checked."""
    if force_all:
        return
    table = jobs(config)
    evals = {job.outputs["record"] for job in table if job.step.rule == "evaluate"}
    checks = [(path, zip_damage) for path in file_outputs(table, ".pt")]
    checks += [(path, json_damage) for path in file_outputs(table, ".json") if path not in evals]   # eval.json: eval_damage below
    for job in table:
        if job.step.rule == "train":
            w = job.wildcards
            checks.append((job.outputs["model"], lambda path, w=w: slot_damage(path, w["dataset"], w["model"], w["seed"])))
        if job.step.rule == "evaluate":
            w = job.wildcards
            checks.append((job.outputs["record"], lambda path, w=w: eval_damage(path, w["dataset"], w["model"], w["seed"], config["scale"])))
    for path, damage in checks:
        if not path.exists() or path.resolve() in forced:
            continue
        problem = damage(path)
        if problem is not None:
            raise DataError(
                f"{path} is damaged: {problem}; no job was started, so nothing built from it was deleted",
                f"rebuild it and what depends on it: `{rebuild_command(config, path, config_file)}`")
    # A killed job leaves its outputs missing (Snakemake deleted them before the job) while what was
    # built from them stays: Snakemake needs no missing intermediate file when the final outputs
    # exist, and would say "Nothing to be done". Its own record of the interrupted job (a marker per
    # output) tells this apart from files deleted on purpose (processed splits after training).
    if lock_held():
        return
    interrupted = interrupted_outputs()
    for job in table:
        lost = lost_outputs(job, interrupted)
        if lost and not any(path.resolve() in forced for path in job.outputs.values()):
            raise DataError(
                f"the {job.step.rule} job {job.name} was interrupted: {len(lost)} of its outputs are missing ({lost[0]}); "
                f"no job was started",
                f"rebuild them and what depends on them: `{rebuild_command(config, lost[0], config_file)}`")


def writers(config: dict) -> dict[Path, tuple]:
    """{resolved output path: (job, output name)} of every job of this scale (mmjsd.pipeline.jobs)."""
    return {out.resolve(): (job, name) for job in jobs(config) for name, out in job.outputs.items()}


def input_problem(config: dict, path: Path, config_file: str = "config.yaml", written_by: dict | None = None) -> DataError | None:
    """The refusal (one line, with its fix) of the consumer that will read `path`, found before
    Snakemake deletes that consumer's outputs; None when the file is sound or no job writes it."""
    found = (written_by if written_by is not None else writers(config)).get(path.resolve())
    if found is None:
        return None
    job, name = found
    w, rule = job.wildcards, job.step.rule
    try:
        if rule == "prepare":
            load_checked_split(config, w["dataset"], path.stem, config_file)
        elif rule == "train" and name == "model":
            from mmjsd.models import load_run_model     # torch: only when a planned job reads a model

            try:
                load_run_model(config, w["dataset"], w["model"], w["seed"])
            except DataError as exc:     # retrain it and re-evaluate what was made from it
                raise DataError(exc.problem, f"rebuild it and what depends on it: `{rebuild_command(config, path, config_file)}`") from None
        elif rule == "train_classifier" and name == "classifier":
            from mmjsd.evaluation.evaluate import load_checked_classifier

            load_checked_classifier(config, w["dataset"], w["modality"], path, config_file)
        elif rule == "evaluate" and name == "record":
            problem = eval_damage(path, w["dataset"], w["model"], w["seed"], config["scale"])
            if problem:
                raise DataError(f"{path} is damaged: {problem}", f"rebuild it: `{rebuild_command(config, path, config_file)}`")
            check_eval_slot(config, json.loads(path.read_bytes()), path, w["dataset"], w["model"], w["seed"],
                            f"rebuild it: `{rebuild_command(config, path, config_file)}`", config_file)
        elif path.suffix == ".json":
            problem = json_damage(path)
            if problem:
                raise DataError(f"{path} is damaged: {problem}", f"rebuild it: `{rebuild_command(config, path, config_file)}`")
    except DataError as exc:
        return exc
    return None


def check_planned(config: dict, config_file: str, planned: list[tuple[str, list[Path], list[Path]]]) -> None:
    """From `onstart`, with Snakemake's plan (rule, inputs, outputs of every job it will run): every
    output a planned job replaces can be replaced, and every file a planned job reads that no
    planned job rebuilds passes the check its consumer would make. Snakemake deletes a job's
    outputs before the job runs, so a refusal inside the job comes after the deletion; here nothing
    has been deleted yet. DataError otherwise."""
    rebuilt = {path.resolve() for _, _, outputs in planned for path in outputs}
    for _, _, outputs in planned:
        for path in outputs:
            problem = replace_damage(path) if path.exists() else None
            if problem is not None:
                blocked = path if os.access(path.parent, os.W_OK) else path.parent     # the file itself, or its folder
                raise DataError(f"{path}: {problem}; no job was started",
                                f"make {'it' if blocked == path else 'its folder'} writable (`chattr -i {shlex.quote(str(blocked))}` "
                                f"if immutable, else `chmod u+w {shlex.quote(str(blocked))}`), then run again")
    checked: set[Path] = set()
    written_by = writers(config)
    for rule, inputs, _ in planned:
        for path in inputs:
            resolved = path.resolve()
            if resolved in rebuilt or resolved in checked or not path.is_file():
                continue
            checked.add(resolved)
            problem = input_problem(config, path, config_file, written_by)
            if problem is not None:
                raise DataError(f"{problem.problem}; the {rule} job that reads it was not started and nothing was deleted",
                                problem.fix)
