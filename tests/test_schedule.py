"""Training jobs start longest first: the estimate behind the priorities, and the DAG that uses them."""

import re
import subprocess

from conftest import BIN

from mmjsd.config import load_config
from mmjsd.pipeline.schedule import train_priority, training_cost, training_rows


def _priorities(config):
    return {(d, m): train_priority(config, d, m) for d in config["datasets"] for m in config["models"]}


def test_costliest_training_job_gets_the_highest_priority():
    config = load_config("config.yaml", "repro")
    config["train"]["dsprites"]["epochs"] = 12
    config["data"]["celeba"]["source"] = "folder"   # as here, with the shared subset ('auto' finds it)
    priorities = _priorities(config)
    assert sorted(priorities.values()) == [10, 11, 12, 13]
    # the fourth repro run's longest job (dSprites mmPoE, 35 min) first, its shortest last
    assert max(priorities, key=priorities.get) == ("dsprites", "mmpoe")
    assert min(priorities, key=priorities.get) == ("celeba", "mmjsd")
    assert training_rows(config, "dsprites") == 108_000 and training_rows(config, "celeba") == 18_000


def test_more_epochs_move_a_dataset_up():
    """Epochs raise both of a dataset's jobs above the other dataset's, whichever CelebA source
    this machine resolves ('auto': the shared subset here, synthetic faces on CI)."""
    config = load_config("config.yaml", "demo")
    config["train"]["dsprites"]["epochs"] = 100
    priorities = _priorities(config)
    assert {priorities[("dsprites", "mmjsd")], priorities[("dsprites", "mmpoe")]} == {12, 13}
    assert training_cost(config, "dsprites", "mmpoe") > training_cost(config, "dsprites", "mmjsd")


def test_synthetic_faces_are_counted_as_generated():
    config = load_config("config.yaml", "repro")
    config["data"]["celeba"]["source"] = "synthetic"
    assert training_rows(config, "celeba") == int(config["data"]["celeba"]["synthetic_count"] * 0.9)


def test_max_train_samples_caps_the_estimate():
    config = load_config("config.yaml", "demo")
    config["train"]["celeba"]["max_train_samples"] = 100
    assert training_rows(config, "celeba") == 100


def test_the_train_rule_takes_these_priorities(workdir, repo_env, monkeypatch):
    result = subprocess.run([str(BIN / "snakemake"), "-n", "all", "--config", "scale=demo"], cwd=workdir, env=repo_env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    blocks = result.stdout.split("rule ")
    train = {tuple(re.search(r"dataset=(\w+), model=(\w+)", b).groups()): int(re.search(r"priority: (\d+)", b).group(1))
             for b in blocks if b.startswith("train:")}
    monkeypatch.chdir(workdir)   # where Snakemake ran: CelebA's 'auto' source resolves from there
    assert train == _priorities(load_config("config.yaml", "demo"))
