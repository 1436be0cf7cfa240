"""The Snakemake workflow: the whole DAG builds at every scale, lint is clean, bad config stops it."""

import importlib.util
import subprocess
import sys

import pytest
import yaml

from conftest import BIN, REPO

SNAKEMAKE = [str(BIN / "snakemake")]


def run_snakemake(args, cwd, env):
    return subprocess.run(SNAKEMAKE + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("scale", ["paper", "demo", "ci"])
def test_dry_run_builds_the_whole_dag(scale, workdir, repo_env):
    result = run_snakemake(["-n", "all", "--config", f"scale={scale}"], workdir, repo_env)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    seeds = config["seeds"] if scale == "paper" else config["scales"][scale]["seeds"]
    runs = 2 * 2 * len(seeds)
    out = result.stdout
    for rule, count in [("train", runs), ("evaluate", runs), ("train_classifier", 4), ("prepare", 2),
                        ("aggregate", 1), ("figure", 1), ("report", 1)]:
        assert any(line.split() == [rule, str(count)] for line in out.splitlines()), (rule, out[-2000:])


def test_make_lint_passes_with_one_documented_suppression(repo_env):
    """`make lint` (workflow/lint.py) exits 0: Snakemake's only finding is the per-rule conda
    environment, accepted for the reason workflow/lint.py states; any other finding fails it."""
    result = subprocess.run([sys.executable, str(REPO / "workflow" / "lint.py")], cwd=REPO, env=repo_env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    spec = importlib.util.spec_from_file_location("lint", REPO / "workflow" / "lint.py")
    lint = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lint)
    assert lint.findings("    * Specify a conda environment or container for each rule.:\n    * Absolute path:") == [
        "Specify a conda environment or container for each rule.", "Absolute path"]


def test_no_rule_uses_a_relocated_conda_environment(workdir, repo_env):
    """Snakemake copies a rule's environment file elsewhere, where environment.yml's
    `-r requirements.txt` and `-e .` would not resolve, and a named environment makes it call
    conda on every run; so no rule has a `conda:` directive, and `--sdm conda` runs in the
    caller's environment. environment.yml is for `conda env create` from the repository root."""
    rules = [REPO / "Snakefile", *(REPO / "workflow" / "rules").glob("*.smk")]
    assert not any(line.strip().startswith("conda:") for path in rules for line in path.read_text().splitlines())
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-r requirements.txt" in pip and (REPO / "requirements.txt").is_file() and (REPO / "pyproject.toml").is_file()
    result = run_snakemake(["-n", "all", "--sdm", "conda"], workdir, repo_env)
    assert result.returncode == 0, result.stderr


def test_invalid_config_stops_before_any_job(workdir, repo_env):
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["scales"]["ci"]["train"]["dsprites"]["epochs"] = "many"
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(["all", "--config", "scale=ci"], workdir, repo_env)
    assert result.returncode != 0
    assert "mmjsd: error: scale 'ci': config value train.dsprites.epochs: 'many' is not of type 'integer'" in result.stderr
    assert not (workdir / "data").exists() and not (workdir / "results").exists()


def test_config_overrides_other_than_scale_are_refused(workdir, repo_env):
    result = run_snakemake(["-n", "all", "--config", "seeds=[7]"], workdir, repo_env)
    assert result.returncode != 0
    assert "only 'scale' may be set with --config" in result.stderr


def test_documented_paper_command_parses(workdir, repo_env):
    """README: `snakemake all --cores 8 --resources gpu=2` (target before --resources)."""
    result = run_snakemake(["-n", "all", "--cores", "8", "--resources", "gpu=2"], workdir, repo_env)
    assert result.returncode == 0, result.stderr
    swallowed = run_snakemake(["-n", "--cores", "8", "--resources", "gpu=2", "all"], workdir, repo_env)
    assert swallowed.returncode != 0  # --resources takes `all` as a resource: why the README warns


def test_slurm_profile_builds_the_dag(workdir, repo_env):
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["set-resources"]["train"]["gpu"] == 1
    result = run_snakemake(["-n", "all", "--profile", "profiles/slurm"], workdir, repo_env)
    assert result.returncode == 0, result.stderr
    assert "rule train:" in result.stdout


@pytest.mark.parametrize("name", ["slurm", "slurm-cpu"])
def test_slurm_profiles_book_the_threads_and_query_squeue(name):
    """The plugin books --cpus-per-task from a job's threads (the `--threads` of its shell line)
    unless cpus_per_task is set: no profile sets it. Job states come from squeue (no accounting
    needed). Only the GPU profile asks for GPUs. tests/test_slurm.py checks all this on a real SLURM."""
    profile = yaml.safe_load((REPO / "profiles" / name / "config.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["slurm-status-command"] == "squeue"
    requests = [profile.get("default-resources", {}), *profile.get("set-resources", {}).values()]
    assert not any("cpus_per_task" in r or "cpus_per_gpu" in r for r in requests)
    assert any(r.get("gpu") for r in requests) == (name == "slurm")
    # profiles/default's settings, which `--workflow-profile none` leaves out
    default = yaml.safe_load((REPO / "profiles" / "default" / "config.yaml").read_text())
    assert {k: profile[k] for k in default if k != "cores"} == {k: v for k, v in default.items() if k != "cores"}


def test_slurm_cpu_profile_asks_for_the_scales_requests(workdir, repo_env):
    result = run_snakemake(["-n", "all", "--config", "scale=ci", "--profile", "profiles/slurm-cpu",
                            "--workflow-profile", "none"], workdir, repo_env)
    assert result.returncode == 0, result.stderr
    requests, rule = {}, None
    for line in result.stdout.splitlines():
        if line.startswith(("rule ", "localrule ")):
            rule = line.split()[1].rstrip(":")
        elif line.strip().startswith("resources:") and rule in ("prepare", "train", "train_classifier", "evaluate"):
            requests.setdefault(rule, []).append(line)
    assert {rule: len(lines) for rule, lines in requests.items()} == {"prepare": 2, "train": 4, "train_classifier": 4, "evaluate": 4}
    for line in sum(requests.values(), []):
        assert "mem_mb=2000," in line and "runtime=10" in line and "gpu=" not in line, line


def test_a_job_of_a_cluster_executor_skips_the_submitting_process_checks(workdir, repo_env):
    """Every cluster job parses the Snakefile again (`--mode remote`): the integrity scan, which
    stops the submitting process on a damaged output, must not refuse the job there (the run may be
    rebuilding that very file), and the job does not print the GPU-pool line again."""
    damaged = workdir / "results" / "ci" / "runs" / "dsprites" / "mmjsd" / "seed0" / "metrics.json"
    damaged.parent.mkdir(parents=True)
    damaged.write_text("garbage")
    main = run_snakemake(["-n", "all", "--config", "scale=ci"], workdir, repo_env)
    assert main.returncode != 0 and "metrics.json is damaged" in main.stderr
    job = run_snakemake(["-n", "all", "--config", "scale=ci", "--mode", "remote", "--cores", "1"], workdir, repo_env)
    assert job.returncode == 0, job.stderr[-3000:]
    assert "mmjsd: error" not in job.stderr and "mmjsd: GPU pool" not in job.stderr


def test_cluster_resources_come_from_config(workdir, repo_env):
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["resources"]["train"]["runtime_min"] = 777
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(["-n", "all"], workdir, repo_env)
    assert result.returncode == 0, result.stderr
    assert "runtime=777" in result.stdout


@pytest.mark.parametrize("visible, extra, pool, dsprites_units, celeba_units", [
    ("0,1", [], 200, 25, 100),                       # no --resources: the visible GPUs
    ("", [], 0, 0, 0),                               # CPU machine: GPU jobs ask for nothing
    ("0,1,2,3", ["--resources", "gpu=1"], 100, 25, 100),   # --resources gpu=N means N devices
])
def test_gpu_pool_follows_devices_and_shares(visible, extra, pool, dsprites_units, celeba_units, workdir, repo_env):
    """Fake device counts through CUDA_VISIBLE_DEVICES: the pool is N devices x 100 gpu_units,
    a dSprites job asks for its 0.25 share, a CelebA job for a whole device (issue 13 item 2,
    issue 12 item 4)."""
    env = {**repo_env, "CUDA_VISIBLE_DEVICES": visible}
    result = run_snakemake(["-n", "all", *extra], workdir, env)
    assert result.returncode == 0, result.stderr
    assert f"= {pool} gpu_units" in result.stderr
    units = {}
    rule = None
    for line in result.stdout.splitlines():
        if line.startswith("rule "):
            rule = line.split()[1].rstrip(":")
        elif line.strip().startswith("wildcards:") and rule == "train":
            dataset = line.split("dataset=")[1].split(",")[0]
        elif line.strip().startswith("resources:") and rule == "train":
            units.setdefault(dataset, set()).add(int(line.split("gpu_units=")[1].split(",")[0]))
    assert units == {"dsprites": {dsprites_units}, "celeba": {celeba_units}}


def test_configfile_is_accepted_and_passed_to_every_step(workdir, repo_env):
    """Issue 13 item 5: `--configfile my.yaml` (a copy of config.yaml, edited) is the run's config."""
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["seeds"] = [5]
    config["eval"]["figure"]["seed"] = 5
    del config["scales"]    # a variant file needs no scales (the ci/demo overlays train seed 0)
    (workdir / "my.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(["-n", "-p", "all", "--configfile", "my.yaml"], workdir, repo_env)
    assert result.returncode == 0, result.stderr
    assert "--seed 5" in result.stdout and "--seed 0" not in result.stdout
    commands = [line.split(": ", 1)[1] for line in result.stdout.splitlines() if line.startswith("Shell command: mmjsd ")]
    assert commands and all(line.startswith("mmjsd --config my.yaml --scale paper ") for line in commands)


def test_configfile_is_validated_like_config_yaml(workdir, repo_env):
    (workdir / "partial.yaml").write_text("seeds: [5]\n")
    result = run_snakemake(["-n", "all", "--configfile", "partial.yaml"], workdir, repo_env)
    assert result.returncode != 0
    assert "mmjsd: error: --configfile partial.yaml lacks the key(s)" in result.stderr
    assert "cp config.yaml partial.yaml" in result.stderr
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["train"]["dsprites"]["epochs"] = 0
    (workdir / "bad.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(["-n", "all", "--configfile", "bad.yaml"], workdir, repo_env)
    assert "mmjsd: error: bad.yaml: config value train.dsprites.epochs: 0 is less than the minimum of 1" in result.stderr


@pytest.mark.parametrize("content, problem", [
    ({}, "holds no images in img_align_celeba/"),          # empty folder
    ({"list_attr_celeba.txt": "0\n"}, "holds no images"),
    (None, "does not exist"),
])
def test_celeba_folder_is_checked_at_parse_time(content, problem, workdir, repo_env, tmp_path):
    """Issue 13 item 6: an empty CelebA folder fails the dry run, not `prepare` hours later."""
    root = tmp_path / "celeba-copy"
    if content is not None:
        root.mkdir()
        (root / "img_align_celeba").mkdir()
        for name, text in content.items():
            (root / name).write_text(text)
    if content == {}:
        (root / "list_attr_celeba.txt").write_text("0\n")
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["data"]["celeba"].update(source="folder", root=str(root))
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(["-n", "all"], workdir, repo_env)
    assert result.returncode != 0
    line = next(l for l in result.stderr.splitlines() if l.startswith("mmjsd: error:"))
    assert problem in line and " -- fix: " in line


def test_auto_celeba_fallback_is_announced(workdir, repo_env, tmp_path):
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["scales"]["demo"]["data"]["celeba"]["root"] = str(tmp_path / "no-shared-copy")
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(["-n", "all", "--config", "scale=demo"], workdir, repo_env)
    assert result.returncode == 0, result.stderr
    assert "CelebA is the procedural stand-in (synthetic faces" in result.stderr


def test_a_local_paper_run_on_a_cpu_stops_before_any_job(workdir, repo_env):
    """`snakemake results/table1.csv` (the paper scale, the file's default) on a machine with no
    GPU: one line naming the scales that fit and how to force it; nothing written. Planning works."""
    env = dict(repo_env, CUDA_VISIBLE_DEVICES="")
    env.pop("MMJSD_ALLOW_CPU_PAPER", None)
    before = sorted(p.name for p in workdir.iterdir())
    result = run_snakemake(["results/table1.csv"], workdir, env)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("mmjsd: error:")]
    assert len(errors) == 1 and "no GPU" in errors[0] and "--config scale=demo" in errors[0]
    assert "MMJSD_ALLOW_CPU_PAPER=1" in errors[0] and "Traceback" not in result.stderr
    assert sorted(p.name for p in workdir.iterdir() if p.name not in (".snakemake", "logs")) == [n for n in before if n != ".snakemake"]
    assert not (workdir / "data").exists() and not (workdir / "results").exists()
    planned = run_snakemake(["-n", "results/table1.csv"], workdir, env)
    assert planned.returncode == 0 and "train" in planned.stdout


@pytest.mark.parametrize("scale, local, gpus, steps, refused", [
    ("paper", True, [], ["prepare", "train"], True),
    ("paper", True, ["0"], ["train"], False),             # a GPU is visible
    ("paper", False, [], ["train"], False),               # a cluster submit host sends the jobs away
    ("paper", True, [], ["aggregate", "report"], False),  # nothing trains
    ("demo", True, [], ["train"], False),
])
def test_cpu_paper_refusal(scale, local, gpus, steps, refused, monkeypatch):
    from mmjsd.pipeline.startup import cpu_paper_refusal

    monkeypatch.delenv("MMJSD_ALLOW_CPU_PAPER", raising=False)
    assert (cpu_paper_refusal(scale, local, gpus, steps, ["paper", "ci", "demo"]) is not None) == refused
    monkeypatch.setenv("MMJSD_ALLOW_CPU_PAPER", "1")
    assert cpu_paper_refusal(scale, local, gpus, steps, ["paper", "ci", "demo"]) is None


@pytest.mark.parametrize("scale, problem", [("", "the scale is empty"), ("nope", "unknown scale 'nope'")])
def test_an_empty_or_unknown_scale_is_refused(scale, problem, workdir, repo_env):
    result = run_snakemake(["-n", "all", "--config", f"scale={scale}"], workdir, repo_env)
    assert result.returncode != 0 and problem in result.stderr and "Traceback" not in result.stderr


def test_a_folder_in_the_place_of_the_celeba_manifest_is_one_line(workdir, repo_env, tmp_path):
    from mmjsd.data.celeba_faces import synthesize_folder

    folder = synthesize_folder(tmp_path / "celeba", count=12, seed=0)
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["scales"]["ci"]["data"]["celeba"] = {"source": "folder", "root": str(folder)}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    (workdir / "data" / "ci" / "raw" / "celeba_manifest.txt").mkdir(parents=True)
    for dry in (["-n"], []):
        result = run_snakemake([*dry, "all", "--config", "scale=ci"], workdir, repo_env)
        assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
        errors = [line for line in result.stderr.splitlines() if line.startswith("mmjsd: error:")]
        assert len(errors) == 1 and "celeba_manifest.txt" in errors[0] and "in the way" in errors[0], errors


def test_a_third_model_from_an_extension_gets_its_jobs_with_no_other_file_edited(workdir, repo_env):
    """A registered toy model (tests/extensions/toy_model.py) named in a copy of the config: the DAG
    plans its training and evaluation per dataset and seed, with its own logs, and `mmjsd status`
    lists the same jobs (both read mmjsd.pipeline.jobs)."""
    import shutil

    from mmjsd.config import load_config
    from mmjsd.core import extensions
    from mmjsd.pipeline import status

    (workdir / "tests" / "extensions").mkdir(parents=True)
    shutil.copy(REPO / "tests" / "extensions" / "toy_model.py", workdir / "tests" / "extensions" / "toy_model.py")
    raw = yaml.safe_load((workdir / "config.yaml").read_text())
    raw["extensions"] = ["tests/extensions/toy_model.py"]
    raw["scales"]["ci"]["models"] = ["mmjsd", "mmpoe", "toy"]
    (workdir / "toy.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    result = run_snakemake(["-n", "all", "--configfile", "toy.yaml", "--config", "scale=ci"], workdir, repo_env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    runs = 2 * 3 * len(raw["scales"]["ci"]["seeds"])
    counts = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines() if len(line.split()) == 2}
    assert counts["train"] == str(runs) and counts["evaluate"] == str(runs), result.stdout[-2000:]
    assert "logs/ci/train_dsprites_toy_seed0.log" in result.stdout
    try:
        config = load_config(workdir / "toy.yaml", "ci")
        names = [line.split()[1] for line in status.report_lines(config) if line.startswith("train ")]
    finally:
        extensions.unload()
    assert names.count("dsprites/toy/seed0") == 1 and len(names) == runs


def test_a_dry_run_writes_nothing_but_snakemakes_own_records(workdir, repo_env):
    """Parse time and planning write no file of ours (logs, data, results, manifests): only
    Snakemake's own state folder (.snakemake/) appears."""
    def files():
        return {str(p.relative_to(workdir)): p.stat().st_mtime_ns for p in workdir.rglob("*")
                if ".snakemake" not in p.parts and "src" not in p.parts}

    before = files()
    result = run_snakemake(["-n", "all", "--config", "scale=ci"], workdir, repo_env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert files() == before
