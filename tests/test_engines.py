"""One engine at a time in a checkout (mmjsd.engines): `mmjsd` under DVC refuses while Snakemake
runs, and the Snakefile refuses while DVC's lock table lists a live stage."""

import json
import os
import subprocess
import sys
import time

from conftest import BIN
from mmjsd import engines
from mmjsd.cli import main


def _holder(root):
    """A process that holds the Snakemake side's lock in `root` until killed."""
    code = f"from mmjsd import engines; import time; h = engines.hold_snakemake_lock({str(root)!r}); print('held', flush=True); time.sleep(600)"
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_mmjsd_under_dvc_refuses_while_snakemake_holds_the_checkout(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DVC_STAGE", "render")
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    assert not engines.snakemake_running(tmp_path)
    holder = _holder(tmp_path)
    try:
        assert engines.snakemake_running(tmp_path)
        code = main(["--scale", "ci", "status"])
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert code == 2 and err.startswith("mmjsd: error: Snakemake is running in this checkout") and "-- fix:" in err
        monkeypatch.delenv("DVC_STAGE")          # the same command outside DVC (a Snakemake job) runs
        assert main(["--scale", "ci", "status"]) == 0
    finally:
        holder.kill()
        holder.wait()
    assert not engines.snakemake_running(tmp_path)


def test_snakefile_refuses_while_dvc_runs_a_stage(workdir, repo_env):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        table = workdir / engines.DVC_LOCK_TABLE
        table.parent.mkdir(parents=True)
        table.write_text(json.dumps({"write": {"results/ci/x": {"pid": sleeper.pid, "cmd": "dvc repro"}}, "read": {}}))
        result = subprocess.run([str(BIN / "snakemake"), "-n", "all", "--config", "scale=ci"], cwd=workdir, env=repo_env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode != 0
        assert f"mmjsd: error: `dvc repro` is running in this checkout (pid {sleeper.pid}: dvc repro)" in result.stderr
    finally:
        sleeper.kill()
        sleeper.wait()
    time.sleep(0.1)
    assert engines.dvc_running(workdir) is None       # a dead process's entry is not a running DVC
