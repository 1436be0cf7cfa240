"""dvc.yaml: generated, current, and the same DAG (commands and outputs) as the Snakefile.

The end-to-end `dvc repro` (fresh git repo, no remote, no GPU; second repro a no-op; metrics
show lists every run) runs at the ci scale in tests/test_pipeline_e2e.py.
"""

import re
import subprocess

import pytest

from mmjsd.config import load_config, read_yaml
from mmjsd.dvcgen import render
from conftest import BIN, REPO


# The committed dvc.yaml is generated where ../shared/data/celeba exists, so the demo's CelebA
# ('auto') is the real subset there; tests render that choice explicitly so they hold on any machine.
COMMITTED_CELEBA_SOURCE = "folder"


def test_committed_dvc_yaml_is_current():
    expected = render(load_config(REPO / "config.yaml", "demo"), read_yaml(REPO / "config.yaml"), celeba_source=COMMITTED_CELEBA_SOURCE)
    assert (REPO / "dvc.yaml").read_text() == expected, "regenerate: mmjsd dvc-yaml --scale demo --out dvc.yaml (on a machine with ../shared/data/celeba)"


def test_auto_celeba_source_is_resolved_by_the_machine(tmp_path):
    config = load_config(REPO / "config.yaml", "demo")
    config["data"]["celeba"]["root"] = str(tmp_path / "no-images-here")
    text = render(config, read_yaml(REPO / "config.yaml"))
    assert "resolved here, once, to 'synthetic'" in text
    assert "celeba-synthesize --out data/demo/raw/celeba_synthetic" in text


def snakemake_jobs(scale: str, env) -> dict[str, set[str]]:
    """Shell command (without its log redirection) -> output files, for every job of the DAG."""
    result = subprocess.run([str(BIN / "snakemake"), "-n", "-F", "all", "--config", f"scale={scale}"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    jobs, outputs = {}, None
    for line in result.stdout.splitlines():
        if line.startswith("    output: "):
            outputs = {p.strip() for p in line[len("    output: "):].split(",")}
        elif line.startswith("Shell command: ") and not line.endswith("None"):
            command = re.sub(r" > \S+ 2>&1$", "", line[len("Shell command: "):])
            jobs[command] = outputs
    return jobs


def dvc_stages(directory) -> dict[str, set[str]]:
    from dvc.repo import Repo

    with Repo(str(directory)) as repo:
        return {stage.cmd: {str(out.def_path) for out in stage.outs} for stage in repo.index.stages}


def test_dvc_stages_match_snakemake_jobs(repo_env, tmp_path):
    """Snakemake resolves CelebA's 'auto' on this machine: compare with dvc.yaml rendered here."""
    config = load_config(REPO / "config.yaml", "demo")
    (tmp_path / "dvc.yaml").write_text(render(config, read_yaml(REPO / "config.yaml")))
    subprocess.run([str(BIN / "dvc"), "init", "--no-scm", "-q"], cwd=tmp_path, check=True, env=repo_env)
    snakemake = snakemake_jobs("demo", repo_env)
    dvc = dvc_stages(tmp_path)
    with_shared_subset = "celeba-synthesize" not in (tmp_path / "dvc.yaml").read_text()
    assert len(snakemake) == len(dvc) == (18 if with_shared_subset else 19)
    assert snakemake == dvc


def test_committed_dvc_yaml_loads_in_dvc():
    assert len(dvc_stages(REPO)) == 18


def test_stages_track_their_config_keys():
    import yaml

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert stages["train"]["params"] == [{"config.yaml": ["model", "train", "precision", "scales.demo.model", "scales.demo.train"]}]
    assert stages["train"]["metrics"][0]  # metrics.json per run
    assert stages["train"]["plots"][0]
    assert all(list(o.values())[0]["cache"] is False for o in stages["aggregate"]["outs"])


def test_paper_scale_generates(tmp_path):
    text = render(load_config(REPO / "config.yaml", "paper"), read_yaml(REPO / "config.yaml"))
    assert "dsprites-download --out data/raw/dsprites/official.npz" in text
    assert "celeba-download --root data/raw/torchvision" in text
    assert "seed:\n      - 0\n      - 1\n      - 2" in text
