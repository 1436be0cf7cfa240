"""A real SLURM: the `ci` DAG through profiles/slurm-cpu on a single-node cluster started from
Debian's packages (workflow/slurm/start_local_slurm.sh), against a local run of the same copy.

- The tables (table1.csv, table1_celeba.csv, table1.md) of the SLURM run equal the local run's
  byte for byte.
- The cluster rules really went through SLURM: one plugin log per job under
  .snakemake/slurm_logs, and `scontrol show job` (MinJobAge keeps finished jobs; there is no
  accounting for sacct) knows each one as COMPLETED in this run's folder; the light rules
  (`localrules`) did not go there.
- Each job booked what the ci scale asks for: its CPUs equal the threads of its shell line
  (`--threads N`), its memory and time limit are scales.ci.resources.
- The per-job re-parse of the Snakefile is harmless: the submitting process's checks and notes
  (the GPU-pool line) appear in no job's log.

Needs root (packages, /etc/munge, /etc/slurm, daemons): run by `.ci/run` as root; skipped with
the reason elsewhere, and where apt-get cannot install slurm-wlm and munge.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import BIN, REPO

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

SCRIPTS = REPO / "workflow" / "slurm"
TABLES = ("table1.csv", "table1_celeba.csv", "table1.md")
CLUSTER_JOBS = {"prepare": 2, "train": 4, "train_classifier": 4, "evaluate": 4}   # the rest are localrules


def _alive(pidfile):
    try:
        os.kill(int(Path(pidfile).read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


@pytest.fixture(scope="module")
def cluster():
    """A running single-node SLURM (started here, and stopped again, unless it already ran)."""
    if os.geteuid() != 0:
        pytest.skip("needs root: workflow/slurm/start_local_slurm.sh installs slurm-wlm and munge and starts their daemons")
    if shutil.which("sbatch") is None and shutil.which("apt-get") is None:
        pytest.skip("sbatch is missing and cannot be installed here (no apt-get)")
    already = _alive("/run/slurmctld.pid") and _alive("/run/slurmd.pid")
    result = subprocess.run(["bash", str(SCRIPTS / "start_local_slurm.sh")], capture_output=True, text=True, timeout=900)
    last = (result.stderr.strip().splitlines() or [""])[-1]
    if result.returncode == 3:
        pytest.skip(f"slurm-wlm and munge cannot be installed (apt-get/network unavailable): {last}")
    if result.returncode == 4:
        pytest.skip(f"not touching this machine's own SLURM: {last}")
    assert result.returncode == 0, result.stdout + result.stderr
    version = subprocess.run(["sinfo", "-V"], capture_output=True, text=True, check=True).stdout.strip()
    yield version
    if not already:
        subprocess.run(["bash", str(SCRIPTS / "stop_local_slurm.sh")], capture_output=True, text=True, timeout=120)


def _copy_workflow(dest):
    for item in ("Snakefile", "config.yaml"):
        shutil.copy(REPO / item, dest / item)
    for item in ("workflow", "profiles"):
        shutil.copytree(REPO / item, dest / item)
    (dest / "src").symlink_to(REPO / "src")


def _snakemake(workdir, env, *args):
    started = time.monotonic()
    result = subprocess.run([str(BIN / "snakemake"), "all", "--config", "scale=ci", *args], cwd=workdir, env=env,
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result, time.monotonic() - started


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    # Jobs run this checkout's `mmjsd` (sbatch --export=ALL carries PATH and PYTHONPATH into the job).
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHONPATH=os.pathsep.join([str(REPO / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]))
    local, slurm = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("slurm")
    for workdir in (local, slurm):
        _copy_workflow(workdir)
    _snakemake(local, env, "--cores", "2")
    # `--workflow-profile none`: profiles/default's `cores: all` would cap the cluster run at this
    # host's CPUs (docs/USAGE.md). The status checks start after 5 s, not 40, to keep the test short.
    result, seconds = _snakemake(slurm, env, "--profile", "profiles/slurm-cpu", "--workflow-profile", "none",
                                 "--slurm-keep-successful-logs", "--slurm-init-seconds-before-status-checks", "5")
    print(f"\nSLURM run of the ci DAG: {seconds:.0f} s wall ({cluster})", file=sys.stderr)
    return local, slurm, result


def _scontrol(jobid):
    out = subprocess.run(["scontrol", "-o", "show", "job", jobid], capture_output=True, text=True, check=True).stdout
    return dict(re.findall(r"(\S+?)=(\S*)", out))


def test_slurm_tables_equal_the_local_run_byte_for_byte(runs):
    local, slurm, _ = runs
    for name in TABLES:
        produced = slurm / "results" / "ci" / name
        assert produced.stat().st_size > 0, name
        assert produced.read_bytes() == (local / "results" / "ci" / name).read_bytes(), name
    assert not list(slurm.rglob("*.tmp"))


def test_jobs_went_through_slurm_with_the_ci_requests(runs):
    _, slurm, _ = runs
    ci = yaml.safe_load((REPO / "config.yaml").read_text())["scales"]["ci"]
    logs = sorted((slurm / ".snakemake" / "slurm_logs").glob("rule_*/*/*.log"))
    per_rule = {}
    for log in logs:
        per_rule.setdefault(log.parent.parent.name.removeprefix("rule_"), []).append(log)
    assert {rule: len(found) for rule, found in per_rule.items()} == CLUSTER_JOBS
    for rule, found in per_rule.items():
        requests = ci["resources"][rule]
        for log in found:
            job = _scontrol(log.stem)   # the plugin names each log after its SLURM job id
            assert job["JobState"] == "COMPLETED" and job["WorkDir"] == str(slurm), (log, job)
            assert job["Comment"].startswith(f"rule_{rule}_wildcards_"), job["Comment"]
            text = log.read_text()
            shell = [line for line in text.splitlines() if line.startswith("Shell command: mmjsd ")]
            assert shell, text[-2000:]
            threads = re.search(r" --threads (\d+)", shell[-1])
            assert threads or rule == "prepare", shell[-1]   # prepare has no threads: Snakemake's 1
            threads = int(threads.group(1)) if threads else 1
            assert int(job["CPUs/Task"]) == threads == int(job["NumCPUs"]), (log, job["CPUs/Task"], shell[-1])
            assert job["MinMemoryNode"] == f"{requests['mem_mb']}M", (log, job["MinMemoryNode"])
            assert job["TimeLimit"] == f"00:{requests['runtime_min']:02d}:00", (log, job["TimeLimit"])
            # The re-parse inside the job skips what only the submitting process does.
            assert "mmjsd: GPU pool" not in text and "mmjsd: error" not in text, text[-2000:]
    assert threads == ci["train"]["threads"]


def test_light_rules_ran_on_the_submit_host(runs):
    _, slurm, result = runs
    out = result.stdout + result.stderr
    for rule in ("dsprites_render", "celeba_synthesize", "aggregate", "plots", "figure", "report"):
        assert f"localrule {rule}:" in out, rule
    assert "mmjsd: GPU pool" in out   # printed once, by the submitting process
