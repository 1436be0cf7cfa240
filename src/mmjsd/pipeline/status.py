"""`mmjsd status`: one line per job of a scale, read from its outputs and logs.

    mmjsd --scale repro status
    prepare           dsprites                 done
    train             dsprites/mmjsd/seed1     running  epoch 7/12, 729 samples/s, ETA 0:13:22
    evaluate          dsprites/mmjsd/seed1     waiting
    ...

A job is `running` while a live process of this checkout runs its `mmjsd` command (read from
/proc), `interrupted` when Snakemake marked it started and its outputs are missing (killed; the
line names the command that rebuilds it), `done` when its outputs exist, `failed` when its log ends in an error, and otherwise
`waiting` while a live Snakemake of this scale (also one that `dvc repro` started) holds the run:
that Snakemake starts it or resumes it, so no advice to rerun is given then. A job whose process
runs elsewhere (a cluster node) counts as `running` while its log grows (it is written at least
once a minute, train.PROGRESS_EVERY_S) and Snakemake holds the run. Only when nothing holds the
run is a job with a log or a checkpoint `stopped`, with the advice to rerun. The training line
repeats the log's last progress line (epoch, samples/s, ETA). Where /proc is missing (not Linux)
a log changed in the last RUNNING_WITHIN_S seconds counts as running.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from mmjsd.artifacts.fingerprints import rebuild_command
from mmjsd.pipeline.integrity import interrupted_outputs, lock_held, lost_outputs
from mmjsd.pipeline.jobs import Job, jobs

RUNNING_WITHIN_S = 300
PROGRESS = re.compile(r"^epoch (?P<epoch>\d+/\d+).*?\| (?P<rate>\d+) samples/s \| elapsed [\d:]+ \| ETA (?P<eta>[\d:]+)")
ERROR_MARKS = ("mmjsd: error:", "Traceback (most recent call last)", "mmjsd: interrupted")


@dataclass
class Process:
    pid: int
    argv: list[str]
    cwd: str


def live_processes() -> list[Process] | None:
    """The live processes whose working folder is this checkout (argv from /proc), or None where
    there is no /proc. Only they can hold this checkout's jobs: another clone's runs do not count."""
    proc = Path("/proc")
    if not (proc / "self" / "cmdline").exists():
        return None
    here = Path.cwd().resolve()
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode("utf-8", "replace").split("\0")[:-1]
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:      # ended meanwhile, or another user's
            continue
        if argv and cwd == here:
            found.append(Process(int(entry.name), argv, str(cwd)))
    return found


def _contains(argv: list[str], part: tuple[str, ...]) -> bool:
    return any(tuple(argv[i:i + len(part)]) == part for i in range(len(argv) - len(part) + 1))


def job_process(job: Job, scale: str, processes: list[Process]) -> Process | None:
    """The live `mmjsd --scale SCALE <job's command>` among `processes` (this checkout's), if any."""
    for process in processes:
        is_mmjsd = any(Path(arg).name == "mmjsd" for arg in process.argv[:4]) or _contains(process.argv, ("-m", "mmjsd"))
        if is_mmjsd and job.command and _contains(process.argv, ("--scale", scale)) and _contains(process.argv, job.command):
            return process
    return None


def snakemake_process(scale: str, processes: list[Process]) -> Process | None:
    """A live Snakemake run (not a dry run) of this scale among `processes` (this checkout's), if any."""
    for process in processes:
        argv = process.argv
        if not any(Path(arg).name == "snakemake" for arg in argv[:3]) or {"-n", "--dry-run", "--dryrun"} & set(argv):
            continue
        scales = [arg.split("=", 1)[1] for arg in argv if arg.startswith("scale=")]
        if (scales[-1] if scales else "paper") == scale:
            return process
    return None


def last_lines(path: Path, n: int = 20) -> list[str]:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 8192))
            return handle.read().decode("utf-8", "replace").splitlines()[-n:]
    except OSError:
        return []


def state(job: Job, now: float, scale: str = "", processes: list[Process] | None = None,
          interrupted_fix: str | None = None) -> tuple[str, str]:
    """(state, detail) of one job; `processes`: this host's live processes (None: unknown);
    `interrupted_fix`: the command that rebuilds the job when it was killed with outputs missing."""
    lines = last_lines(job.log) if job.log.is_file() else []
    progress = next((m for m in map(PROGRESS.match, reversed(lines)) if m), None)
    detail = f"epoch {progress['epoch']}, {progress['rate']} samples/s, ETA {progress['eta']}" if progress else ""
    log_recent = job.log.is_file() and now - job.log.stat().st_mtime < RUNNING_WITHIN_S
    known = processes is not None
    if known and job_process(job, scale, processes) is not None:
        return "running", detail
    if interrupted_fix is not None:
        return "interrupted", f"killed before it finished, outputs missing: run `{interrupted_fix}`"
    if all(path.exists() for path in job.outputs.values()):
        return "done", ""
    if any(mark in line for line in lines for mark in ERROR_MARKS):
        error = next((line for line in reversed(lines) if "mmjsd: error:" in line), lines[-1] if lines else "")
        return "failed", f"{error.strip()[:160]} (log: {job.log})"
    runner = snakemake_process(scale, processes) if known else None
    if log_recent and (runner is not None or not known):     # a remote job's log, or no /proc to ask
        return "running", detail
    if runner is not None:
        return "waiting", f"Snakemake (pid {runner.pid}) holds the run" if (job.log.is_file() or (job.partial is not None and job.partial.is_file())) else ""
    if job.log.is_file() or (job.partial is not None and job.partial.is_file()):
        return "stopped", (detail + "; " if detail else "") + "nothing runs it: rerun the workflow to resume"
    return "waiting", ""


def interrupted_fix(job: Job, config: dict, config_file: str, interrupted: set[Path]) -> str | None:
    """The command that rebuilds `job` when Snakemake marked it started and it never finished, with
    outputs missing (the start-up check refuses the next run with the same command)."""
    lost = lost_outputs(job, interrupted)
    return rebuild_command(config, lost[0], config_file) if lost else None


def report_lines(config: dict, now: float | None = None, config_file: str = "config.yaml") -> list[str]:
    now = time.time() if now is None else now
    lines = []
    counts: dict[str, int] = {}
    processes = live_processes()
    interrupted = set() if lock_held() else interrupted_outputs()
    for job in jobs(config):
        name, detail = state(job, now, config["scale"], processes, interrupted_fix(job, config, config_file, interrupted))
        counts[name] = counts.get(name, 0) + 1
        lines.append(f"{job.step.rule:<17} {job.name:<24} {name:<8} {detail}".rstrip())
    lines.append(f"scale {config['scale']}: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
                 + f"; logs in logs/{config['scale']}/")
    return lines


def cli_status(args: argparse.Namespace, config: dict) -> int:
    print("\n".join(report_lines(config, config_file=str(args.config))))
    return 0
