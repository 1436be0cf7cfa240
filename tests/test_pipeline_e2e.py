"""End to end through the real tools, at the `ci` scale (seconds per job; proves plumbing only).

- Snakemake: the whole DAG from clean produces every output; a second clean run gives the same
  table1.csv / table1_celeba.csv / checkpoints byte for byte (CPU determinism); `--report`
  builds the HTML report with Table 1 and Figure 1.
- DVC: in a fresh git repository with no remote, `dvc repro` runs the DAG, a second `dvc repro`
  does nothing, `dvc metrics show` lists every run.
- Bad input through Snakemake (corrupt dSprites file, missing CelebA folder): the run stops
  before any job with one clear error and earlier outputs stay as they were.
"""

import hashlib
import json
import subprocess

import pytest
import yaml

from conftest import BIN

pytestmark = pytest.mark.slow

RESULTS = "results/ci"


def snakemake(workdir, env, *args, check=True):
    result = subprocess.run([str(BIN / "snakemake"), *args], cwd=workdir, env=env,
                            capture_output=True, text=True, timeout=900)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def ci_runs(tmp_path_factory):
    """Two clean runs of the whole ci DAG in two scratch copies of the workflow."""
    import os
    import shutil

    from conftest import REPO

    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    runs = []
    for name in ("first", "second"):
        workdir = tmp_path_factory.mktemp(name)
        for item in ("Snakefile", "config.yaml", "environment.yml", "requirements.txt"):
            shutil.copy(REPO / item, workdir / item)
        for item in ("workflow", "profiles"):
            shutil.copytree(REPO / item, workdir / item)
        (workdir / "src").symlink_to(REPO / "src")
        snakemake(workdir, env, "all", "--config", "scale=ci", "--cores", "2")
        runs.append(workdir)
    return runs, env


def test_every_output_is_produced(ci_runs):
    (first, _), _ = ci_runs
    results = first / RESULTS
    for name in ("table1.csv", "table1.md", "table1_celeba.csv", "figure1.png", "report.md"):
        assert (results / name).stat().st_size > 0, name
    table = (results / "table1.csv").read_text().splitlines()
    assert table[0].split(",")[:6] == ["dataset", "table", "model", "modality", "factor", "mean"]
    assert len(table) == 1 + 2 * (2 * 5 + 3 * 5)   # models x (1a: 2 directions + 1b: 3 representations) x 5 factors
    report = (results / "report.md").read_text()
    assert "render" in report and "the CI scale" in report
    for dataset in ("dsprites", "celeba"):
        for model in ("mmjsd", "mmpoe"):
            run = results / "runs" / dataset / model / "seed0"
            metrics = json.loads((run / "metrics.json").read_text())
            assert metrics["provenance"]["config"]["scale"] == "ci" and metrics["seed"] == 0
            assert json.loads((run / "eval.json").read_text())["model"] == model
    assert not list(first.rglob("*.tmp"))


def test_two_clean_runs_are_byte_identical(ci_runs):
    (first, second), _ = ci_runs
    for name in ("table1.csv", "table1_celeba.csv"):
        assert (first / RESULTS / name).read_bytes() == (second / RESULTS / name).read_bytes(), name
    for checkpoint in (first / RESULTS / "runs").rglob("*.pt"):
        twin = second / checkpoint.relative_to(first)
        assert digest(checkpoint) == digest(twin), checkpoint
    for split in (first / "data/ci/processed").rglob("*.pt"):
        assert digest(split) == digest(second / split.relative_to(first)), split


def test_second_snakemake_run_does_nothing(ci_runs):
    (first, _), env = ci_runs
    result = snakemake(first, env, "-n", "all", "--config", "scale=ci")
    assert "Nothing to be done" in result.stdout + result.stderr


def _set(config, dotted, value):
    *parents, last = dotted.split(".")
    node = config
    for part in parents:
        node = node[part]
    node[last] = value


@pytest.mark.parametrize("key, value, reruns", [
    # Issue 13 item 9: each key reruns the jobs that read it (and what depends on their outputs).
    ("eval.figure.texts", ["male"], {"figure": 1, "evaluate": 2, "aggregate": 1, "plots": 1, "report": 1}),   # CelebA's evaluations only
    ("eval.batch_size", 256, {"evaluate": 4, "aggregate": 1, "plots": 1, "figure": 1, "report": 1}),   # figure reads eval.json
    ("train.adam_betas", [0.8, 0.999], {"train": 4, "evaluate": 4, "aggregate": 1, "plots": 1, "figure": 1, "report": 1}),
    ("train.checkpoint_every_epochs", 3, {}),
    ("scales.ci.classifier.dsprites.epochs", 2, {"train_classifier": 2, "evaluate": 2, "aggregate": 1, "plots": 1, "report": 1}),
])
def test_snakemake_reruns_exactly_the_steps_a_key_feeds(ci_runs, key, value, reruns):
    (first, _), env = ci_runs
    path = first / "config.yaml"
    original = path.read_text()
    config = yaml.safe_load(original)
    _set(config, key, value)
    path.write_text(yaml.safe_dump(config, sort_keys=True))   # reordered keys too: only values count
    try:
        result = snakemake(first, env, "-n", "all", "--config", "scale=ci")
    finally:
        path.write_text(original)
    counts = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and not parts[0].endswith(":") and parts[0] not in ("all", "total", "job"):
            counts[parts[0]] = int(parts[1])
    assert counts == reruns, result.stdout[-2000:]


def test_snakemake_report_shows_table_and_figure(ci_runs):
    """`snakemake --report`: Table 1 and Figure 1 are marked report outputs with captions."""
    (first, _), env = ci_runs
    snakemake(first, env, "--report", "report.html", "--config", "scale=ci")
    html = (first / "report.html").read_text(errors="replace")
    for needle in ("Table 1", "Figure 1", "table1.csv", "figure1.png", "report.md"):
        assert needle in html, needle


def _outputs_snapshot(workdir):
    return {str(p.relative_to(workdir)): digest(p) for p in sorted((workdir / "data").rglob("*")) if p.is_file()} | {
        str(p.relative_to(workdir)): digest(p) for p in sorted((workdir / "results").rglob("*")) if p.is_file()}


def test_a_damaged_output_stops_the_run_and_the_printed_fix_works_as_printed(ci_runs):
    """A truncated eval.json: the run stops before any job (the tables stay), and the command the
    error prints, run exactly as printed, rebuilds it and what follows; then nothing is left to do."""
    import shlex

    (first, _), env = ci_runs
    record = first / RESULTS / "runs/dsprites/mmjsd/seed0/eval.json"
    tables = {p: digest(p) for p in sorted((first / RESULTS).glob("table1*"))}
    record.write_bytes(record.read_bytes()[:100])
    stopped = snakemake(first, env, "all", "--config", "scale=ci", check=False)
    assert stopped.returncode != 0
    line = next(l for l in stopped.stderr.splitlines() if l.startswith("mmjsd: error:"))
    assert "eval.json is damaged" in line and "no job was started" in line
    assert {p: digest(p) for p in tables} == tables
    fix = line.split("`")[-2]
    assert fix.startswith("snakemake all --config scale=ci --forcerun ")
    snakemake(first, env, *shlex.split(fix)[1:])
    json.loads(record.read_text())
    assert {p: digest(p) for p in tables} == tables                 # the same numbers as before the damage
    again = snakemake(first, env, "-n", "all", "--config", "scale=ci")
    assert "Nothing to be done" in again.stdout + again.stderr


def test_corrupt_dsprites_file_stops_before_any_job(ci_runs):
    (_, second), env = ci_runs
    config = yaml.safe_load((second / "config.yaml").read_text())
    config["scales"]["ci"]["data"]["dsprites"]["source"] = "official"
    (second / "config.yaml").write_text(yaml.safe_dump(config))
    official = second / "data/ci/raw/dsprites/official.npz"
    official.write_bytes(b"PK\x03\x04 truncated download")
    before = _outputs_snapshot(second)
    result = snakemake(second, env, "all", "--config", "scale=ci", check=False)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("mmjsd: error:")]
    assert len(errors) == 1 and "not the official 7da33b31b13a06f4b04a70402ce90c2e" in errors[0] and "fix:" in errors[0]
    assert _outputs_snapshot(second) == before


def test_missing_celeba_folder_stops_before_any_job(ci_runs):
    (first, _), env = ci_runs
    config = yaml.safe_load((first / "config.yaml").read_text())
    config["scales"]["ci"]["data"]["celeba"] = {"source": "folder", "root": "no/such/celeba"}
    (first / "config.yaml").write_text(yaml.safe_dump(config))
    before = _outputs_snapshot(first)
    result = snakemake(first, env, "all", "--config", "scale=ci", check=False)
    assert result.returncode != 0
    assert "mmjsd: error: CelebA folder no/such/celeba (data.celeba.root) does not exist" in result.stderr
    assert _outputs_snapshot(first) == before


def test_dvc_repro_on_a_fresh_repository(tmp_path, repo_env):
    """CI-runner conditions: fresh git repo, no DVC remote, no GPU; ci scale."""
    import shutil

    from conftest import REPO

    for item in ("config.yaml", "pyproject.toml", "dvc.yaml"):
        shutil.copy(REPO / item, tmp_path / item)
    for folder in ("workflow", "pipelines"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    (tmp_path / "src").symlink_to(REPO / "src")
    (tmp_path / ".gitignore").write_text("/src\n")

    def run(*command):
        result = subprocess.run(command, cwd=tmp_path, env=repo_env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result.stdout + result.stderr

    run("git", "init", "-q")
    run("git", "-c", "user.name=ci", "-c", "user.email=ci@localhost", "commit", "-q", "--allow-empty", "-m", "init")
    # the committed ci pipeline, beside the demo's root dvc.yaml: a scale runs from its own file
    pipeline = "pipelines/ci/dvc.yaml"
    run("git", "add", "-A")
    run("git", "-c", "user.name=ci", "-c", "user.email=ci@localhost", "commit", "-q", "-m", "pipelines")
    run(str(BIN / "dvc"), "init", "-q")
    planned = run(str(BIN / "dvc"), "status", pipeline)          # the fresh clone's dry run (docs/USAGE.md, DVC)
    assert "train@" in planned and "src/mmjsd/train.py" in planned
    ran = run(str(BIN / "dvc"), "repro", pipeline)
    assert (tmp_path / RESULTS / "table1.csv").exists() and (tmp_path / RESULTS / "figure1.png").exists()
    assert "results/demo" not in ran and not (tmp_path / "results" / "demo").exists()   # the demo's stages did not run
    unchanged = subprocess.run(["git", "diff", "--quiet", "--", "dvc.yaml", "pipelines"], cwd=tmp_path)
    assert unchanged.returncode == 0, "running a scale rewrote a tracked pipeline file"
    assert (tmp_path / "pipelines" / "ci" / "dvc.lock").exists()
    again = run(str(BIN / "dvc"), "repro", pipeline)
    assert "Data and pipelines are up to date." in again
    assert "Running stage" not in again
    # one scale's metrics (docs/USAGE.md, DVC): a bare `dvc metrics show` lists every scale's files
    scale_metrics = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / RESULTS).rglob("*summary.json"))
    metrics = run(str(BIN / "dvc"), "metrics", "show", "--json", *scale_metrics)
    shown = json.loads(metrics[metrics.index("{"):])
    paths = set(next(iter(shown.values()))["data"])
    for dataset in ("dsprites", "celeba"):
        for model in ("mmjsd", "mmpoe"):
            assert f"{RESULTS}/runs/{dataset}/{model}/seed0/summary.json" in paths
            assert f"{RESULTS}/runs/{dataset}/{model}/seed0/eval_summary.json" in paths
    # Issue 13 item 11: headline numbers only (the full records with provenance sit beside them).
    table = run(str(BIN / "dvc"), "metrics", "show", *scale_metrics)
    assert len(table) < 4000 and max(len(line) for line in table.splitlines()) < 200, table
    assert "provenance" not in metrics and "git_commit" not in metrics

    # The remote round trip (docs/USAGE.md, DVC): push to a folder remote, clone the repository,
    # pull there: the same data, models and tables byte for byte, and nothing to reproduce.
    remote = tmp_path.parent / f"{tmp_path.name}-remote"
    run("git", "add", "-A")
    run("git", "-c", "user.name=ci", "-c", "user.email=ci@localhost", "commit", "-q", "-m", "outputs")
    run(str(BIN / "dvc"), "remote", "add", "--local", "--default", "--force", "local", str(remote))
    pushed = run(str(BIN / "dvc"), "push", pipeline)
    assert "pushed" in pushed
    clone = tmp_path.parent / f"{tmp_path.name}-clone"
    run("git", "clone", "-q", str(tmp_path), str(clone))
    (clone / "src").symlink_to(REPO / "src")
    pulled = subprocess.run([str(BIN / "dvc"), "pull", "--remote", "local", pipeline], cwd=clone, env=repo_env, capture_output=True,
                            text=True, timeout=900)
    if pulled.returncode != 0:      # the clone has no config.local: name the remote's folder there too
        subprocess.run([str(BIN / "dvc"), "remote", "add", "--local", "--default", "local", str(remote)], cwd=clone,
                       env=repo_env, check=True, capture_output=True)
        pulled = subprocess.run([str(BIN / "dvc"), "pull", pipeline], cwd=clone, env=repo_env, capture_output=True, text=True, timeout=900)
    assert pulled.returncode == 0, pulled.stdout[-2000:] + pulled.stderr[-2000:]

    def contents(root):
        return {str(p.relative_to(root)): digest(p) for top in ("data", "results") for p in sorted((root / top).rglob("*"))
                if p.is_file() and not p.name.endswith(".tmp") and p.name != "checkpoint.pt"}

    assert contents(clone) == contents(tmp_path)
    status = subprocess.run([str(BIN / "dvc"), "status", pipeline], cwd=clone, env=repo_env, capture_output=True, text=True, timeout=300)
    assert status.returncode == 0 and "up to date" in status.stdout, status.stdout[-2000:]
