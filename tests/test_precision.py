"""bf16 autocast on the CPU: the switch, determinism, float32 objectives, fallback, records."""

import os

import pytest
import torch
import yaml

from mmjsd.config import load_config
from mmjsd.models import build_model, model_spec
from mmjsd.training import precision
from test_train import TINY, prepared, run_files, train_cli, write_config  # noqa: F401  (prepared is a fixture)

BF16 = {**TINY, "precision": {"cpu": "bf16", "cuda": "bf16"}}
needs_bf16 = pytest.mark.skipif(not precision.cpu_has_native_bf16(), reason="this CPU has no native bf16")


def bf16_dir(root, prepared_dir, overlay=BF16):
    (root / "data").mkdir(parents=True)
    (root / "data" / "processed").symlink_to(prepared_dir)
    write_config(root, overlay)
    os.chdir(root)
    return root


def metrics_of(root):
    return yaml.safe_load((root / "results" / "runs" / "dsprites" / "mmjsd" / "seed0" / "metrics.json").read_text())


@needs_bf16
def test_bf16_training_is_deterministic_and_recorded(tmp_path_factory, prepared, monkeypatch):
    monkeypatch.chdir(tmp_path_factory.getbasetemp())
    first_dir = bf16_dir(tmp_path_factory.mktemp("bf16a"), prepared)
    assert train_cli() == 0
    first = run_files(first_dir)
    assert metrics_of(first_dir)["precision"] == "bf16"
    second_dir = bf16_dir(tmp_path_factory.mktemp("bf16b"), prepared)
    assert train_cli() == 0
    assert run_files(second_dir) == first  # same seed, same bytes

    fp32_dir = bf16_dir(tmp_path_factory.mktemp("fp32"), prepared, TINY)
    assert train_cli() == 0
    assert metrics_of(fp32_dir)["precision"] == "fp32"
    assert run_files(fp32_dir)["model.pt"] != first["model.pt"]  # autocast really changed the arithmetic


def test_cpu_without_bf16_falls_back_to_fp32(tmp_path, prepared, monkeypatch, capsys):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    monkeypatch.chdir(tmp_path)
    bf16_dir(tmp_path / "run", prepared)
    assert train_cli() == 0
    assert metrics_of(tmp_path / "run")["precision"] == "fp32"
    assert "no native bf16" in capsys.readouterr().err


def test_resolve_follows_the_config_per_device(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    config = {"precision": {"cuda": "bf16", "cpu": "fp32"}}
    assert precision.resolve(config, "cuda") == "bf16" and precision.resolve(config, "cpu") == "fp32"
    config = {"precision": {"cuda": "fp32", "cpu": "bf16"}}
    assert precision.resolve(config, "cuda") == "fp32" and precision.resolve(config, "cpu") == "bf16"


@needs_bf16
@pytest.mark.parametrize("model_name", ["mmjsd", "mmpoe"])
def test_objectives_stay_float32_under_bf16(model_name):
    from conftest import REPO

    config = load_config(REPO / "config.yaml", "ci")
    torch.manual_seed(0)
    model = build_model(model_spec(config, model_name, "dsprites", img_channels=1, text_len=64, alphabet_size=71))
    batch = {"img": (torch.rand(8, 1, 64, 64) > 0.5).float(), "text": torch.randint(0, 71, (8, 64))}
    with precision.autocast("cpu", "bf16"):
        # the text decoder (no text style in the config): the image decoder's pose resampling
        # returns float32 by design (tests/test_pose_decoder.py)
        decoded = model.decode(torch.zeros(8, model.content_dim), {"text": None})
        terms = model.loss(batch)
    assert decoded["text"].dtype == torch.bfloat16  # the networks did run in bf16
    assert all(value.dtype == torch.float32 for value in terms.values())
    assert torch.isfinite(terms["loss"])
