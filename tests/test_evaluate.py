"""Coherence and latent classification on small inputs with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fakes_eval import (
    ConstantModel,
    OracleModel,
    celeba_like_split,
    dsprites_like_split,
    small_config,
)
from mmjsd import cli
from mmjsd.core import paths
from mmjsd.data.text import ALPHABET, decode, strip_padding
from mmjsd.evaluation.classifiers import (
    accuracy_per_label,
    average_precision_per_label,
    save_classifier,
    train_classifier,
)
from mmjsd.data.processed import model_input
from mmjsd.evaluation.evaluate import (
    evaluate_run,
    latent_accuracy,
    select_rows,
)

torch.set_num_threads(1)
FAST = {"epochs": 3, "batch_size": 32, "lr": 0.002, "width": 0.25, "max_train_samples": None}
EVAL = {"batch_size": 64, "max_test_samples": 120, "latent_fit_samples": 60}


def _halves(test: dict) -> tuple[dict, dict]:
    n = test["labels"].shape[0] // 2
    take = lambda rows: {**test, "images": test["images"][rows], "text": test["text"][rows], "labels": test["labels"][rows]}
    return take(slice(0, n)), take(slice(n, None))


@pytest.fixture(scope="module")
def dsprites_setup():
    train, test = dsprites_like_split(500, seed=0), dsprites_like_split(160, seed=1)
    # the oracle looks samples up by content: every test image and text must be unique
    assert len({bytes(t.numpy()) for t in test["text"]}) == 160
    assert len({bytes(i.numpy()) for i in test["images"]}) == 160
    classifiers = {m: train_classifier("dsprites", m, train, test, dict(FAST, width=1.0, epochs=4 if m == "img" else 8), seed=0)[0]
                   for m in ("img", "text")}
    return train, test, classifiers


# ------------------------------------------------------------------ pure functions
# A perfect generator scoring the classifier's own accuracy: test_oracle_model_gives_classifier_accuracy_and_perfect_latents.
def test_constant_predictions_score_the_frequency_of_their_class():
    labels = torch.tensor([[0, 1], [0, 2], [1, 2], [0, 0]])
    constant = torch.tensor([[0, 2]]).repeat(4, 1)      # every generation classified alike
    assert accuracy_per_label(constant, labels) == [0.75, 0.5]
    # the majority class reaches the majority rate, i.e. chance level for balanced labels
    balanced = torch.arange(6).remainder(3).unsqueeze(1)
    assert accuracy_per_label(torch.zeros(6, 1, dtype=torch.int64), balanced) == [pytest.approx(1 / 3)]


def test_average_precision_known_values_and_undefined_attribute():
    labels = torch.tensor([[1, 0], [0, 0], [1, 0], [0, 0]])
    scores = torch.tensor([[0.9, 0.1], [0.2, 0.2], [0.8, 0.3], [0.1, 0.4]])
    assert average_precision_per_label(scores, labels) == [1.0, None]
    reversed_scores = 1 - scores
    # positives ranked 3rd and 4th: AP = 0.5 * 1/3 + 0.5 * 2/4
    assert average_precision_per_label(reversed_scores, labels)[0] == pytest.approx(5 / 12)


def test_latent_accuracy_separable_data_is_perfect():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    z = np.eye(3)[y] * 3 + rng.normal(0, 0.1, (60, 3))
    score = latent_accuracy(z[::2], y[::2], z[1::2], y[1::2])
    assert score.accuracy == 1.0 and score.note == ""


def test_latent_accuracy_single_class_fit_batch_predicts_that_class():
    fit_y = np.zeros(10, dtype=int)
    eval_y = np.array([0, 0, 0, 1, 2])
    score = latent_accuracy(np.random.default_rng(0).normal(size=(10, 2)), fit_y, np.zeros((5, 2)), eval_y)
    assert score.accuracy == pytest.approx(0.6)
    assert "only class 0" in score.note and "[1, 2] absent" in score.note


def test_latent_accuracy_class_missing_from_fit_batch_is_reported():
    fit_y = np.array([0, 1] * 10)
    fit_z = np.eye(3)[fit_y]
    eval_y = np.array([0, 1, 2, 2])
    score = latent_accuracy(fit_z, fit_y, np.eye(3)[eval_y], eval_y)
    assert score.accuracy == pytest.approx(0.5)       # class 2 can never be predicted
    assert "[2] absent from the fit batch" in score.note


def test_select_rows_is_a_sorted_seeded_subset():
    rows = select_rows(100, 10)
    assert rows.numel() == 10 and torch.equal(rows, rows.sort().values) and torch.equal(rows, select_rows(100, 10))
    assert torch.equal(select_rows(5, None), torch.arange(5)) and torch.equal(select_rows(5, 50), torch.arange(5))


# ------------------------------------------------------------------ one run with fake models
def test_oracle_model_gives_classifier_accuracy_and_perfect_latents(dsprites_setup):
    train, test, classifiers = dsprites_setup
    test_fit, test_eval = _halves(test)
    model = OracleModel([test])
    result = evaluate_run(model, classifiers, test, test_fit, test_eval, EVAL, seed=0)
    rows = select_rows(test["labels"].shape[0], EVAL["max_test_samples"])
    labels = test["labels"][rows]
    expected_img = accuracy_per_label(classifiers["img"].predict(model_input("img", test["images"][rows])), labels)
    expected_text = accuracy_per_label(classifiers["text"].predict(model_input("text", test["text"][rows])), labels)
    for i, name in enumerate(test["label_names"]):
        assert result["coherence"][name] == {"img": expected_img[i], "text": expected_text[i]}
    assert result["n_coherence_samples"] == 120 and result["n_latent_fit"] == 60
    for rep in ("img", "text", "joint"):
        assert all(v == 1.0 for v in result["latent"][rep].values()), rep
    assert ("img",) in [c[0] for c in model.calls] and ("text",) in [c[0] for c in model.calls]
    again = evaluate_run(OracleModel([test]), classifiers, test, test_fit, test_eval, EVAL, seed=0)
    assert json.dumps(again, sort_keys=True) == json.dumps(result, sort_keys=True)


def test_constant_model_scores_its_class_frequency(dsprites_setup):
    _, test, classifiers = dsprites_setup
    test_fit, test_eval = _halves(test)
    result = evaluate_run(ConstantModel([test]), classifiers, test, test_fit, test_eval, EVAL, seed=0)
    rows = select_rows(test["labels"].shape[0], EVAL["max_test_samples"])
    labels = test["labels"][rows]
    predicted = classifiers["img"].predict(model_input("img", test["images"][:1]))[0]
    for i, name in enumerate(test["label_names"]):
        assert result["coherence"][name]["img"] == pytest.approx(float((labels[:, i] == predicted[i]).double().mean()))


def test_latent_notes_when_fit_batch_misses_a_class(dsprites_setup):
    _, test, classifiers = dsprites_setup
    test_fit, test_eval = _halves(test)
    test_fit = {**test_fit, "labels": test_fit["labels"].clone()}
    test_fit["labels"][:, 0] = 0   # the fit half only ever shows shape 0
    # the oracle's content is one-hot of ITS table's labels, so give it the edited ones too
    result = evaluate_run(OracleModel([test_fit, test_eval]), classifiers, test, test_fit, test_eval,
                          dict(EVAL, latent_fit_samples=40), seed=0)
    for rep in ("img", "text", "joint"):
        assert "only class 0" in result["latent_notes"][rep]["shape"]
        frequency = float((test_eval["labels"][:, 0] == 0).double().mean())
        assert result["latent"][rep]["shape"] == pytest.approx(frequency)


def test_celeba_run_reports_average_precision():
    train, test = celeba_like_split(200, seed=0), celeba_like_split(80, seed=1)
    classifiers = {m: train_classifier("celeba", m, train, test, dict(FAST, width=1.0, epochs=4), seed=0)[0] for m in ("img", "text")}
    test_fit, test_eval = _halves(test)
    result = evaluate_run(OracleModel([test], dataset="celeba"), classifiers, test, test_fit, test_eval,
                          dict(EVAL, max_test_samples=None, latent_fit_samples=40), seed=0)
    _, scores = classifiers["img"].predict_and_score(model_input("img", test["images"]))
    expected = average_precision_per_label(scores, test["labels"])
    assert [result["coherence_average_precision"][n]["img"] for n in test["label_names"]] == expected


# ------------------------------------------------------------------ the CLI on a real (untrained) model
def test_cli_evaluate_with_a_real_model_is_deterministic(dsprites_setup, tmp_path, capsys):
    from mmjsd.artifacts.fingerprints import classifier_fingerprint
    from mmjsd.data.processed import save_split
    from mmjsd.evaluation.evaluate import cli_evaluate
    from test_classifiers import made_here
    from mmjsd.models import build_model, expected_run, model_spec, save_model

    config = small_config(tmp_path)
    config["eval"] = dict(config["eval"], batch_size=32, max_test_samples=40, latent_fit_samples=20)
    config["model"]["dsprites"]["width"] = 0.25
    test = dsprites_like_split(60, seed=3, text_length=64)
    fit, evaluation = _halves(test)
    for name, split in {"test": test, "test_fit": fit, "test_eval": evaluation}.items():
        save_split(paths.processed(config, "dsprites", name), {**split, "source": "render", "fingerprint": made_here(config)})
    for modality in ("img", "text"):
        classifier, metrics = train_classifier("dsprites", modality, test, test, dict(FAST, epochs=1), seed=0)
        save_classifier(paths.fill(paths.CLASSIFIER, config, dataset="dsprites", modality=modality), classifier,
                        fingerprint=classifier_fingerprint(config, "dsprites", modality))
        paths.fill(paths.CLASSIFIER_METRICS, config, dataset="dsprites", modality=modality).write_text(json.dumps(metrics))
    torch.manual_seed(0)
    model = build_model(model_spec(config, "mmjsd", "dsprites", 1, 64, len(test["alphabet"])))
    save_model(paths.run_file(paths.RUN_MODEL, config, "dsprites", "mmjsd", 0), model,
               fingerprint=expected_run(config, "dsprites", "mmjsd", 0))

    # The real parser, so the handler sees every argument the command line gives it.
    args = cli._build_parser().parse_args(["evaluate", "--dataset", "dsprites", "--model", "mmjsd", "--seed", "0",
                                           "--threads", "1", "--device", "cpu"])

    out = paths.run_file(paths.RUN_EVAL, config, "dsprites", "mmjsd", 0)
    assert cli_evaluate(args, config) == 0
    first = out.read_bytes()
    assert cli_evaluate(args, config) == 0
    assert out.read_bytes() == first
    record = json.loads(first)
    assert set(record["coherence"]["shape"]) == {"img", "text"}
    assert set(record["latent"]) == {"img", "text", "joint"}
    assert record["data_source"] == "render" and record["scale"] == "ci"
    assert record["classifier_accuracy"]["img"] == metrics_for(config, "img")
    assert record["provenance"]["seed"] == 0
    # The job log (issue 13 item 7): set-up, progress of the generations, time taken.
    log = capsys.readouterr().err.splitlines()
    start = next(line for line in log if line.startswith("evaluate dsprites/mmjsd/seed0:"))
    assert "device cpu" in start and "test 60" in start
    progress_lines = [line for line in log if line.startswith("coherence: ")]
    assert progress_lines and progress_lines[-1].startswith("coherence: 40/40 test samples") and "ETA" in progress_lines[-1]
    assert log[-1].startswith("evaluation took 0:")


def metrics_for(config: dict, modality: str) -> dict:
    path = paths.fill(paths.CLASSIFIER_METRICS, config, dataset="dsprites", modality=modality)
    return json.loads(path.read_text())["test"]["accuracy"]


def test_named_attributes_of_the_figure_strings():
    from mmjsd.evaluation.conditioning import named_attributes

    names = ["Eyeglasses", "Male", "Smiling", "Wavy_Hair", "Bald"]
    texts = ["male, smiling", "smiling", "male", "wavy hair"]
    assert named_attributes(texts, names) == {"Male": [True, False, True, False], "Smiling": [True, True, False, False],
                                             "Wavy_Hair": [False, False, False, True]}


class BrightWhenMale(torch.nn.Module):
    """Faces that are white exactly when the text names 'male', black otherwise; the sampled
    image styles (`generator`) must not matter."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))   # a device for module_device

    def generate(self, cond, target, generator=None):
        said = [("male" in strip_padding(t).split(", ")) for t in decode(cond["text"].cpu())]
        noise = torch.rand(len(said), generator=generator)
        return torch.tensor(said, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 3, 64, 64) + 0 * noise.view(-1, 1, 1, 1)


class Brightness:
    """A classifier that reads a face's brightness as the probability of each of `labels` attributes."""

    def __init__(self, labels: int):
        self.labels = labels

    def predict_and_score(self, faces):
        p = faces.mean(dim=(1, 2, 3)).unsqueeze(1).expand(-1, self.labels)
        return (p > 0.5).long(), p


def test_conditioning_gap_follows_the_text_not_the_style():
    """A model whose faces are bright exactly when the text says 'male', scored by a classifier that
    reads brightness as every attribute's probability: Male gap 1, Smiling gap 0 (half of each
    group names 'male')."""
    from mmjsd.evaluation.conditioning import conditioning_gaps

    texts = ["male, smiling, eyeglasses", "male, smiling", "male, eyeglasses", "male", "smiling, eyeglasses", "smiling",
             "eyeglasses", "wavy hair, heavy makeup, wearing lipstick"]
    test = {"text": torch.zeros(1, 256, dtype=torch.uint8), "alphabet": ALPHABET, "label_names": ["Eyeglasses", "Male", "Smiling"]}
    result = conditioning_gaps(BrightWhenMale(), Brightness(3), texts, test, seed=0)
    assert result["gaps"]["Male"]["gap"] == 1.0 and result["gaps"]["Smiling"]["gap"] == 0.0
    assert result["gaps"]["Male"]["strings_with"] == 4 and result["faces_per_string"] == 64


def test_paired_conditioning_switches_one_attribute_in_real_rows():
    """Faces bright exactly when the text says 'male': switching Male on and off in each row's text
    moves P by 1 in every row; switching Smiling moves nothing. Rows are real attribute rows
    (here: the first of them has Male on, the second off), written as in training."""
    from mmjsd.data.celeba import ATTRIBUTE_NAMES
    from mmjsd.evaluation.conditioning import paired_conditioning

    labels = torch.full((2, len(ATTRIBUTE_NAMES)), -1, dtype=torch.int8)
    labels[0, ATTRIBUTE_NAMES.index("Male")] = 1
    labels[:, ATTRIBUTE_NAMES.index("Smiling")] = 1
    test_eval = {"text": torch.zeros(2, 256, dtype=torch.uint8), "alphabet": ALPHABET,
                 "label_names": list(ATTRIBUTE_NAMES), "labels": labels}
    result = paired_conditioning(BrightWhenMale(), Brightness(len(ATTRIBUTE_NAMES)), ["male, smiling", "smiling", "male", "eyeglasses"],
                                 test_eval, seed=0)
    assert result["rows"] == 2 and set(result["gaps"]) == {"Male", "Smiling", "Eyeglasses"}
    assert result["gaps"]["Male"] == {"with": 1.0, "without": 0.0, "gap": 1.0, "rows_rising": 1.0}
    for name in ("Smiling", "Eyeglasses"):
        assert result["gaps"][name]["gap"] == 0.0 and result["gaps"][name]["rows_rising"] == 0.0


def test_described_conditioning_reads_real_texts_at_several_paddings():
    """Faces bright exactly when the text says 'male', from four real texts re-padded at seeded
    starts: Male gap 1 (two texts name it); Smiling gap 0 (one male text and one other on each side)."""
    from mmjsd.data.celeba import ATTRIBUTE_NAMES
    from mmjsd.data.text import encode_at_seeded_starts
    from mmjsd.evaluation.conditioning import DESCRIBED_PADDINGS, described_conditioning

    texts = ["male, smiling", "smiling", "male", "wavy hair"]
    test_eval = {"text": encode_at_seeded_starts(texts, 256, ALPHABET, seed=5), "alphabet": ALPHABET,
                 "label_names": list(ATTRIBUTE_NAMES)}
    result = described_conditioning(BrightWhenMale(), Brightness(len(ATTRIBUTE_NAMES)), test_eval, batch_size=3, seed=0)
    assert result["texts"] == 4 and result["faces_per_text"] == DESCRIBED_PADDINGS
    assert set(result["gaps"]) == {"Male", "Smiling", "Wavy_Hair"}
    assert result["gaps"]["Male"] == {"with": 1.0, "without": 0.0, "gap": 1.0, "texts_with": 2, "texts_without": 2}
    assert result["gaps"]["Smiling"]["gap"] == 0.0 and abs(result["gaps"]["Wavy_Hair"]["gap"] + 2 / 3) < 1e-6


def test_a_model_of_another_slot_is_refused(tmp_path):
    """A model.pt copied from another seed, config or data into a run's slot is never evaluated
    under that slot's name: its recorded run key must match what the slot expects."""
    from mmjsd.config import load_config
    from mmjsd.errors import DataError
    from mmjsd.models import build_model, expected_run, load_run_model, model_spec, save_model

    config = load_config(Path(__file__).resolve().parents[1] / "config.yaml", "ci")
    config["paths"] = {"data": str(tmp_path / "data"), "results": str(tmp_path / "results")}
    slot = paths.run_file(paths.RUN_MODEL, config, "dsprites", "mmjsd", 0)
    slot.parent.mkdir(parents=True)
    model = build_model(model_spec(config, "mmjsd", "dsprites", 1, 64, 71))
    save_model(slot, model, fingerprint=expected_run(config, "dsprites", "mmjsd", 0))
    assert load_run_model(config, "dsprites", "mmjsd", 0)[1] == slot
    other_seed = expected_run(config, "dsprites", "mmjsd", 1)
    other_scale = {**expected_run(config, "dsprites", "mmjsd", 0), "train": {**config["train"]["dsprites"], "epochs": 12}}
    for recorded, named in ((other_seed, "seed"), (other_scale, "train.epochs"), ({}, "dataset")):
        save_model(slot, model, fingerprint=recorded)
        with pytest.raises(DataError, match=f"not trained for this slot .*{named}"):
            load_run_model(config, "dsprites", "mmjsd", 0)
