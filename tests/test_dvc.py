"""DVC wraps Snakemake: one hand-written stage per scale runs that scale's Snakemake target.

The end-to-end checks (a bare clone with no ../shared, a second `dvc repro` that reruns nothing,
a config edit that reruns only the Snakemake jobs it feeds, DVC started beside a live Snakemake
run, the push / clone / pull / adopt-pulled round trip) run at the ci scale in
tests/test_pipeline_e2e.py.
"""

import re
import subprocess

import pytest
import yaml

from mmjsd.artifacts.steps import STEP_PARAMS
from mmjsd.config import load_config, read_yaml
from mmjsd.core import paths as P
from mmjsd.pipeline.pulled import pipeline_file, snakemake_touch_command
from conftest import BIN, REPO

SCALES = ("demo", "ci", "repro", "paper")


def stage_of(scale: str) -> dict:
    stages = yaml.safe_load((REPO / pipeline_file(scale)).read_text())["stages"]
    assert list(stages) == [scale], f"{pipeline_file(scale)} holds one stage, named after its scale"
    return stages[scale]


def declared_paths(stage: dict) -> dict[str, dict]:
    """{path: options} of every out, metric and plot of a stage."""
    found = {}
    for kind in ("outs", "metrics", "plots"):
        for entry in stage.get(kind, []):
            path, options = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
            found[path] = options or {}
    return found


@pytest.mark.parametrize("scale", SCALES)
def test_each_scale_is_one_stage_that_runs_its_snakemake_target(scale):
    stage = stage_of(scale)
    assert stage["cmd"] == f"snakemake all --config scale={scale}"
    assert stage.get("wdir") == (None if scale == "demo" else "../..")   # every stage runs from the repository root
    assert set(stage["deps"]) == {"Snakefile", "workflow", "src/mmjsd"}


@pytest.mark.parametrize("scale", SCALES)
def test_a_stage_tracks_every_config_key_a_step_reads(scale):
    """The stage's params cover every key of STEP_PARAMS (by its top-level section) and the scale's
    overlay, so `dvc params diff` and `dvc exp run -S` see every setting that changes an output."""
    (params,) = stage_of(scale)["params"]
    keys = set(params["config.yaml"])
    sections = {entry.split(".")[0] for step in STEP_PARAMS.values() for entry in step}
    assert sections <= keys, sections - keys
    raw = read_yaml(REPO / "config.yaml")
    assert (f"scales.{scale}" in keys) == (scale in raw["scales"])
    assert "resources" not in keys and "scale" not in keys     # requests change no output


@pytest.mark.parametrize("scale", SCALES)
def test_a_stage_declares_every_folder_and_file_the_scale_writes(scale):
    config = load_config(REPO / "config.yaml", scale)
    declared = declared_paths(stage_of(scale))
    data = config["paths"]["data"]
    data_outs = [d for d in declared if d == data or d.startswith(data + "/")]
    assert data_outs, f"{scale}: its data folder is not an out"
    for dataset in config["datasets"]:
        for split in P.SPLITS:
            assert any(str(P.processed(config, dataset, split)).startswith(d + "/") for d in data_outs)
    results = config["paths"]["results"]
    expected = [f"{results}/classifiers", f"{results}/runs"] + [str(P.fill(t, config)) for t in (
        P.TABLE1, P.TABLE1_MD, P.TABLE1_CELEBA, P.FIGURE1, P.REPORT, P.METRICS, P.PLOT_CURVES, P.PLOT_COHERENCE)]
    assert sorted(set(declared) - set(data_outs)) == sorted(expected)
    assert all(options.get("persist") is True for options in declared.values()), "DVC must delete nothing before Snakemake runs"
    # results/repro is committed to git; every other scale's results are DVC's to cache
    assert all(options.get("cache", True) is (scale != "repro") for path, options in declared.items() if path not in data_outs)
    assert stage_of(scale)["metrics"] == [{str(P.fill(P.METRICS, config)): declared[str(P.fill(P.METRICS, config))]}]


def test_dvc_loads_the_four_stages_with_no_overlapping_outputs():
    from dvc.repo import Repo

    with Repo(str(REPO)) as repo:
        stages = {stage.name: stage.relpath for stage in repo.index.stages}
    assert stages == {"demo": "dvc.yaml", "ci": "pipelines/ci/dvc.yaml", "repro": "pipelines/repro/dvc.yaml",
                      "paper": "pipelines/paper/dvc.yaml"}


def test_no_stage_depends_on_the_shared_folder():
    """A bare CI runner has no ../shared: CelebA's `auto` source is Snakemake's to resolve."""
    for scale in SCALES:
        assert "shared" not in (REPO / pipeline_file(scale)).read_text().split("stages:")[1]


def test_adopt_pulled_lets_snakemake_touch_the_whole_scale():
    command = snakemake_touch_command("ci", "config.yaml")
    assert command[1:] == ["all", "--config", "scale=ci", "--touch", "--forceall", "--cores", "1", "--quiet"]
    assert snakemake_touch_command("ci", "my config.yaml")[1:4] == ["all", "--configfile", "my config.yaml"]


def test_dvc_plots_output_is_ignored_by_git():
    """`dvc plots show` writes dvc_plots/index.html into the repository."""
    result = subprocess.run(["git", "check-ignore", "-q", "dvc_plots/index.html"], cwd=REPO)
    assert result.returncode == 0


# Issue 13 item 9: a config key reruns exactly the steps that read it (Snakemake's params; the
# end-to-end job counts are in tests/test_pipeline_e2e.py).
RERUNS = [
    ("eval.figure.texts", {"figure", "evaluate@celeba"}),      # dSprites' evaluation never reads them
    ("eval.batch_size", {"evaluate"}),
    ("train.adam_betas", {"train"}),
    ("train.checkpoint_every_epochs", set()),
    ("train.threads", set()),
    ("precision.cpu", {"train", "train_classifier", "evaluate"}),
    ("model.celeba.beta", {"train@celeba"}),
    ("classifier.dsprites.lr", {"train_classifier@dsprites"}),
    ("data.celeba.seed", {"prepare@celeba"}),
]


def _reads(params: list[str], key: str) -> bool:
    return any(key == p or key.startswith(p + ".") or p.startswith(key + ".") for p in params)


@pytest.mark.parametrize("key, wanted", RERUNS)
def test_snakemake_params_hold_exactly_the_keys_each_job_reads(key, wanted):
    from mmjsd.artifacts.steps import step_settings

    config = load_config(REPO / "config.yaml", "paper")
    for step in STEP_PARAMS:
        if step in ("dsprites_render", "celeba_synthesize"):
            continue
        for dataset in ("dsprites", "celeba"):
            keys = list(step_settings(config, step, dataset))
            expected = step in wanted or f"{step}@{dataset}" in wanted
            assert _reads(keys, key) == expected, (step, dataset, keys)


def test_snakemake_lists_the_code_each_step_runs(workdir, repo_env):
    """A change to a file a step runs reruns it (and what follows): the files are its inputs."""
    from mmjsd.artifacts.steps import code_paths

    dry = subprocess.run([str(BIN / "snakemake"), "-n", "-F", "results/ci/runs/dsprites/mmjsd/seed0/model.pt",
                          "--config", "scale=ci"], cwd=workdir, env=repo_env, capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr[-2000:]
    train_inputs = next(line for line in dry.stdout.splitlines() if line.strip().startswith("input:") and "train.pt" in line)
    assert all(path in train_inputs for path in code_paths("train")), train_inputs
    assert re.search(r"src/mmjsd/networks/dsprites\.py", train_inputs)
