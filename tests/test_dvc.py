"""dvc.yaml: generated, current, and the same DAG (commands and outputs) as the Snakefile.

The end-to-end `dvc repro` (fresh git repo, no remote, no GPU; second repro a no-op; metrics
show lists every run) runs at the ci scale in tests/test_pipeline_e2e.py.
"""

import re
import subprocess

import pytest
import yaml

from mmjsd.config import load_config, read_yaml
from mmjsd.dvcgen import pipeline_file, render
from mmjsd.steps import code_paths
from conftest import BIN, REPO


# The committed pipelines are generated where ../shared/data/celeba exists, so a scale whose CelebA
# is 'auto' (demo, repro) uses the real subset there; tests render that choice explicitly so they
# hold on any machine.
COMMITTED_CELEBA_SOURCE = "folder"
SCALES = ("demo", "ci", "repro", "paper")


@pytest.mark.parametrize("scale", SCALES)
def test_committed_pipeline_of_every_scale_is_current(scale):
    expected = render(load_config(REPO / "config.yaml", scale), read_yaml(REPO / "config.yaml"), celeba_source=COMMITTED_CELEBA_SOURCE)
    out = pipeline_file(scale)
    assert (REPO / out).read_text() == expected, f"regenerate: mmjsd --scale {scale} dvc-yaml --out {out} (on a machine with ../shared/data/celeba)"


def test_the_demo_is_the_root_pipeline_and_every_other_scale_runs_from_the_root():
    """A bare `dvc repro` (default target ./dvc.yaml) runs the demo; another scale's file sits in
    pipelines/<scale>/ and runs its stages from the repository root, so no scale rewrites another's file."""
    assert pipeline_file("demo") == "dvc.yaml"
    root_stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert all("wdir" not in stage and "wdir" not in stage.get("do", {}) for stage in root_stages.values())
    for scale in ("ci", "repro", "paper"):
        assert pipeline_file(scale) == f"pipelines/{scale}/dvc.yaml"
        stages = yaml.safe_load((REPO / pipeline_file(scale)).read_text())["stages"]
        assert all((stage.get("do") or stage)["wdir"] == "../.." for stage in stages.values())
        assert f"--scale {scale} " in stages["aggregate"]["cmd"]


def test_every_stage_of_a_pipeline_file_runs_from_the_repository_root(monkeypatch):
    monkeypatch.chdir(REPO)
    config, raw = load_config(REPO / "config.yaml", "ci"), read_yaml(REPO / "config.yaml")
    for out, wdir in (("dvc.yaml", None), ("pipelines/ci/dvc.yaml", "../.."), ("a/b/c/dvc.yaml", "../../.."),
                      (str(REPO / "pipelines" / "ci" / "dvc.yaml"), "../..")):
        stages = yaml.safe_load(render(config, raw, out=out))["stages"]
        assert {(stage.get("do") or stage).get("wdir") for stage in stages.values()} == {wdir}, out


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
    assert len(snakemake) == len(dvc) == (19 if with_shared_subset else 20)
    assert snakemake == dvc


def test_committed_pipelines_load_in_dvc():
    from dvc.repo import Repo

    with Repo(str(REPO)) as repo:
        per_file = {}
        for stage in repo.index.stages:
            per_file[stage.relpath] = per_file.get(stage.relpath, 0) + 1
    # demo (one seed) and repro (three): the shared CelebA subset, no synthesize stage; ci: synthetic
    # faces; paper: both downloads, three seeds. 2 x 2 x seeds train and evaluate stages each.
    assert per_file == {"dvc.yaml": 19, "pipelines/ci/dvc.yaml": 20, "pipelines/repro/dvc.yaml": 35,
                        "pipelines/paper/dvc.yaml": 36}, per_file


def test_stages_track_their_config_keys():
    import yaml

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert stages["train"]["params"] == [{"config.yaml": [
        "model.${item.dataset}", "train.${item.dataset}", "train.adam_betas", "precision",
        "scales.demo.model.${item.dataset}", "scales.demo.train.${item.dataset}", "scales.demo.precision"]}]
    assert stages["train"]["metrics"] == [{"results/demo/runs/${item.dataset}/${item.model}/seed${item.seed}/summary.json": {"cache": False}}]
    assert [list(p)[0] for p in stages["plots"]["plots"]] == ["results/demo/plots/curves.png", "results/demo/plots/coherence.png"]
    assert "plots" not in stages["train"]        # no CDN-rendered template plots: the page works offline
    assert all(list(o.values())[0]["cache"] is False for o in stages["aggregate"]["outs"])


def test_paper_scale_generates(tmp_path):
    text = render(load_config(REPO / "config.yaml", "paper"), read_yaml(REPO / "config.yaml"))
    assert "dsprites-download --out data/raw/dsprites/official.npz" in text
    assert "celeba-download --root data/raw/torchvision" in text
    assert "seed:\n      - 0\n      - 1\n      - 2" in text


# Issue 13 item 9: a config key reruns exactly the steps that read it, in both tools.
# (key changed, the jobs it must rerun directly: "step" for all of its jobs, "step@dataset" for one dataset's)
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


def _expected(stage_name: str, dataset: str | None, wanted: set) -> bool:
    return stage_name in wanted or (dataset is not None and f"{stage_name}@{dataset}" in wanted)


@pytest.mark.parametrize("key, wanted", RERUNS)
def test_dvc_stages_depend_on_exactly_the_keys_they_read(key, wanted):
    """DVC's own resolution of dvc.yaml's templated params (paper scale: no overlay)."""
    import tempfile
    from pathlib import Path

    from dvc.dependency.param import ParamsDependency

    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / "dvc.yaml").write_text(render(load_config(REPO / "config.yaml", "paper"), read_yaml(REPO / "config.yaml")))
        subprocess.run([str(BIN / "dvc"), "init", "--no-scm", "-q"], cwd=directory, check=True)
        from dvc.repo import Repo

        with Repo(directory) as repo:
            for stage in repo.index.stages:
                params = [p for dep in stage.deps if isinstance(dep, ParamsDependency) for p in dep.params]
                dataset = next((d for d in ("dsprites", "celeba") if d in stage.name.split("@")[-1]), None)
                base = stage.name.split("@")[0].removesuffix(f"_{dataset}")     # evaluate_celeba: one dataset's stage
                assert _reads(params, key) == _expected(base, dataset, wanted), (stage.name, params)


@pytest.mark.parametrize("key, wanted", RERUNS)
def test_snakemake_params_hold_exactly_the_keys_each_job_reads(key, wanted):
    """The Snakefile's params come from the same STEP_PARAMS (the e2e test reruns through Snakemake)."""
    from mmjsd.steps import STEP_PARAMS, step_settings

    config = load_config(REPO / "config.yaml", "paper")
    for step in STEP_PARAMS:
        for dataset in ("dsprites", "celeba"):
            keys = list(step_settings(config, step, dataset))
            expected = _expected(step, dataset, wanted) and (step not in ("dsprites_render", "celeba_synthesize")
                                                             or step.startswith(dataset[:6]))
            assert _reads(keys, key) == expected or step in ("dsprites_render", "celeba_synthesize"), (step, dataset, keys)


def test_dvc_plots_output_is_ignored_by_git():
    """`dvc plots show` writes dvc_plots/index.html into the repository."""
    result = subprocess.run(["git", "check-ignore", "-q", "dvc_plots/index.html"], cwd=REPO)
    assert result.returncode == 0


def test_a_celeba_folder_is_tracked_by_content_in_both_tools(workdir, repo_env, tmp_path):
    """`source: folder`: Snakemake's prepare depends on the folder's manifest (rewritten at parse
    time only when the content changed, src/mmjsd/data/manifest.py); DVC's on the folder itself,
    whose files DVC hashes. The command, and so the job, is the same."""
    import yaml

    from mmjsd.data.celeba_faces import synthesize_folder

    folder = synthesize_folder(tmp_path / "celeba", count=12, seed=0)
    raw = yaml.safe_load((workdir / "config.yaml").read_text())
    raw["scales"]["ci"]["data"]["celeba"] = {"source": "folder", "root": str(folder)}
    (workdir / "config.yaml").write_text(yaml.safe_dump(raw))
    result = subprocess.run([str(BIN / "snakemake"), "-n", "-F", "data/ci/processed/celeba/train.pt", "--config", "scale=ci"],
                            cwd=workdir, env=repo_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "    input: data/ci/raw/celeba_manifest.txt, src/mmjsd/" in result.stdout
    snakemake_command = re.sub(r" > \S+ 2>&1$", "", next(l for l in result.stdout.splitlines() if "prepare --dataset celeba" in l))
    assert (workdir / "data/ci/raw/celeba_manifest.txt").is_file()

    stage = yaml.safe_load(render(load_config(workdir / "config.yaml", "ci"), raw))["stages"]["prepare"]
    item = stage["foreach"]["celeba"]
    assert stage["do"]["deps"] == ["${item.input}", *code_paths("prepare")] and item["input"] == str(folder)
    dvc_command = stage["do"]["cmd"].replace("${key}", "celeba").replace("${item.input}", item["input"]) \
        .replace("${item.out_dir}", item["out_dir"])
    assert snakemake_command == "Shell command: " + dvc_command.replace("config.yaml", "config.yaml", 1)


def test_both_engines_list_the_code_each_step_runs(workdir, repo_env):
    """A change to a file a step runs reruns it (and what follows) under both engines: the files
    are the step's Snakemake inputs and its DVC deps, from one source (mmjsd.steps.code_paths)."""
    config = load_config(REPO / "config.yaml", "demo")
    stages = yaml.safe_load(render(config, read_yaml(REPO / "config.yaml")))["stages"]
    assert set(code_paths("train")) <= set(stages["train"]["deps"])
    assert "src/mmjsd/networks/dsprites.py" in stages["train"]["deps"] and "src/mmjsd/figure.py" in stages["figure"]["deps"]
    dry = subprocess.run([str(BIN / "snakemake"), "-n", "-F", "results/ci/runs/dsprites/mmjsd/seed0/model.pt",
                          "--config", "scale=ci"], cwd=workdir, env=repo_env, capture_output=True, text=True, timeout=300)
    train_inputs = next(line for line in dry.stdout.splitlines() if line.strip().startswith("input:") and "train.pt" in line)
    assert all(path in train_inputs for path in code_paths("train")), train_inputs
