"""`mmjsd status`: one line per job of a scale, read from its outputs and logs.

    mmjsd --scale repro status
    prepare   dsprites                done
    train     dsprites/mmjsd/seed1    running  epoch 7/12, 729 samples/s, ETA 0:13:22
    evaluate  dsprites/mmjsd/seed1    waiting
    ...

A job is `done` when its output exists, `failed` when its log ends in an error and the output
does not exist, `running` when its log changed in the last RUNNING_WITHIN_S seconds, `stopped`
when it has a log (or, for training, a checkpoint) but is none of these, else `waiting`. The
training line repeats the log's last progress line (epoch, samples/s, ETA). It reads files only:
it works beside a running Snakemake (also one that `dvc repro` started), and on its logs in logs/<scale>/.
"""

from __future__ import annotations

import argparse
import re
import time
from dataclasses import dataclass
from pathlib import Path

from mmjsd import paths
from mmjsd.vocabulary import MODALITIES

RUNNING_WITHIN_S = 300
PROGRESS = re.compile(r"^epoch (?P<epoch>\d+/\d+).*?\| (?P<rate>\d+) samples/s \| elapsed [\d:]+ \| ETA (?P<eta>[\d:]+)")
ERROR_MARKS = ("mmjsd: error:", "Traceback (most recent call last)", "mmjsd: interrupted")


@dataclass
class Job:
    step: str
    name: str
    output: Path
    log: Path
    partial: Path | None = None     # what an unfinished job leaves (a training checkpoint)


def log_file(config: dict, name: str) -> Path:
    """The log a Snakemake rule (workflow/rules/*.smk) writes for a job."""
    return Path("logs") / config["scale"] / f"{name}.log"


def jobs(config: dict) -> list[Job]:
    """Every job of the scale, in the order the pipeline runs them."""
    out: list[Job] = []
    for dataset in config["datasets"]:
        out.append(Job("prepare", dataset, paths.processed(config, dataset, "train"), log_file(config, f"prepare_{dataset}")))
    for dataset in config["datasets"]:
        for modality in MODALITIES:
            out.append(Job("classifier", f"{dataset}/{modality}",
                           paths.fill(paths.CLASSIFIER_METRICS, config, dataset=dataset, modality=modality),
                           log_file(config, f"classifier_{dataset}_{modality}")))
    runs = [(d, m, s) for d in config["datasets"] for m in config["models"] for s in config["seeds"]]
    for dataset, model, seed in runs:
        out.append(Job("train", f"{dataset}/{model}/seed{seed}", paths.run_file(paths.RUN_MODEL, config, dataset, model, seed),
                       log_file(config, f"train_{dataset}_{model}_seed{seed}"),
                       paths.run_file(paths.RUN_CHECKPOINT, config, dataset, model, seed)))
    for dataset, model, seed in runs:
        out.append(Job("evaluate", f"{dataset}/{model}/seed{seed}", paths.run_file(paths.RUN_EVAL, config, dataset, model, seed),
                       log_file(config, f"evaluate_{dataset}_{model}_seed{seed}")))
    out.append(Job("aggregate", "table 1", paths.fill(paths.TABLE1, config), log_file(config, "aggregate")))
    if "celeba" in config["datasets"]:
        out.append(Job("figure", "figure 1", paths.fill(paths.FIGURE1, config), log_file(config, "figure")))
    out.append(Job("report", "report.md", paths.fill(paths.REPORT, config), log_file(config, "report")))
    return out


def last_lines(path: Path, n: int = 20) -> list[str]:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 8192))
            return handle.read().decode("utf-8", "replace").splitlines()[-n:]
    except OSError:
        return []


def state(job: Job, now: float) -> tuple[str, str]:
    """(state, detail) of one job."""
    lines = last_lines(job.log) if job.log.is_file() else []
    progress = next((m for m in map(PROGRESS.match, reversed(lines)) if m), None)
    detail = f"epoch {progress['epoch']}, {progress['rate']} samples/s, ETA {progress['eta']}" if progress else ""
    if job.output.is_file():
        return "done", ""
    if any(mark in line for line in lines for mark in ERROR_MARKS):
        error = next((line for line in reversed(lines) if "mmjsd: error:" in line), lines[-1] if lines else "")
        return "failed", f"{error.strip()[:160]} (log: {job.log})"
    if job.log.is_file() and now - job.log.stat().st_mtime < RUNNING_WITHIN_S:
        return "running", detail
    if job.log.is_file() or (job.partial is not None and job.partial.is_file()):
        return "stopped", (detail + "; " if detail else "") + "rerun the workflow to resume"
    return "waiting", ""


def report_lines(config: dict, now: float | None = None) -> list[str]:
    now = time.time() if now is None else now
    lines = []
    counts: dict[str, int] = {}
    for job in jobs(config):
        name, detail = state(job, now)
        counts[name] = counts.get(name, 0) + 1
        lines.append(f"{job.step:<10} {job.name:<24} {name:<8} {detail}".rstrip())
    lines.append(f"scale {config['scale']}: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
                 + f"; logs in logs/{config['scale']}/")
    return lines


def cli_status(args: argparse.Namespace, config: dict) -> int:
    print("\n".join(report_lines(config)))
    return 0
