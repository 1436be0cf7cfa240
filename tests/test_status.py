"""`mmjsd status`: one line per job from outputs and logs."""

from __future__ import annotations

import os
import time

from mmjsd import paths, status
from mmjsd.config import load_config


def test_states_from_outputs_and_logs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = load_config(paths.Path(__file__).resolve().parents[1] / "config.yaml", "ci")
    config["paths"] = {"data": "data", "results": "results"}
    config["datasets"], config["seeds"] = ["dsprites"], [0]
    logs = tmp_path / "logs" / "ci"
    logs.mkdir(parents=True)
    done = paths.processed(config, "dsprites", "train")
    done.parent.mkdir(parents=True)
    done.write_bytes(b"x")
    (logs / "train_dsprites_mmjsd_seed0.log").write_text(
        "epoch 3/12 step 99: loss 1 | 729 samples/s | elapsed 0:02:00 | ETA 0:13:22\n")
    (logs / "train_dsprites_mmpoe_seed0.log").write_text("mmjsd: error: loss is NaN at step 7 -- fix: lower lr\n")
    old = logs / "evaluate_dsprites_mmjsd_seed0.log"
    old.write_text("evaluate dsprites/mmjsd/seed0: device cpu\n")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    lines = {" ".join(line.split()[:2]): line for line in status.report_lines(config)}
    assert lines["prepare dsprites"].split()[2] == "done"
    assert "running  epoch 3/12, 729 samples/s, ETA 0:13:22" in lines["train dsprites/mmjsd/seed0"]
    assert "failed" in lines["train dsprites/mmpoe/seed0"] and "loss is NaN" in lines["train dsprites/mmpoe/seed0"]
    assert lines["evaluate dsprites/mmjsd/seed0"].split()[2] == "stopped"
    assert lines["aggregate table"].split()[3] == "waiting"
    assert status.report_lines(config)[-1].startswith("scale ci: 1 done, 1 failed, 1 running, 1 stopped")
