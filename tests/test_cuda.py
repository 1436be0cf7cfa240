"""The GPU path end to end through the CLI: train (bf16), classifiers and evaluation on CUDA.

Skipped without CUDA (CI has no GPU); run on a GPU machine with `pytest tests/test_cuda.py`.
The data are the tiny rendered dSprites split of test_train.py, made by the real CLI calls.
"""

import json

import pytest
import torch

from mmjsd import cli
from mmjsd.config import load_config
from mmjsd.core import paths
from test_train import TINY, prepared, run_dir  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (CI and this project's CPU machines have none)")


def mmjsd(*args: str) -> int:
    return cli.main([args[0], "--config", "config.yaml", "--scale", "tiny", *args[1:]])


def test_train_classify_evaluate_on_cuda(run_dir, tmp_path):  # noqa: F811
    config = load_config("config.yaml", "tiny")
    assert config["precision"]["cuda"] == "bf16", "the GPU path is meant to run under bf16 autocast"
    lock_dir = str(tmp_path / "locks")
    on_gpu = ("--device", "cuda", "--gpu-lock-dir", lock_dir)
    assert mmjsd("train", "--dataset", "dsprites", "--model", "mmjsd", "--seed", "0", *on_gpu) == 0
    metrics = json.loads(paths.run_file(paths.RUN_METRICS, config, "dsprites", "mmjsd", 0).read_text())
    assert metrics["device"].startswith("cuda:")
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics["final"].values())

    for modality in ("img", "text"):
        assert mmjsd("train-classifier", "--dataset", "dsprites", "--modality", modality, *on_gpu) == 0
        classifier = json.loads(paths.fill(paths.CLASSIFIER_METRICS, config, dataset="dsprites", modality=modality).read_text())
        assert classifier["device"].startswith("cuda:")

    eval_path = paths.run_file(paths.RUN_EVAL, config, "dsprites", "mmjsd", 0)
    assert mmjsd("evaluate", "--dataset", "dsprites", "--model", "mmjsd", "--seed", "0", *on_gpu) == 0
    on_cuda = json.loads(eval_path.read_text())
    assert on_cuda["device"].startswith("cuda:")
    # The same model and classifiers evaluated on the CPU: the noise comes from the same CPU
    # generator, so only rounding differs and a few argmaxes may flip.
    assert mmjsd("evaluate", "--dataset", "dsprites", "--model", "mmjsd", "--seed", "0", "--device", "cpu") == 0
    on_cpu = json.loads(eval_path.read_text())
    for factor, directions in on_cpu["coherence"].items():
        for direction, value in directions.items():
            assert on_cuda["coherence"][factor][direction] == pytest.approx(value, abs=0.05), (factor, direction)
