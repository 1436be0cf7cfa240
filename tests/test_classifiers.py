"""Attribute classifiers: they learn, are deterministic, and record held-out metrics."""

from __future__ import annotations

import json

import pytest
import torch

from fakes_eval import celeba_like_split, dsprites_like_split, small_config
from mmjsd import cli
from mmjsd.core import paths
from mmjsd.evaluation.classifiers import (
    head_sizes,
    load_classifier,
    save_classifier,
    train_classifier,
)
from mmjsd.errors import DataError

torch.set_num_threads(1)
FAST = {"epochs": 3, "batch_size": 32, "lr": 0.002, "width": 0.25, "max_train_samples": None}


@pytest.fixture(scope="module")
def dsprites_data():
    return dsprites_like_split(600, seed=0), dsprites_like_split(200, seed=1)


def _mean(d: dict) -> float:
    return sum(d.values()) / len(d)


def test_image_classifier_learns_every_factor(dsprites_data):
    train, test = dsprites_data
    classifier, metrics = train_classifier("dsprites", "img", train, test, FAST, seed=0)
    accuracy, majority = metrics["test"]["accuracy"], metrics["test"]["majority_accuracy"]
    assert set(accuracy) == {"shape", "scale", "orientation", "posX", "posY"}
    assert _mean(accuracy) > _mean(majority) + 0.3
    for factor in ("shape", "posX", "posY"):
        assert accuracy[factor] > 0.8, factor
    assert not classifier.training  # returned ready for evaluation


def test_text_classifier_learns(dsprites_data):
    train, test = dsprites_data
    settings = dict(FAST, epochs=10, width=1.0)
    _, metrics = train_classifier("dsprites", "text", train, test, settings, seed=0)
    assert _mean(metrics["test"]["accuracy"]) > _mean(metrics["test"]["majority_accuracy"]) + 0.15
    assert metrics["train_loss_per_epoch"][-1] < metrics["train_loss_per_epoch"][0]


def test_same_seed_gives_identical_bytes(dsprites_data, tmp_path):
    train, test = dsprites_data
    small_train = {**train, "images": train["images"][:128], "text": train["text"][:128], "labels": train["labels"][:128]}
    settings = dict(FAST, epochs=1)
    outputs = []
    for run, seed in enumerate((0, 0, 1)):
        for modality in ("img", "text"):
            classifier, metrics = train_classifier("dsprites", modality, small_train, test, settings, seed=seed)
            path = tmp_path / f"{run}_{modality}.pt"
            save_classifier(path, classifier)
            metrics.pop("wall_time_s")
            outputs.append((path.read_bytes(), json.dumps(metrics, sort_keys=True)))
    assert outputs[0] == outputs[2] and outputs[1] == outputs[3]      # seed 0 twice
    assert outputs[0][0] != outputs[4][0] and outputs[1][0] != outputs[5][0]  # seed 1 differs


def test_celeba_records_accuracy_and_average_precision_with_a_single_class_attribute():
    train, test = celeba_like_split(200, seed=0), celeba_like_split(60, seed=1)
    test["labels"][:, 2] = 0  # no positive in the held-out split: AP undefined, not a crash
    classifier, metrics = train_classifier("celeba", "img", train, test, FAST, seed=0)
    held_out = metrics["test"]
    assert held_out["average_precision"]["attr2"] is None
    assert held_out["average_precision_undefined"] == ["attr2"]
    assert held_out["average_precision"]["attr0"] > 0.8
    assert all(0.0 <= v <= 1.0 for v in held_out["accuracy"].values())
    assert classifier.spec["head_sizes"] == [1, 1, 1, 1] and classifier.kind == "binary"


def test_head_sizes_keep_known_dsprites_class_counts():
    labels = torch.zeros(10, 5, dtype=torch.int64)  # no sample of any class but 0
    names = ["shape", "scale", "orientation", "posX", "posY"]
    assert head_sizes("dsprites", names, labels) == [3, 6, 4, 3, 3]
    labels[0, 1] = 7  # more classes than known: the data wins
    assert head_sizes("dsprites", names, labels)[1] == 8
    assert head_sizes("celeba", ["a", "b"], labels[:, :2]) == [1, 1]


def test_max_train_samples_caps_training(dsprites_data):
    train, test = dsprites_data
    _, metrics = train_classifier("dsprites", "img", train, test, dict(FAST, epochs=1, max_train_samples=50), seed=0)
    assert metrics["n_train"] == 50


def test_load_roundtrip_and_missing_file(dsprites_data, tmp_path):
    train, test = dsprites_data
    classifier, _ = train_classifier("dsprites", "text", train, test, dict(FAST, epochs=1), seed=0)
    save_classifier(tmp_path / "text.pt", classifier)
    loaded = load_classifier(tmp_path / "text.pt")
    x = test["text"][:20].long()
    assert torch.equal(loaded.predict(x), classifier.predict(x))
    with pytest.raises(DataError, match="train-classifier"):
        load_classifier(tmp_path / "missing.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="cannot be read"):
        load_classifier(tmp_path / "bad.pt")


def made_here(config, dataset="dsprites"):
    """The fingerprint `prepare` would record under `config` (the raw input is not on disk, so it is not compared)."""
    from mmjsd.artifacts.steps import step_settings
    from mmjsd.data.processed import split_fingerprint

    return split_fingerprint(step_settings(config, "prepare", dataset), "hand-made")


def test_cli_writes_classifier_and_metrics_with_provenance(tmp_path, monkeypatch, capsys):
    from mmjsd.data.processed import save_split
    from mmjsd.evaluation.classifiers import cli_train_classifier

    config = small_config(tmp_path)
    config["classifier"]["dsprites"] = dict(FAST, epochs=1)
    for split, (n, seed) in {"train": (96, 0), "test": (40, 1)}.items():
        data = dsprites_like_split(n, seed, text_length=64)
        save_split(paths.processed(config, "dsprites", split), {**data, "source": "render", "fingerprint": made_here(config)})

    # The real parser, so the handler sees every argument the command line gives it.
    args = cli._build_parser().parse_args(["train-classifier", "--dataset", "dsprites", "--modality", "img",
                                           "--threads", "1", "--device", "cpu"])
    assert cli_train_classifier(args, config) == 0
    model_path = paths.fill(paths.CLASSIFIER, config, dataset="dsprites", modality="img")
    metrics = json.loads(paths.fill(paths.CLASSIFIER_METRICS, config, dataset="dsprites", modality="img").read_text())
    assert load_classifier(model_path).spec["modality"] == "img"
    assert set(metrics["test"]["accuracy"]) == {"shape", "scale", "orientation", "posX", "posY"}
    assert metrics["data_source"] == "render" and metrics["scale"] == "ci"
    assert metrics["device"].startswith("cpu:")
    assert {"git_commit", "packages", "config", "seed"} <= set(metrics["provenance"])
    # The job log (issue 13 item 7): set-up at start, then one line per epoch.
    log = capsys.readouterr().err.splitlines()
    assert log[0].startswith("classifier dsprites/img: device cpu") and "96 training and 40 test samples" in log[0]
    assert log[1].startswith("epoch 1/1: loss ") and "samples/s" in log[1] and "ETA 0:00:00" in log[1]


def test_epochs_per_modality_train_each_classifier_its_own_passes(tmp_path):
    """`classifier.<dataset>.epochs: {img, text}`: each classifier makes its own number of passes
    (the CelebA text classifier needs more than the image one), recorded in its metrics."""
    from mmjsd.config import validate
    from mmjsd.data.processed import save_split
    from mmjsd.evaluation.classifiers import cli_train_classifier, modality_settings

    config = small_config(tmp_path)
    config["classifier"]["dsprites"] = dict(FAST, epochs={"img": 1, "text": 2})
    validate(config)
    assert modality_settings(config["classifier"]["dsprites"], "text")["epochs"] == 2
    assert modality_settings(dict(FAST, epochs=3), "img")["epochs"] == 3
    for split, (n, seed) in {"train": (96, 0), "test": (40, 1)}.items():
        data = dsprites_like_split(n, seed, text_length=64)
        save_split(paths.processed(config, "dsprites", split), {**data, "source": "render", "fingerprint": made_here(config)})
    for modality, passes in (("img", 1), ("text", 2)):
        args = cli._build_parser().parse_args(["train-classifier", "--dataset", "dsprites", "--modality", modality,
                                               "--threads", "1", "--device", "cpu"])
        assert cli_train_classifier(args, config) == 0
        metrics = json.loads(paths.fill(paths.CLASSIFIER_METRICS, config, dataset="dsprites", modality=modality).read_text())
        assert len(metrics["train_loss_per_epoch"]) == passes and metrics["settings"]["epochs"] == passes


def test_epochs_per_modality_must_name_both(tmp_path):
    from mmjsd.config import validate
    from mmjsd.errors import ConfigError

    config = small_config(tmp_path)
    config["classifier"]["dsprites"] = dict(FAST, epochs={"img": 1})
    with pytest.raises(ConfigError):
        validate(config)
