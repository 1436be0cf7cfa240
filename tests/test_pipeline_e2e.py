"""End to end through the real tools, at the `ci` scale (seconds per job; proves plumbing only).

- Snakemake: the whole DAG from clean produces every output; a second clean run gives the same
  table1.csv / table1_celeba.csv / checkpoints byte for byte (CPU determinism); `--report`
  builds the HTML report with Table 1 and Figure 1.
- DVC wraps Snakemake: in a fresh clone with no ../shared and no remote, `dvc repro` runs the ci
  stage to the same tables, reruns nothing the second time, reruns only the jobs a config edit
  feeds, stops at a live Snakemake run's lock, and survives the push / clone / pull round trip.
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
    original = (second / "config.yaml").read_text()
    config = yaml.safe_load(original)
    config["scales"]["ci"]["data"]["dsprites"]["source"] = "official"
    (second / "config.yaml").write_text(yaml.safe_dump(config))
    official = second / "data/ci/raw/dsprites/official.npz"
    official.write_bytes(b"PK\x03\x04 truncated download")
    before = _outputs_snapshot(second)
    try:
        result = snakemake(second, env, "all", "--config", "scale=ci", check=False)
    finally:
        (second / "config.yaml").write_text(original)    # the module's other tests use this run
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("mmjsd: error:")]
    assert len(errors) == 1 and "not the official 7da33b31b13a06f4b04a70402ce90c2e" in errors[0] and "fix:" in errors[0]
    assert _outputs_snapshot(second) == before
    official.unlink()


def test_missing_celeba_folder_stops_before_any_job(ci_runs):
    (first, _), env = ci_runs
    original = (first / "config.yaml").read_text()
    config = yaml.safe_load(original)
    config["scales"]["ci"]["data"]["celeba"] = {"source": "folder", "root": "no/such/celeba"}
    (first / "config.yaml").write_text(yaml.safe_dump(config))
    before = _outputs_snapshot(first)
    try:
        result = snakemake(first, env, "all", "--config", "scale=ci", check=False)
    finally:
        (first / "config.yaml").write_text(original)     # the module's other tests use this run
    assert result.returncode != 0
    assert "mmjsd: error: CelebA folder no/such/celeba (data.celeba.root) does not exist" in result.stderr
    assert _outputs_snapshot(first) == before


def _git_commit(root, message):
    for command in (["git", "add", "-A"], ["git", "-c", "user.name=ci", "-c", "user.email=ci@localhost", "commit", "-q", "-m", message]):
        subprocess.run(command, cwd=root, check=True, capture_output=True)


def _bare_clone(tmp_path):
    """A fresh git clone of the pipeline's tracked files, in a folder with no ../shared beside it."""
    import shutil

    from conftest import REPO

    root = tmp_path / "bare" / "mmjsd"
    root.mkdir(parents=True)
    assert not (root.parent / "shared").exists()
    for item in ("Snakefile", "config.yaml", "pyproject.toml", "dvc.yaml", ".gitignore", ".dvcignore"):
        shutil.copy(REPO / item, root / item)
    for folder in ("workflow", "pipelines", "profiles"):
        shutil.copytree(REPO / folder, root / folder)
    (root / "src").symlink_to(REPO / "src")
    with open(root / ".gitignore", "a") as handle:
        handle.write("/src\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    _git_commit(root, "pipeline")
    return root


def _jobs_run(output: str) -> dict[str, int]:
    """Snakemake's own job table ("Job stats"), as {rule: count}, of the last run in `output`."""
    counts: dict[str, int] = {}
    table = output.rsplit("Job stats:", 1)[-1] if "Job stats:" in output else ""
    for line in table.splitlines()[3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        if parts[0] not in ("all", "total"):
            counts[parts[0]] = int(parts[1])
    return counts


def test_dvc_wraps_snakemake_on_a_bare_runner(tmp_path, repo_env, ci_runs):
    """CI-runner conditions (fresh clone, no ../shared, no remote, no GPU), ci scale: `dvc repro`
    runs Snakemake to the end with synthetic faces; the tables equal a plain Snakemake run's; a
    second `dvc repro` reruns nothing; a config edit reruns only the Snakemake jobs it feeds, and
    Snakemake afterwards has nothing left to do; DVC started beside a live Snakemake run stops at
    Snakemake's lock with nothing lost; the remote round trip gives the same bytes and, after
    `mmjsd adopt-pulled`, nothing to rerun for either tool."""
    (snakemade, _), _ = ci_runs
    root = _bare_clone(tmp_path)
    pipeline = "pipelines/ci/dvc.yaml"

    def run(*command, cwd=root, check=True):
        result = subprocess.run(command, cwd=cwd, env=repo_env, capture_output=True, text=True, timeout=900)
        if check:
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result.stdout + result.stderr

    run(str(BIN / "dvc"), "init", "-q")
    ran = run(str(BIN / "dvc"), "repro", pipeline)
    assert "Running stage 'pipelines/ci/dvc.yaml:ci'" in ran
    assert "synthetic" in (root / RESULTS / "report.md").read_text()
    for name in ("table1.csv", "table1_celeba.csv", "table1.md", "metrics.json"):
        assert (root / RESULTS / name).read_bytes() == (snakemade / RESULTS / name).read_bytes(), name
    assert not (root / "results" / "demo").exists()                           # the demo's stage did not run
    assert subprocess.run(["git", "diff", "--quiet", "--", "dvc.yaml", "pipelines"], cwd=root).returncode == 0
    again = run(str(BIN / "dvc"), "repro", pipeline)
    assert "Running stage" not in again and "up to date" in again

    shown = run(str(BIN / "dvc"), "metrics", "show", "--json", f"{RESULTS}/metrics.json")
    metrics, _ = json.JSONDecoder().raw_decode(shown[shown.index("{"):])
    headline = next(iter(metrics.values()))["data"][f"{RESULTS}/metrics.json"]["data"]
    assert set(headline) == {"dsprites", "celeba"} and set(headline["dsprites"]["mmjsd"]) >= {"1a_img", "1b_joint"}

    # A config edit, run by DVC: Snakemake inside reruns the evaluations and what follows, nothing else.
    config = yaml.safe_load((root / "config.yaml").read_text())
    config["scales"]["ci"]["eval"]["batch_size"] = 256
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    diff = run(str(BIN / "dvc"), "params", "diff")
    assert "scales.ci.eval.batch_size" in diff
    edited = run(str(BIN / "dvc"), "repro", pipeline)
    assert _jobs_run(edited) == {"evaluate": 4, "aggregate": 1, "plots": 1, "figure": 1, "report": 1}, edited[-3000:]
    after = snakemake(root, repo_env, "-n", "all", "--config", "scale=ci")
    assert "Nothing to be done" in after.stdout + after.stderr
    _git_commit(root, "outputs")

    # DVC started beside a live Snakemake run: it stops at Snakemake's lock and deletes nothing.
    config["scales"]["ci"]["eval"]["batch_size"] = 128
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    import time

    live = subprocess.Popen([str(BIN / "snakemake"), "all", "--config", "scale=ci", "--forcerun", "train", "--cores", "1"],
                            cwd=root, env=repo_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    locks = root / ".snakemake" / "locks"
    for _ in range(600):
        if locks.is_dir() and any(locks.iterdir()):
            break
        time.sleep(0.1)
    beside = run(str(BIN / "dvc"), "repro", pipeline, check=False)
    live_output, _ = live.communicate(timeout=900)
    assert live.returncode == 0, live_output[-3000:]
    assert "ERROR" in beside and "lock" in beside.lower(), beside[-2000:]
    for name in ("table1.csv", "figure1.png", "report.md", "classifiers/dsprites/img.pt"):
        assert (root / RESULTS / name).stat().st_size > 0, name
    finished = run(str(BIN / "dvc"), "repro", pipeline)     # now it runs, and finds Snakemake's work done
    assert _jobs_run(finished) == {}, finished[-2000:]
    _git_commit(root, "outputs again")

    # The remote round trip: push, clone, pull, adopt: the same bytes and nothing to rerun.
    remote = tmp_path / "remote"
    run(str(BIN / "dvc"), "remote", "add", "--local", "--default", "local", str(remote))
    assert "pushed" in run(str(BIN / "dvc"), "push", pipeline)
    clone = tmp_path / "clone" / "mmjsd"
    run("git", "clone", "-q", str(root), str(clone), cwd=tmp_path)
    (clone / "src").symlink_to(root / "src")
    run(str(BIN / "dvc"), "remote", "add", "--local", "--default", "local", str(remote), cwd=clone)
    run(str(BIN / "dvc"), "pull", pipeline, cwd=clone)

    def contents(top_root):
        return {str(p.relative_to(top_root)): digest(p) for top in ("data", "results") for p in sorted((top_root / top).rglob("*"))
                if p.is_file() and p.name != ".gitignore"}

    assert contents(clone) == contents(root)
    adopted = run(str(BIN / "mmjsd"), "--scale", "ci", "adopt-pulled", cwd=clone)
    assert "adopt-pulled" in adopted
    planned = snakemake(clone, repo_env, "-n", "all", "--config", "scale=ci")
    assert "Nothing to be done" in planned.stdout + planned.stderr
    assert "up to date" in run(str(BIN / "dvc"), "status", pipeline, cwd=clone)
    assert "Running stage" not in run(str(BIN / "dvc"), "repro", pipeline, cwd=clone)
    # and a config edit in the clone reruns exactly its jobs (Snakemake's records came with the adoption)
    cloned = yaml.safe_load((clone / "config.yaml").read_text())
    cloned["scales"]["ci"]["classifier"]["dsprites"]["epochs"] = 2
    (clone / "config.yaml").write_text(yaml.safe_dump(cloned, sort_keys=False))
    planned = snakemake(clone, repo_env, "-n", "all", "--config", "scale=ci")
    assert _jobs_run(planned.stdout) == {"train_classifier": 2, "evaluate": 2, "aggregate": 1, "plots": 1, "report": 1}, planned.stdout[-2000:]


def test_config_paths_never_reach_the_shell_as_code(tmp_path, repo_env, ci_runs):
    """Data and results paths holding `$(...)`, backticks, quotes, `;` and spaces: nothing they
    spell runs, and the whole ci DAG completes to the same tables as a plain run."""
    import shutil

    from conftest import REPO

    (snakemade, _), _ = ci_runs
    root = tmp_path / "work"
    root.mkdir()
    for item in ("Snakefile", "config.yaml"):
        shutil.copy(REPO / item, root / item)
    for item in ("workflow", "profiles"):
        shutil.copytree(REPO / item, root / item)
    (root / "src").symlink_to(REPO / "src")
    hostile = "x $(touch PWNED_dollar) `touch PWNED_tick` 'q' \"d\"; touch PWNED_semi"
    config = yaml.safe_load((root / "config.yaml").read_text())
    config["scales"]["ci"]["paths"] = {"data": f"data/{hostile}", "results": f"results/{hostile}"}
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    snakemake(root, repo_env, "all", "--config", "scale=ci", "--cores", "2")
    assert not list(root.rglob("PWNED*")) and not list(tmp_path.rglob("PWNED*"))
    results = root / "results" / hostile
    for name in ("table1.csv", "table1_celeba.csv"):
        assert (results / name).read_bytes() == (snakemade / RESULTS / name).read_bytes(), name
    assert (root / "data" / hostile / "processed" / "dsprites" / "train.pt").is_file()


def test_verify_rechecks_every_number_from_the_weights(ci_runs, tmp_path):
    """`mmjsd --scale S verify` on a finished ci run: every run, table, Figure 1 and the report
    identical; one number edited in a committed evaluation (sealed again, so only the rerun can
    tell) is reported as different, with exit status 1; the scale's own files are untouched."""
    from mmjsd.core.files import sealed

    (first, _), env = ci_runs
    before = {p: digest(p) for p in sorted((first / RESULTS).rglob("*")) if p.is_file()}
    result = subprocess.run([str(BIN / "mmjsd"), "--scale", "ci", "verify"], cwd=first, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    runs = [line for line in lines if line.startswith("run ")]
    assert len(runs) == 4 and all(line.split()[2] == "identical" for line in runs), lines
    for name in ("test split dsprites", "test split celeba", f"{RESULTS}/table1.csv", f"{RESULTS}/table1_celeba.csv",
                 f"{RESULTS}/figure1.png", f"{RESULTS}/report.md"):
        assert any(line.startswith(name) and "identical" in line for line in lines), (name, lines)
    assert lines[-1].startswith("verify ci: 10 of 10 identical")
    assert {p: digest(p) for p in sorted((first / RESULTS).rglob("*")) if p.is_file()} == before

    path = first / RESULTS / "runs" / "dsprites" / "mmjsd" / "seed0" / "eval.json"
    original = path.read_text()
    record = json.loads(original)
    record["coherence"]["shape"]["img"] += 0.25
    path.write_text(json.dumps(sealed({k: v for k, v in record.items() if k != "content_sha256"})))
    try:
        edited = subprocess.run([str(BIN / "mmjsd"), "--scale", "ci", "verify"], cwd=first, env=env,
                                capture_output=True, text=True, timeout=900)
    finally:
        path.write_text(original)
    assert edited.returncode == 1
    line = next(l for l in edited.stdout.splitlines() if l.startswith("run dsprites/mmjsd/seed0"))
    assert "different" in line and "coherence.shape.img" in line, line

    # One CelebA run that cannot be re-evaluated (its weights absent) leaves dSprites' table checked.
    model = first / RESULTS / "runs" / "celeba" / "mmjsd" / "seed0" / "model.pt"
    model.rename(model.with_suffix(".away"))
    try:
        partial = subprocess.run([str(BIN / "mmjsd"), "--scale", "ci", "verify"], cwd=first, env=env,
                                 capture_output=True, text=True, timeout=900)
    finally:
        model.with_suffix(".away").rename(model)
    assert partial.returncode == 1
    status = {l.split("  ")[0].strip(): l.split("  ", 1)[1].strip() for l in partial.stdout.splitlines()[:-1]}
    assert status[f"{RESULTS}/table1.csv"] == "identical", partial.stdout
    assert status[f"{RESULTS}/table1_celeba.csv"].startswith("missing"), partial.stdout
    assert status["figure, report"].startswith("missing") and status["run celeba/mmjsd/seed0"].startswith("missing")


def _refused(workdir, env, *args):
    """The one-line refusal of a Snakemake run that must stop before any job."""
    stopped = snakemake(workdir, env, *args, check=False)
    assert stopped.returncode != 0, stopped.stdout[-2000:]
    lines = [l for l in stopped.stderr.splitlines() if l.startswith("mmjsd: error:")]
    assert len(lines) == 1 and "Traceback" not in stopped.stderr, stopped.stderr[-3000:]
    return lines[0]


def _run_fix(workdir, env, line):
    """Run the command a refusal prints, verbatim, then check nothing is left to do."""
    import shlex

    fix = line.split("`")[-2]
    assert fix.startswith("snakemake all --config scale=ci"), fix
    snakemake(workdir, env, *shlex.split(fix)[1:])
    again = snakemake(workdir, env, "-n", "all", "--config", "scale=ci")
    assert "Nothing to be done" in again.stdout + again.stderr


def test_an_evaluation_of_other_settings_is_refused_before_the_tables_are_deleted(ci_runs):
    """An eval.json of the right slot, sealed, but computed under other evaluation settings (copied in,
    so newer than the tables): the check of Snakemake's plan refuses before `aggregate` deletes the
    tables; the printed fix re-evaluates it, and the tables come back byte for byte."""
    from mmjsd.core.files import sealed

    (_, second), env = ci_runs
    record = second / RESULTS / "runs/dsprites/mmpoe/seed0/eval.json"
    tables = {p: digest(p) for p in sorted((second / RESULTS).glob("table1*"))}
    other = json.loads(record.read_text())
    other.pop("content_sha256")
    other["fingerprint"]["settings"]["eval.batch_size"] = 7
    record.write_text(json.dumps(sealed(other)))
    line = _refused(second, env, "all", "--config", "scale=ci")
    assert "computed under other evaluation settings (changed: eval.batch_size)" in line
    assert "the aggregate job that reads it was not started and nothing was deleted" in line
    assert {p: digest(p) for p in tables} == tables
    _run_fix(second, env, line)
    assert {p: digest(p) for p in tables} == tables


def test_a_foreign_model_with_the_old_file_time_is_refused_before_its_evaluation_is_deleted(ci_runs):
    """A model trained under other settings for the same slot, copied in with the old file time
    (`touch -r`): Snakemake sees nothing to do; a forced re-evaluation is refused before its
    eval.json is deleted, and the printed fix retrains the slot, to the same bytes as before."""
    import os

    from mmjsd import models
    from mmjsd.core.files import torch_load

    (_, second), env = ci_runs
    slot = second / RESULTS / "runs/dsprites/mmjsd/seed0"
    before = {name: digest(slot / name) for name in ("model.pt", "eval.json")}
    stat = (slot / "model.pt").stat()
    blob = torch_load(slot / "model.pt", "model file", "")
    foreign = models.build_model(blob["spec"])
    foreign.load_state_dict(blob["state_dict"])
    fingerprint = dict(blob["fingerprint"], train=dict(blob["fingerprint"]["train"], epochs=99))
    models.save_model(slot / "model.pt", foreign, fingerprint)
    os.utime(slot / "model.pt", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    quiet = snakemake(second, env, "-n", "all", "--config", "scale=ci")
    assert "Nothing to be done" in quiet.stdout + quiet.stderr
    line = _refused(second, env, "all", "--config", "scale=ci", "--forcerun", "evaluate")
    assert "model.pt was not trained for this slot" in line and "train.epochs" in line
    assert "the evaluate job that reads it was not started and nothing was deleted" in line
    assert digest(slot / "eval.json") == before["eval.json"]
    _run_fix(second, env, line)
    assert {name: digest(slot / name) for name in before} == before


def test_a_killed_job_is_never_taken_for_done(ci_runs):
    """SIGKILL while a forced `celeba_synthesize` runs (Snakemake has deleted the folder), then
    `--unlock` and a plain run: not "Nothing to be done" but one line naming the job and the
    command that rebuilds it; `mmjsd status` says the same; the fix, verbatim, rebuilds it."""
    import os
    import signal
    import time

    (_, second), env = ci_runs
    folder = second / "data/ci/raw/celeba_synthetic"
    tables = {p: digest(p) for p in sorted((second / RESULTS).glob("table1*"))}
    run = subprocess.Popen([str(BIN / "snakemake"), "all", "--config", "scale=ci", "--cores", "1", "--forcerun",
                            "data/ci/raw/celeba_synthetic"], cwd=second, env=env, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    markers = second / ".snakemake" / "incomplete"
    deadline = time.time() + 120
    while time.time() < deadline and not (markers.is_dir() and any(markers.iterdir()) and not folder.exists()):
        time.sleep(0.02)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert not folder.exists(), "the job finished before it could be killed"
    snakemake(second, env, "--unlock", "--config", "scale=ci")
    line = _refused(second, env, "all", "--config", "scale=ci")
    assert "the celeba_synthesize job celeba was interrupted" in line and "no job was started" in line
    shown = subprocess.run([str(BIN / "mmjsd"), "--scale", "ci", "status"], cwd=second, env=env, capture_output=True,
                           text=True, timeout=60)
    state = next(l for l in shown.stdout.splitlines() if l.startswith("celeba_synthesize"))
    assert "interrupted" in state and line.split("`")[-2] in state
    _run_fix(second, env, line)
    assert folder.is_dir()
    assert {p: digest(p) for p in tables} == tables
