"""Evaluate one trained run (dataset, model, seed): Table 1a coherence and Table 1b latents.

(a) Coherence of cross-modal generation. Condition on test images and generate text; classify
    the generated text with the TEXT classifier against the labels of the conditioning images
    (column "text"). Condition on test text and generate images; classify them with the IMAGE
    classifier (column "img"). The paper's naming: "img" = images generated from text.
    dSprites: accuracy per factor. CelebA: accuracy and, as in the authors' code, average
    precision of the classifier's scores per attribute.
(b) Latent classifiers. Content means of the image, text and joint ({img, text} together)
    posteriors; one logistic regression per label fitted on one batch of `test_fit`
    (eval.latent_fit_samples rows) and scored on all of `test_eval`.
(c) CelebA conditioning (Figure 1's claim in numbers): mmjsd.evaluation.conditioning.

Which rows: coherence uses `eval.max_test_samples` rows of `test`, a seeded draw kept in
split order (seed EVAL_SUBSET_SEED, the same for every run so models see the same inputs);
the latent fit batch is drawn the same way from `test_fit`. A draw rather than the first rows
because a split may be stored in factor-grid order. Style and content sampling during
generation use a torch generator seeded with the run seed. Everything is deterministic on the
CPU: the same inputs give an identical eval.json.

The small functions (`select_rows`, `latent_accuracy`; `conditioning.named_attributes`) are pure so that
tests can feed them known inputs; coherence is scored with mmjsd.evaluation.classifiers' per-label
accuracy and average precision.
"""

from __future__ import annotations

import argparse
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmjsd.artifacts import fingerprints, provenance
from mmjsd.artifacts.summary import eval_summary
from mmjsd.core import files, paths, progress
from mmjsd.core.vocabulary import DIRECTIONS, REPRESENTATIONS
from mmjsd.data.processed import load_checked_split, model_input, sorted_subset
from mmjsd.errors import DataError
from mmjsd.evaluation import direct_coherence
from mmjsd.evaluation.classifiers import accuracy_per_label, average_precision_per_label, load_classifier
from mmjsd.evaluation.conditioning import conditioning_gaps, described_conditioning, paired_conditioning
from mmjsd.lab import holdout
from mmjsd.models import load_run_model
from mmjsd.training import gpu, precision, runtime

EVAL_SUBSET_SEED = 0
LOGISTIC_MAX_ITER = 1000


# --------------------------------------------------------------------------------------------
# Pure pieces
# --------------------------------------------------------------------------------------------

def select_rows(n_rows: int, cap: int | None, seed: int = EVAL_SUBSET_SEED) -> torch.Tensor:
    """All row indices, or a seeded draw of `cap` of them kept in ascending order (the same rows
    for every run: the generator is seeded with `seed`, not the run's seed)."""
    return sorted_subset(n_rows, cap, torch.Generator().manual_seed(seed))


@dataclass(frozen=True)
class LatentScore:
    accuracy: float
    note: str          # "" when the fit was ordinary; else what was special about it


def latent_accuracy(fit_z: np.ndarray, fit_y: np.ndarray, eval_z: np.ndarray, eval_y: np.ndarray) -> LatentScore:
    """Fit a logistic regression on (fit_z, fit_y), return its accuracy on (eval_z, eval_y).

    A fit batch with a single class cannot fit a classifier: that class is predicted for every
    sample. Classes of the evaluation half that the fit batch lacks can never be predicted;
    both cases are written into the note so they show in the output.
    """
    # imported here: scikit-learn takes seconds to import and only this fit needs it
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    fit_y, eval_y = np.asarray(fit_y), np.asarray(eval_y)
    fit_classes = np.unique(fit_y)
    notes = []
    if fit_classes.size == 1:
        predictions = np.full(eval_y.shape, fit_classes[0])
        notes.append(f"only class {fit_classes[0].item()} in the fit batch: constant prediction")
    else:
        classifier = LogisticRegression(max_iter=LOGISTIC_MAX_ITER, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            classifier.fit(np.asarray(fit_z, dtype=np.float64), fit_y)
        if int(np.max(classifier.n_iter_)) >= LOGISTIC_MAX_ITER:
            notes.append(f"logistic regression stopped at {LOGISTIC_MAX_ITER} iterations without converging")
        predictions = classifier.predict(np.asarray(eval_z, dtype=np.float64))
    missing = sorted(set(np.unique(eval_y).tolist()) - set(fit_classes.tolist()))
    if missing:
        notes.append(f"classes {missing} absent from the fit batch (never predicted)")
    return LatentScore(float(np.mean(predictions == eval_y)), "; ".join(notes))


# --------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------

@torch.no_grad()
def coherence(model, classifiers: dict, test: dict, rows: torch.Tensor, batch_size: int, seed: int) -> dict[str, Any]:
    """Generate across modalities for `rows` of `test` and score the generations.

    Returns {"accuracy": {direction: [per label]}, "average_precision": {...} (binary labels only),
    "direct": classifier-free measures (dSprites only, mmjsd.evaluation.direct_coherence)}.
    """
    # A CPU generator on every device: the model draws its noise there and moves it, so the
    # generations do not depend on where the model runs beyond floating-point rounding.
    generator = torch.Generator().manual_seed(seed)
    device = runtime.module_device(model)
    predictions = {d: [] for d in DIRECTIONS}
    scores = {d: [] for d in DIRECTIONS}
    direct = test.get("dataset") == "dsprites"
    matches, pixels, overlaps = [], [], []
    started, done, total = time.perf_counter(), 0, rows.numel()
    next_report = max(total // 10, 1)
    for index in runtime.batches(rows, batch_size):
        img = model_input("img", test["images"][index].to(device))
        text = model_input("text", test["text"][index].to(device))
        generated = {
            "text": model.generate({"img": img}, "text", generator=generator),
            "img": model.generate({"text": text}, "img", generator=generator),
        }
        for direction in DIRECTIONS:
            # The generated modality is scored by that modality's classifier (on the same device).
            pred, score = classifiers[direction].predict_and_score(generated[direction])
            predictions[direction].append(pred.cpu())
            if score is not None:
                scores[direction].append(score.cpu())
        done += index.numel()
        if done >= next_report or done == total:    # about ten lines per run in the job's log
            progress.log(f"coherence: {done}/{total} test samples generated and scored | "
                         + progress.rate_and_eta(done, total - done, time.perf_counter() - started))
            next_report = done + max(total // 10, 1)
        if direct:
            matches.append(direct_coherence.field_matches(generated["text"], test["text"][index], test["alphabet"]))
            pixels.append(direct_coherence.pixel_statistics(generated["img"]))
            overlaps.append(direct_coherence.shape_overlaps(generated["img"]))
    labels = test["labels"][rows].long()
    result: dict[str, Any] = {"accuracy": {d: accuracy_per_label(torch.cat(predictions[d]), labels) for d in DIRECTIONS}}
    if all(scores[d] for d in DIRECTIONS):
        result["average_precision"] = {d: average_precision_per_label(torch.cat(scores[d]), labels) for d in DIRECTIONS}
    if direct:
        result["direct"] = direct_coherence.summarise(np.concatenate(matches), np.concatenate(pixels), labels.numpy(),
                                                      list(test["label_names"]), np.concatenate(overlaps))
    return result


@torch.no_grad()
def content_means(model, split: dict, rows: torch.Tensor, batch_size: int) -> dict[str, np.ndarray]:
    """Content means per representation: unimodal content_mu of img and text, joint mu of both."""
    device = runtime.module_device(model)
    parts = {r: [] for r in REPRESENTATIONS}
    for index in runtime.batches(rows, batch_size):
        posteriors = model.encode({"img": model_input("img", split["images"][index].to(device)),
                                   "text": model_input("text", split["text"][index].to(device))})
        parts["img"].append(posteriors["img"].content_mu.cpu())
        parts["text"].append(posteriors["text"].content_mu.cpu())
        parts["joint"].append(posteriors["joint"][0].cpu())
    return {r: torch.cat(v).double().numpy() for r, v in parts.items()}


def latent_classification(model, test_fit: dict, test_eval: dict, fit_rows: torch.Tensor, batch_size: int) -> tuple[dict, dict]:
    """({rep: {label: accuracy}}, {rep: {label: note}} for the fits that needed a note)."""
    eval_rows = torch.arange(test_eval["labels"].shape[0])
    fit_z = content_means(model, test_fit, fit_rows, batch_size)
    eval_z = content_means(model, test_eval, eval_rows, batch_size)
    fit_y, eval_y = test_fit["labels"][fit_rows].numpy(), test_eval["labels"].numpy()
    accuracy: dict[str, dict[str, float]] = {}
    notes: dict[str, dict[str, str]] = {}
    for rep in REPRESENTATIONS:
        accuracy[rep] = {}
        for index, name in enumerate(test_fit["label_names"]):
            score = latent_accuracy(fit_z[rep], fit_y[:, index], eval_z[rep], eval_y[:, index])
            accuracy[rep][name] = score.accuracy
            if score.note:
                notes.setdefault(rep, {})[name] = score.note
    return accuracy, notes


def evaluate_run(model, classifiers: dict, test: dict, test_fit: dict, test_eval: dict, eval_settings: dict, seed: int) -> dict[str, Any]:
    """Everything of eval.json that is computed (no file names, no provenance)."""
    check_compatible(classifiers, test)
    model.eval()
    batch_size = int(eval_settings["batch_size"])
    names = list(test["label_names"])
    coherence_rows = select_rows(test["labels"].shape[0], eval_settings.get("max_test_samples"))
    fit_rows = select_rows(test_fit["labels"].shape[0], int(eval_settings["latent_fit_samples"]))
    scored = coherence(model, classifiers, test, coherence_rows, batch_size, seed)
    latent, latent_notes = latent_classification(model, test_fit, test_eval, fit_rows, batch_size)
    result: dict[str, Any] = {
        "coherence": {n: {d: scored["accuracy"][d][i] for d in DIRECTIONS} for i, n in enumerate(names)},
        "latent": latent,
        "latent_notes": latent_notes,
        "n_coherence_samples": int(coherence_rows.numel()),
        "n_latent_fit": int(fit_rows.numel()),
        "n_latent_eval": int(test_eval["labels"].shape[0]),
    }
    if "direct" in scored:
        result["coherence_direct"] = scored["direct"]
    if "average_precision" in scored:
        result["coherence_average_precision"] = {
            n: {d: scored["average_precision"][d][i] for d in DIRECTIONS} for i, n in enumerate(names)
        }
    figure_texts = list(eval_settings.get("figure", {}).get("texts", []))
    if classifiers["img"].kind == "binary" and figure_texts:   # CelebA: the figure strings' attributes
        conditioning = conditioning_gaps(model, classifiers["img"], figure_texts, test, seed)
        if conditioning:
            result["conditioning"] = conditioning
        described = described_conditioning(model, classifiers["img"], test_eval, batch_size, seed)
        if described:
            result["conditioning_described"] = described
        paired = paired_conditioning(model, classifiers["img"], figure_texts, test_eval, seed)
        if paired:
            result["conditioning_paired"] = paired
    return result


def check_compatible(classifiers: dict, test: dict) -> None:
    for modality, classifier in classifiers.items():
        spec = classifier.spec
        if list(spec["label_names"]) != list(test["label_names"]) or spec["text_length"] != test["text"].shape[1] \
                or spec["alphabet_size"] != len(test["alphabet"]):
            raise DataError(
                f"the {modality} classifier was trained on data of another layout (labels, text length or alphabet)",
                f"retrain it: `mmjsd train-classifier --dataset {test.get('dataset', 'DATASET')} --modality {modality}`",
            )


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------

def load_checked_classifier(config: dict, dataset: str, modality: str, path: Path, config_file: str | Path = "config.yaml"):
    """The classifier of `modality`, refused when damaged or when it was trained on other splits,
    under other settings or by other code than this run would use (mmjsd.artifacts.fingerprints)."""
    fix = f"retrain it (rule train_classifier): `{fingerprints.rebuild_command(config, path, config_file)}`"
    classifier = load_classifier(path, fix=fix)
    fingerprints.check_classifier(classifier.fingerprint, path, config, dataset, modality, config_file)
    return classifier


def read_classifier_metrics(config: dict, dataset: str, modality: str) -> tuple[dict, Path]:
    path = paths.fill(paths.CLASSIFIER_METRICS, config, dataset=dataset, modality=modality)
    fix = f"train the classifier: `mmjsd train-classifier --scale {config['scale']} --dataset {dataset} --modality {modality}`"
    return files.read_json(path, fix, what="classifier metrics"), path


def load_inputs(config: dict, dataset: str, config_file: str | Path = "config.yaml") -> tuple[dict, dict, dict]:
    """What an evaluation reads besides the model, each checked: the held-out splits (test,
    test_fit, test_eval in the pipeline; val, val_fit, val_eval in a selection run: mmjsd.lab.holdout),
    the classifier of each direction, and the classifiers' paths."""
    splits = {name: load_checked_split(config, dataset, name, config_file) for name in holdout.splits()}
    classifier_paths = {m: paths.fill(paths.CLASSIFIER, config, dataset=dataset, modality=m) for m in DIRECTIONS}
    classifiers = {m: load_checked_classifier(config, dataset, m, p, config_file) for m, p in classifier_paths.items()}
    return splits, classifiers, classifier_paths


def _held_out_accuracy(metrics: tuple[dict, Path], held_out: str) -> dict:
    """A classifier's accuracy on the split this evaluation scores (its metrics file names it)."""
    record, path = metrics
    if held_out not in record:
        raise DataError(f"classifier metrics {path} hold no accuracy on the {held_out} split (the classifier was "
                        f"trained for another held-out split)", f"retrain the classifier with MMJSD_HOLDOUT={held_out}"
                        if held_out != "test" else "retrain the classifier: `snakemake` (MMJSD_HOLDOUT unset)")
    return record[held_out]["accuracy"]


def cli_evaluate(args: argparse.Namespace, config: dict) -> int:
    placement = runtime.place(args, config)   # holds the GPU lock (if any) until the process ends
    device, threads = placement.device, placement.threads
    dataset, model_name, seed = args.dataset, args.model, args.seed
    held_out, fit_name, eval_name = holdout.splits()
    splits, classifiers, classifier_paths = load_inputs(config, dataset, args.config)
    classifier_metrics = {m: read_classifier_metrics(config, dataset, m) for m in DIRECTIONS}
    model, model_path = load_run_model(config, dataset, model_name, seed)
    model.to(device)
    for classifier in classifiers.values():
        classifier.to(device)

    precision_used = precision.resolve(config, device)
    progress.log(f"evaluate {dataset}/{model_name}/seed{seed}: device {device}{placement.where()}, precision {precision_used}, "
                 f"{threads} CPU threads; data {splits[held_out].get('source', 'unknown')}: "
                 + ", ".join(f"{name} {split['labels'].shape[0]}" for name, split in splits.items())
                 + f" samples (coherence on at most {config['eval']['max_test_samples'] or 'all'})")
    started = time.perf_counter()
    with precision.autocast(device, precision_used):
        computed = evaluate_run(model, classifiers, splits[held_out], splits[fit_name], splits[eval_name], config["eval"], seed)
    record = {
        "dataset": dataset,
        "model": model_name,
        "seed": seed,
        "scale": config["scale"],
        "holdout": held_out,
        "data_source": splits[held_out].get("source", "unknown"),
        "data_notes": splits[held_out].get("notes", ""),
        **computed,
        "classifier_accuracy": {m: _held_out_accuracy(classifier_metrics[m], held_out) for m in DIRECTIONS},
        "inputs": {
            "model": str(model_path),
            "classifiers": {m: str(p) for m, p in classifier_paths.items()},
            "classifier_metrics": {m: str(classifier_metrics[m][1]) for m in DIRECTIONS},
            "splits": {name: str(paths.processed(config, dataset, name)) for name in splits},
        },
        "model_spec": _plain(getattr(model, "spec", {})),
        # what made these numbers: the bytes of every file read, the config keys, the code
        "fingerprint": fingerprints.eval_fingerprint(config, dataset, model_name, seed),
        "threads": threads,
        "device": gpu.device_name(device),
        "precision": precision_used,
        "provenance": provenance.provenance(config=config, seed=seed),
    }
    out = paths.run_file(paths.RUN_EVAL, config, dataset, model_name, seed)
    files.write_json(out, files.sealed(files.json_safe(record)))   # aggregate refuses a hand-edited number
    files.write_json(paths.run_file(paths.RUN_EVAL_SUMMARY, config, dataset, model_name, seed), files.json_safe(eval_summary(record)))
    progress.log(f"evaluation took {progress.clock(time.perf_counter() - started)}")
    summary = ", ".join(f"{n} img {v['img']:.3f} text {v['text']:.3f}" for n, v in list(computed["coherence"].items())[:5])
    print(f"{dataset}/{model_name}/seed{seed}: coherence {summary} -> {out}")
    return 0


def _plain(obj: Any) -> Any:
    """A JSON-friendly copy of the model spec (tensors to lists, unknown objects to str)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)
