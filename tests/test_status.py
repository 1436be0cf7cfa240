"""`mmjsd status`: one line per job from outputs, logs and the live processes of this checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from mmjsd.config import load_config
from mmjsd.core import paths
from mmjsd.pipeline import status


def _scale_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(paths.Path(__file__).resolve().parents[1] / "config.yaml", "ci")
    config["paths"] = {"data": "data", "results": "results"}
    config["datasets"], config["seeds"] = ["dsprites"], [0]
    logs = tmp_path / "logs" / "ci"
    logs.mkdir(parents=True)
    return config, logs


def _sleeper(cwd, *argv, program=None):
    """A live process of this checkout whose command line reads like `argv`."""
    if program is None:
        return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", *argv], cwd=cwd)
    program.parent.mkdir(parents=True, exist_ok=True)
    program.write_text("import time\ntime.sleep(120)\n")
    return subprocess.Popen([sys.executable, str(program), *argv], cwd=cwd)


def _lines(config):
    return {" ".join(line.split()[:2]): line for line in status.report_lines(config)}


@pytest.mark.skipif(status.live_processes() is None, reason="needs /proc (Linux)")
def test_states_from_outputs_logs_and_live_processes(tmp_path, monkeypatch):
    config, logs = _scale_config(tmp_path, monkeypatch)
    for split in paths.SPLITS:       # prepare is done when all its outputs exist
        done = paths.processed(config, "dsprites", split)
        done.parent.mkdir(parents=True, exist_ok=True)
        done.write_bytes(b"x")
    (logs / "train_dsprites_mmjsd_seed0.log").write_text(
        "epoch 3/12 batch 500/1519 (in progress): loss so far 612 | 729 samples/s | elapsed 0:02:00 | ETA 0:13:22\n")
    os.utime(logs / "train_dsprites_mmjsd_seed0.log", (time.time() - 3600, time.time() - 3600))   # silent for an hour
    (logs / "train_dsprites_mmpoe_seed0.log").write_text("mmjsd: error: loss is NaN at step 7 -- fix: lower lr\n")
    (logs / "evaluate_dsprites_mmjsd_seed0.log").write_text("evaluate dsprites/mmjsd/seed0: device cpu\n")   # fresh, but nothing runs it
    training = _sleeper(tmp_path, "mmjsd", "--config", "config.yaml", "--scale", "ci", "train", "--dataset", "dsprites",
                        "--model", "mmjsd", "--seed", "0", "--threads", "1")
    elsewhere = _sleeper(tmp_path.parent, "mmjsd", "--scale", "ci", "train", "--dataset", "dsprites", "--model", "mmpoe", "--seed", "0")
    try:
        time.sleep(0.2)
        lines = _lines(config)
    finally:
        for process in (training, elsewhere):
            process.kill()
            process.wait()
    assert lines["prepare dsprites"].split()[2] == "done"
    # its process lives, though its log was silent for an hour (a long epoch)
    assert "running  epoch 3/12, 729 samples/s, ETA 0:13:22" in lines["train dsprites/mmjsd/seed0"]
    # another checkout's process of the same job does not count
    assert "failed" in lines["train dsprites/mmpoe/seed0"] and "loss is NaN" in lines["train dsprites/mmpoe/seed0"]
    assert lines["evaluate dsprites/mmjsd/seed0"].split()[2] == "stopped" and "rerun" in lines["evaluate dsprites/mmjsd/seed0"]
    assert lines["aggregate table"].split()[3] == "waiting"
    # its process gone, the training job with its silent log is stopped too
    assert status.report_lines(config)[-1].startswith("scale ci: 1 done, 1 failed, 2 stopped")


@pytest.mark.skipif(status.live_processes() is None, reason="needs /proc (Linux)")
def test_a_job_held_by_a_live_snakemake_is_never_stopped(tmp_path, monkeypatch):
    """Between two jobs, or with a job on a cluster node, the run is Snakemake's: no advice to rerun
    (following it would start a second run)."""
    config, logs = _scale_config(tmp_path, monkeypatch)
    checkpoint = paths.run_file(paths.RUN_CHECKPOINT, config, "dsprites", "mmjsd", 0)
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"x")
    old = logs / "train_dsprites_mmpoe_seed0.log"
    old.write_text("epoch 1/1 step 9: loss 1 | 729 samples/s | elapsed 0:02:00 | ETA 0:00:00\n")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    (logs / "evaluate_dsprites_mmjsd_seed0.log").write_text("evaluate dsprites/mmjsd/seed0: device cpu\n")  # a cluster job's log, growing
    runner = _sleeper(tmp_path, "all", "--config", "scale=ci", program=tmp_path / "bin" / "snakemake")
    try:
        time.sleep(0.2)
        lines = _lines(config)
    finally:
        runner.kill()
    for job in ("train dsprites/mmjsd/seed0", "train dsprites/mmpoe/seed0"):
        assert lines[job].split()[2] == "waiting" and f"Snakemake (pid {runner.pid}) holds the run" in lines[job], lines[job]
        assert "rerun" not in lines[job]
    assert lines["evaluate dsprites/mmjsd/seed0"].split()[2] == "running"
    runner.wait()
    after = _lines(config)
    assert after["train dsprites/mmjsd/seed0"].split()[2] == "stopped" and "rerun" in after["train dsprites/mmjsd/seed0"]


def test_without_proc_a_recent_log_counts_as_running(tmp_path, monkeypatch):
    config, logs = _scale_config(tmp_path, monkeypatch)
    (logs / "train_dsprites_mmjsd_seed0.log").write_text("epoch 3/12 step 99: loss 1 | 729 samples/s | elapsed 0:02:00 | ETA 0:13:22\n")
    job = next(j for j in status.jobs(config) if j.name == "dsprites/mmjsd/seed0" and j.step.rule == "train")
    assert status.state(job, time.time(), "ci", None)[0] == "running"
    assert status.state(job, time.time() + 3600, "ci", None)[0] == "stopped"
