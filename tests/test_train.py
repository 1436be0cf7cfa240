"""Training stage: a tiny run through the CLI, determinism, kill-and-resume, NaN handling.

The data are real pipeline outputs at a tiny scale: the dSprites stand-in rendered and prepared
by the same CLI calls the workflow makes.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from mmjsd import cli
from mmjsd.config import load_config
from mmjsd.core import paths
from mmjsd.errors import TrainingError
from mmjsd.training.batches import pack_binary_images, unpack_binary_images
from mmjsd.training.train import train_run
from conftest import REPO

TINY = {  # overlay for a seconds-scale run: 2 epochs of 8 steps, checkpoint every epoch
    "seeds": [0],
    "paths": {"data": "data", "results": "results"},
    "data": {"dsprites": {"source": "render", "subset": 600}},
    "model": {"dsprites": {"width": 0.25}},
    "train": {"dsprites": {"epochs": 2, "batch_size": 32, "max_train_samples": 256}, "threads": 1},
    "eval": {"latent_fit_samples": 16},   # 600 rows leave 30 for test_fit, 27 for val_fit (the config's check)
}


def write_config(directory: Path, overlay: dict) -> Path:
    raw = yaml.safe_load((REPO / "config.yaml").read_text())
    raw["scales"]["tiny"] = overlay
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Rendered + prepared tiny dSprites split, shared by the tests of this module (read-only)."""
    base = tmp_path_factory.mktemp("prepared")
    config_path = write_config(base, TINY)
    cwd = os.getcwd()
    os.chdir(base)
    try:
        assert cli.main(["dsprites-render", "--config", str(config_path), "--scale", "tiny", "--out", "data/raw/dsprites/render.npz"]) == 0
        assert cli.main(["prepare", "--config", str(config_path), "--scale", "tiny", "--dataset", "dsprites",
                         "--input", "data/raw/dsprites/render.npz", "--out-dir", "data/processed/dsprites"]) == 0
    finally:
        os.chdir(cwd)
    return base / "data" / "processed"


@pytest.fixture
def run_dir(tmp_path, prepared, monkeypatch):
    """A working directory whose data/processed links to the prepared split."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "processed").symlink_to(prepared)
    write_config(tmp_path, TINY)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def train_cli(*extra):
    return cli.main(["train", "--config", "config.yaml", "--scale", "tiny", "--dataset", "dsprites",
                     "--model", "mmjsd", "--seed", "0", "--device", "cpu", *extra])


def run_files(root: Path) -> dict[str, bytes]:
    run = root / "results" / "runs" / "dsprites" / "mmjsd" / "seed0"
    return {name: (run / name).read_bytes() for name in ("model.pt", "checkpoint.pt", "curve.csv")}


def test_pack_unpack_roundtrip():
    images = (torch.rand(5, 1, 64, 64) > 0.5).to(torch.uint8) * 255
    packed = pack_binary_images(images, chunk=2)
    assert packed.shape == (5, 512)
    assert torch.equal(unpack_binary_images(packed, (1, 64, 64)), images.float() / 255)


def test_tiny_run_writes_model_metrics_and_curve(run_dir):
    assert train_cli() == 0
    run = run_dir / "results" / "runs" / "dsprites" / "mmjsd" / "seed0"
    metrics = yaml.safe_load((run / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["steps"] == 16 and metrics["n_train"] == 256
    assert metrics["data_source"] == "render" and metrics["scale"] == "tiny"
    assert metrics["provenance"]["seed"] == 0 and metrics["provenance"]["config"]["scale"] == "tiny"
    assert "torch" in metrics["provenance"]["packages"] and metrics["provenance"]["git_commit"]
    assert metrics["device"].startswith("cpu") and metrics["samples_per_s"] > 0
    curve = (run / "curve.csv").read_text().splitlines()
    assert curve[0] == "epoch,step,loss,rec_img,rec_text,kl_style_img,kl_style_text,divergence"
    assert len(curve) == 3
    first, last = (float(line.split(",")[2]) for line in (curve[1], curve[2]))
    assert last < first  # it learns
    from mmjsd.models import load_model

    model = load_model(run / "model.pt")
    assert model.spec["model"] == "mmjsd" and model.spec["dataset"] == "dsprites"
    assert not list(run.glob("*.tmp")) and not list(run.glob(".*.tmp"))


def test_same_seed_same_bytes(run_dir, tmp_path_factory, prepared):
    assert train_cli() == 0
    first = run_files(run_dir)
    other = tmp_path_factory.mktemp("again")
    (other / "data").mkdir()
    (other / "data" / "processed").symlink_to(prepared)
    write_config(other, TINY)
    os.chdir(other)
    assert train_cli() == 0
    assert run_files(other) == first


def test_resume_after_step_limit_is_bit_identical(run_dir, tmp_path_factory, prepared):
    assert train_cli("--max-steps", "5") == 0        # pauses mid-epoch 1
    run = run_dir / "results" / "runs" / "dsprites" / "mmjsd" / "seed0"
    assert (run / "checkpoint.pt").exists() and not (run / "model.pt").exists()
    assert train_cli("--max-steps", "11") == 0       # pauses mid-epoch 2
    assert train_cli() == 0                          # finishes
    resumed = run_files(run_dir)

    straight = tmp_path_factory.mktemp("straight")
    (straight / "data").mkdir()
    (straight / "data" / "processed").symlink_to(prepared)
    write_config(straight, TINY)
    os.chdir(straight)
    assert train_cli() == 0
    assert run_files(straight) == resumed


RUN = Path("results") / "runs" / "dsprites" / "mmjsd" / "seed0"


def test_log_says_what_runs_and_one_line_per_epoch(run_dir, capsys):
    """Issue 13 item 7: the job log shows the set-up at start and each epoch as it ends."""
    assert train_cli() == 0
    log = capsys.readouterr().err.splitlines()
    start = next(line for line in log if line.startswith("train dsprites/mmjsd/seed0:"))
    assert "device cpu" in start and "data render: 256 training samples" in start and "batch 32" in start
    epochs = [line for line in log if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/2", "2/2"]
    assert all("loss " in line and "samples/s" in line and "elapsed 0:" in line and "ETA 0:" in line for line in epochs)


def test_progress_is_logged_within_an_epoch_in_the_form_status_reads(run_dir, capsys, monkeypatch):
    """A CPU epoch can last half an hour: a line at least every PROGRESS_EVERY_S within it keeps
    `mmjsd status` from calling a live job silent; the bytes of the run do not change."""
    from mmjsd.pipeline import status
    from mmjsd.training import train

    monkeypatch.setattr(train, "PROGRESS_EVERY_S", 0.0)
    assert train_cli() == 0
    log = capsys.readouterr().err.splitlines()
    within = [line for line in log if "(in progress)" in line]
    assert within and all(status.PROGRESS.match(line) for line in within), within[:3]
    assert within[0].startswith("epoch 1/2 batch 1/8 (in progress): loss so far ")


def test_run_resumed_at_an_epoch_end_logs_the_runs_rate(run_dir, capsys):
    """A run paused on the last step of an epoch (as the multi-session GPU paper run pauses) closes
    that epoch in the next call, which has trained nothing yet: the epoch line gives the run's rate
    over every call, not 0 samples/s and an endless ETA."""
    assert train_cli("--max-steps", "8") == 0      # the last step of epoch 1, before it is closed
    capsys.readouterr()
    assert train_cli() == 0
    epochs = [line for line in capsys.readouterr().err.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/2", "2/2"]
    first_rate = int(epochs[0].split(" | ")[1].split()[0])
    assert first_rate > 0 and all("ETA 0:" in line for line in epochs)


def test_curve_grows_during_the_run(run_dir):
    assert train_cli("--max-steps", "9") == 0      # epoch 1 (8 steps) done, paused in epoch 2
    assert (RUN / "curve.csv").read_text().splitlines()[1].startswith("1,8,")
    assert not (RUN / "model.pt").exists()


def test_wall_time_and_rate_add_up_across_resumes(run_dir):
    """Issue 13 item 8: a resumed run reports the time of every call, not only the last."""
    assert train_cli("--max-steps", "5") == 0
    first = json.loads((RUN / "timing.json").read_text())
    assert first["samples"] == 5 * 32 and first["wall_time_s"] > 0
    assert train_cli() == 0
    metrics = json.loads((RUN / "metrics.json").read_text())
    timing = json.loads((RUN / "timing.json").read_text())
    assert timing["samples"] == 2 * 256                       # every sample trained, once
    assert metrics["wall_time_s"] >= first["wall_time_s"]
    assert metrics["wall_time_s"] == pytest.approx(timing["wall_time_s"], abs=0.01)
    assert metrics["samples_per_s"] == pytest.approx(512 / timing["wall_time_s"], rel=0.01)


def test_finished_run_called_again_rewrites_nothing(run_dir, capsys):
    assert train_cli() == 0
    outputs = [RUN / name for name in ("model.pt", "metrics.json", "curve.csv", "checkpoint.pt")]
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in outputs}
    time.sleep(0.01)
    capsys.readouterr()
    assert train_cli() == 0
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in outputs} == before
    assert "outputs kept" in capsys.readouterr().err
    # A lost metrics file is rebuilt from the checkpoint with the run's real time, not 0 samples/s.
    wall = json.loads(before[RUN / "metrics.json"][1])["wall_time_s"]
    (RUN / "metrics.json").unlink()
    assert train_cli() == 0
    metrics = json.loads((RUN / "metrics.json").read_text())
    assert metrics["wall_time_s"] == pytest.approx(wall, abs=0.01) and metrics["samples_per_s"] > 0
    assert (RUN / "model.pt").read_bytes() == before[RUN / "model.pt"][1]


def test_killed_run_resumes_to_the_same_checkpoint(tmp_path_factory, prepared, repo_env):
    """SIGKILL mid-run (no handler can run), start again: same bytes as an uninterrupted run."""
    overlay = {**TINY, "train": {**TINY["train"], "dsprites": {"epochs": 6, "batch_size": 32, "max_train_samples": 256}}}

    def setup(name):
        directory = tmp_path_factory.mktemp(name)
        (directory / "data").mkdir()
        (directory / "data" / "processed").symlink_to(prepared)
        write_config(directory, overlay)
        return directory

    command = [sys.executable, "-m", "mmjsd", "train", "--scale", "tiny", "--dataset", "dsprites",
               "--model", "mmjsd", "--seed", "0", "--device", "cpu"]
    killed = setup("killed")
    run = killed / "results" / "runs" / "dsprites" / "mmjsd" / "seed0"
    process = subprocess.Popen(command, cwd=killed, env=repo_env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (run / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (run / "metrics.json").exists(), "the run finished before it could be killed"
    leftovers = [p for p in run.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []  # only whole files: the checkpoint, or nothing
    assert subprocess.run(command, cwd=killed, env=repo_env, capture_output=True).returncode == 0

    straight = setup("uninterrupted")
    assert subprocess.run(command, cwd=straight, env=repo_env, capture_output=True).returncode == 0
    assert run_files(straight) == run_files(killed)


def test_sigterm_saves_checkpoint_and_exits_nonzero(tmp_path_factory, prepared, repo_env):
    overlay = {**TINY, "train": {**TINY["train"], "dsprites": {"epochs": 50, "batch_size": 32, "max_train_samples": 256}}}
    directory = tmp_path_factory.mktemp("term")
    (directory / "data").mkdir()
    (directory / "data" / "processed").symlink_to(prepared)
    write_config(directory, overlay)
    run = directory / "results" / "runs" / "dsprites" / "mmjsd" / "seed0"
    process = subprocess.Popen([sys.executable, "-m", "mmjsd", "train", "--scale", "tiny", "--dataset", "dsprites",
                                "--model", "mmjsd", "--seed", "0", "--device", "cpu"],
                               cwd=directory, env=repo_env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM
    assert "checkpoint saved" in err and "run the same command again to resume" in err
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    assert json.loads(state["position"])["step"] > 0


def test_nan_loss_stops_and_keeps_last_good_checkpoint(run_dir, monkeypatch, capsys):
    """The loss turns NaN from step 11 (epoch 2): the run stops, the epoch-1 checkpoint stays."""
    config = load_config("config.yaml", "tiny")
    from mmjsd.models.mmjsd import MMJSD

    original, calls = MMJSD.loss, []

    def poisoned(self, batch):
        terms = original(self, batch)
        calls.append(1)
        if len(calls) > 10:
            terms["loss"] = terms["loss"] * float("nan")
        return terms

    monkeypatch.setattr(MMJSD, "loss", poisoned)
    with pytest.raises(TrainingError, match=r"became NaN/inf at step 11, epoch 2; the last good checkpoint, at step 8") as info:
        train_run(config, "dsprites", "mmjsd", 0)
    # the fix says what really happens: a changed lr trains from scratch, an unchanged rerun resumes
    assert "changed train setting trains this run from scratch" in info.value.fix
    checkpoint = paths.run_file(paths.RUN_CHECKPOINT, config, "dsprites", "mmjsd", 0)
    state = torch.load(checkpoint, weights_only=False)
    position = json.loads(state["position"])
    assert (position["epoch"], position["step"]) == (1, 8)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert not paths.run_file(paths.RUN_MODEL, config, "dsprites", "mmjsd", 0).exists()
    monkeypatch.setattr(MMJSD, "loss", original)
    lower = load_config("config.yaml", "tiny")
    lower["train"]["dsprites"]["lr"] /= 10
    assert train_run(lower, "dsprites", "mmjsd", 0, max_steps=1).position.step == 1          # from scratch
    assert "changed: train" in capsys.readouterr().err


def test_nan_through_cli_is_one_line(run_dir, monkeypatch, capsys):
    from mmjsd.models.mmjsd import MMJSD

    original = MMJSD.loss
    monkeypatch.setattr(MMJSD, "loss", lambda self, batch: {**original(self, batch), "loss": torch.tensor(float("inf"), requires_grad=True)})
    assert train_cli() == 2
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("mmjsd: error:")]
    assert len(errors) == 1 and err[-1] == errors[0] and "NaN/inf" in errors[0] and "fix:" in errors[0]


# --- fingerprints and checksums (issue 15 item 1) ---------------------------------------------
def test_stale_checkpoint_is_never_resumed_and_a_damaged_one_is_refused(run_dir, capsys):
    config = load_config("config.yaml", "tiny")
    assert train_run(config, "dsprites", "mmjsd", 0, max_steps=3).position.step == 3
    checkpoint = paths.run_file(paths.RUN_CHECKPOINT, config, "dsprites", "mmjsd", 0)
    state = torch.load(checkpoint, weights_only=False)
    assert len(state["run"]["data_sha256"]) == 64 and state["run"]["code"]
    # other data bytes under the same settings and sample count: not resumed
    import mmjsd.core.files as files_module

    real = files_module.file_sha256
    try:
        files_module.file_sha256 = lambda path, chunk=0: "0" * 64
        assert train_run(config, "dsprites", "mmjsd", 0, max_steps=1).position.step == 1
    finally:
        files_module.file_sha256 = real
    assert "changed: data_sha256" in capsys.readouterr().err
    # damage inside a tensor's data: torch.load does not notice, the checksum does
    assert train_run(config, "dsprites", "mmjsd", 0, max_steps=2).position.step == 2
    state = torch.load(checkpoint, weights_only=False)
    name = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][name].view(-1)[0] += 1.0
    torch.save(state, checkpoint)
    with pytest.raises(TrainingError, match="is damaged: its contents do not match the checksum"):
        train_run(config, "dsprites", "mmjsd", 0, max_steps=3)


def test_model_file_checksum_and_type_are_checked(tmp_path):
    from mmjsd.errors import DataError
    from mmjsd.models import build_model, load_model, model_spec, save_model

    config = load_config("config.yaml", "ci")
    spec = model_spec(config, "mmpoe", "dsprites", img_channels=1, text_len=64, alphabet_size=71)
    path = tmp_path / "model.pt"
    save_model(path, build_model(spec), fingerprint={"code": "x"})
    assert load_model(path, expect={"model": "mmpoe", "dataset": "dsprites"}).spec["model"] == "mmpoe"
    with pytest.raises(DataError, match="holds a 'mmpoe' model for 'dsprites', not the expected model 'mmjsd'"):
        load_model(path, expect={"model": "mmjsd", "dataset": "dsprites"})
    blob = torch.load(path, weights_only=True)
    name = next(k for k, v in blob["state_dict"].items() if v.is_floating_point())
    blob["state_dict"][name].view(-1)[0] += 1.0
    torch.save(blob, path)
    with pytest.raises(DataError, match="is damaged"):
        load_model(path)
