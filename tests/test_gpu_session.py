"""The paper run's pause and resume across calls (benchmarks/gpu_session.sh, PARTS=paper), on the CPU.

The GPU paper run is trained in pieces, one per lent device call: each call pauses at MAX_STEPS and
must send back everything the next call resumes from (the checkpoint in pieces, its timing, the
training log) before it scores the paused model, because the scoring may run past the device's
time. Here two calls on a small subset of the rendered grid: the second resumes from what the first
sent back, and the run's timing adds up over both.
"""

import json
import subprocess
import sys
import tarfile

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow

BATCH = 256   # config.yaml's dSprites batch size, which the paper step keeps


def paper_call(out, repo_env, max_steps, resume_dir=None):
    env = {**repo_env, "PARTS": "paper", "MODELS": "mmjsd", "SUBSET": "2000", "EPOCHS": "1",
           "MAX_STEPS": str(max_steps), "PYTHON": sys.executable, "PYTHONPATH": ""}
    if resume_dir:
        env["RESUME_DIR"] = str(resume_dir)
    result = subprocess.run(["bash", "benchmarks/gpu_session.sh", str(out)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def member(tgz, name):
    """The text of the member whose path ends in `name` in the tarball `tgz`."""
    with tarfile.open(tgz) as tar:
        (info,) = [m for m in tar.getmembers() if m.name.endswith(name)]
        return tar.extractfile(info).read().decode()


def test_paper_step_pauses_sends_back_what_a_resume_needs_and_resumes(tmp_path, repo_env):
    first, second = tmp_path / "call1", tmp_path / "call2"

    paper_call(first, repo_env, max_steps=3)
    assert list(first.glob("checkpoint_mmjsd.pt.part*"))   # in pieces of 15 MiB
    assert len(list(first.iterdir())) <= 7   # the device sends back 8 files, one is the caller's log
    state = first / "train_state.tgz"        # sent before the scoring
    assert json.loads(member(state, "timing_mmjsd.json"))["samples"] == 3 * BATCH
    assert "paused at step 3" in member(state, "train_mmjsd.log")
    results = first / "paper_results.tgz"
    assert json.loads(member(results, "mmjsd/seed0/eval_paused.json"))["paused"]["step"] == 3

    log = paper_call(second, repo_env, max_steps=5, resume_dir=first)
    assert "resuming mmjsd from" in log
    assert "(step 3)" in member(second / "train_state.tgz", "train_mmjsd.log")
    timing = json.loads(member(second / "train_state.tgz", "timing_mmjsd.json"))
    assert timing["samples"] == 5 * BATCH   # both calls' samples
    assert timing["wall_time_s"] > json.loads(member(state, "timing_mmjsd.json"))["wall_time_s"]
    scored = json.loads(member(second / "paper_results.tgz", "mmjsd/seed0/eval_paused.json"))
    assert scored["paused"]["step"] == 5
    assert set(scored["coherence"]) == {"shape", "scale", "orientation", "posX", "posY"}
