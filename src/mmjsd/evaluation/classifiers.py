"""Attribute classifiers, one per modality, that score cross-modal generations (Table 1a).

An image classifier (small strided conv net) and a text classifier (1-D conv net over one-hot
characters; both in mmjsd.networks.classifier) each predict every label of a dataset at once
from one shared trunk:
- dSprites: one categorical head per factor (shape, scale, orientation, posX, posY: 3, 6, 4,
  3, 3 classes, the discretised text factors), cross-entropy loss summed over heads;
- CelebA: one binary logit per attribute (40), binary cross-entropy.

Inputs use the models' conventions, so generated samples can be classified directly:
images float B x C x 64 x 64 in [0, 1]; text int64 B x L of alphabet indices.

Training holds the split in memory as tensors (uint8, converted per batch) on the training
device (a GPU claimed like `mmjsd train` does, else the CPU), draws batches by index from a
seeded `torch.randperm`, and initialises weights from the seed inside a forked RNG, so on the
CPU the same seed and thread count give byte-identical weights. `max_train_samples` trains on a
seeded subset of that many training rows, kept in split order.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmjsd.artifacts import fingerprints, provenance
from mmjsd.artifacts.summary import classifier_summary
from mmjsd.core import files, paths, progress
from mmjsd.data.dsprites import LABEL_NAMES, LABEL_SIZES
from mmjsd.data.processed import load_checked_split, model_input, sorted_subset
from mmjsd.errors import DataError
from mmjsd.lab import holdout
from mmjsd.models.base import per_modality
from mmjsd.networks.classifier import AttributeClassifier
from mmjsd.training import gpu, precision, runtime

# Known class counts of the discretised dSprites factors (the text's words).
DSPRITES_CLASS_COUNTS = dict(zip(LABEL_NAMES, LABEL_SIZES))
# The classifier's own seed: weights and batch order. Fixed (not a config key) so that every
# run of every model is scored by the same classifier.
CLASSIFIER_SEED = 0
FORMAT_VERSION = 1


def label_kind(dataset: str) -> str:
    """'binary' (one logit per attribute, CelebA) or 'categorical' (one softmax head per factor)."""
    return "binary" if dataset == "celeba" else "categorical"


def head_sizes(dataset: str, label_names: list[str], *label_tensors: torch.Tensor) -> list[int]:
    """Outputs per label: 1 for binary attributes, else the class count.

    The class count is the larger of the known dSprites size and (max label + 1) over the
    given label tensors, so a split that happens to miss the top class still gets the full head.
    """
    if label_kind(dataset) == "binary":
        return [1] * len(label_names)
    sizes = []
    for index, name in enumerate(label_names):
        observed = max(int(t[:, index].max()) + 1 for t in label_tensors) if label_tensors else 1
        sizes.append(max(DSPRITES_CLASS_COUNTS.get(name, 1), observed))
    return sizes


def build_classifier(dataset: str, modality: str, split: dict, settings: dict, sizes: list[int]) -> AttributeClassifier:
    spec = {
        "format": FORMAT_VERSION,
        "dataset": dataset,
        "modality": modality,
        "kind": label_kind(dataset),
        "width": float(settings["width"]),
        "label_names": list(split["label_names"]),
        "head_sizes": list(sizes),
        "in_channels": int(split["images"].shape[1]),
        "text_length": int(split["text"].shape[1]),
        "alphabet_size": len(split["alphabet"]),
    }
    return AttributeClassifier(spec)


def accuracy_per_label(predictions: torch.Tensor, labels: torch.Tensor) -> list[float]:
    return [float(v) for v in (predictions == labels).double().mean(dim=0)]


def average_precision_per_label(scores: torch.Tensor, labels: torch.Tensor) -> list[float | None]:
    """AP per binary attribute; None where the labels hold no positive (AP undefined)."""
    # imported here: scikit-learn takes seconds to import and only CelebA's scores need it
    from sklearn.metrics import average_precision_score

    result: list[float | None] = []
    labels_np, scores_np = labels.numpy(), scores.double().numpy()
    for index in range(labels_np.shape[1]):
        y = labels_np[:, index]
        result.append(None if y.max() < 1 else float(average_precision_score(y, scores_np[:, index])))
    return result


def majority_accuracy_per_label(labels: torch.Tensor) -> list[float]:
    """Accuracy of always predicting each label's most frequent value (a chance reference)."""
    result = []
    for index in range(labels.shape[1]):
        counts = torch.bincount(labels[:, index].long())
        result.append(float(counts.max()) / labels.shape[0])
    return result


@torch.no_grad()
def predict_in_batches(classifier: AttributeClassifier, modality: str, raw: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Predictions (and scores) for stored split tensors, on the classifier's device; results on the CPU."""
    classifier.eval()
    device = runtime.module_device(classifier)
    predictions, scores = [], []
    for batch in runtime.batches(raw, batch_size):
        pred, score = classifier.predict_and_score(model_input(modality, batch.to(device)))
        predictions.append(pred.cpu())
        if score is not None:
            scores.append(score.cpu())
    return torch.cat(predictions), (torch.cat(scores) if scores else None)


def held_out_metrics(classifier: AttributeClassifier, modality: str, split: dict, batch_size: int) -> dict[str, Any]:
    raw = split["images"] if modality == "img" else split["text"]
    labels = split["labels"].long()
    predictions, scores = predict_in_batches(classifier, modality, raw, batch_size)
    names = list(split["label_names"])
    metrics: dict[str, Any] = {
        "accuracy": dict(zip(names, accuracy_per_label(predictions, labels))),
        "majority_accuracy": dict(zip(names, majority_accuracy_per_label(labels))),
    }
    if scores is not None:
        ap = average_precision_per_label(scores, labels)
        metrics["average_precision"] = dict(zip(names, ap))
        metrics["average_precision_undefined"] = [n for n, v in zip(names, ap) if v is None]
    return metrics


def _modality_tensor(split: dict, modality: str) -> torch.Tensor:
    return split["images"] if modality == "img" else split["text"]


def train_classifier(dataset: str, modality: str, train_split: dict, test_split: dict, settings: dict, seed: int,
                     device: str = "cpu", precision_used: str = "fp32",
                     held_out: str = "test") -> tuple[AttributeClassifier, dict[str, Any]]:
    """Train the classifier of one modality; return it (eval mode, on the CPU) and its held-out metrics.

    `settings` is config['classifier'][dataset] (epochs, batch_size, lr, width, max_train_samples).
    Held-out metrics are computed on `test_split`, the real split named `held_out` ("test" in the
    pipeline, "val" in a selection run: mmjsd.lab.holdout), and stored under that name.
    `precision_used`: see mmjsd.training.precision.
    """
    if list(train_split["label_names"]) != list(test_split["label_names"]):
        raise DataError(f"{dataset} train and test splits name different labels", "rerun `mmjsd prepare` for this dataset")
    inputs = _modality_tensor(train_split, modality)
    labels = train_split["labels"].long()
    generator = torch.Generator().manual_seed(seed)
    # max_train_samples: a seeded subset, kept in split order (as in training)
    keep = sorted_subset(inputs.shape[0], settings.get("max_train_samples"), generator)
    if keep.numel() < inputs.shape[0]:
        inputs, labels = inputs[keep], labels[keep]
    sizes = head_sizes(dataset, list(train_split["label_names"]), labels, test_split["labels"].long())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        classifier = build_classifier(dataset, modality, train_split, settings, sizes).to(device)
    # The whole training split sits on the device as uint8; batches are cut from it by index.
    inputs, labels = inputs.to(device), labels.to(device)
    optimiser = torch.optim.Adam(classifier.parameters(), lr=float(settings["lr"]))
    batch_size = int(settings["batch_size"])
    n = inputs.shape[0]
    epoch_losses = []
    started = time.perf_counter()
    classifier.train()
    epochs = int(settings["epochs"])
    for epoch in range(epochs):
        order = torch.randperm(n, generator=generator).to(device)
        # Summed on the device in float64 (no host sync per step; the same sum as Python floats).
        total = torch.zeros((), dtype=torch.float64, device=device)
        for index in runtime.batches(order, batch_size):
            with precision.autocast(device, precision_used):
                logits = classifier(model_input(modality, inputs[index]))
            loss = classifier.loss(logits, labels[index])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += loss.detach().double() * index.numel()
        epoch_losses.append(float(total) / max(n, 1))
        progress.log(f"epoch {epoch + 1}/{epochs}: loss {epoch_losses[-1]:.4g} | "
                     + progress.rate_and_eta((epoch + 1) * n, (epochs - epoch - 1) * n, time.perf_counter() - started))
    train_seconds = time.perf_counter() - started
    classifier.eval()
    with precision.autocast(device, precision_used):
        test_metrics = held_out_metrics(classifier, modality, test_split, batch_size)
    metrics = {
        "dataset": dataset,
        "modality": modality,
        "seed": seed,
        "n_train": int(n),
        f"n_{held_out}": int(test_split["labels"].shape[0]),
        "settings": dict(settings),
        "head_sizes": dict(zip(train_split["label_names"], sizes)),
        "train_loss_per_epoch": epoch_losses,
        held_out: test_metrics,
        "data_source": test_split.get("source", "unknown"),
        "wall_time_s": round(train_seconds, 3),
    }
    return classifier.cpu(), metrics


def save_classifier(path: str | Path, classifier: AttributeClassifier, fingerprint: dict | None = None) -> None:
    """Write {"spec", "state_dict", "fingerprint", "checksum"} atomically. `fingerprint`: what made
    it (mmjsd.artifacts.fingerprints.classifier_fingerprint), stored as canonical JSON; `checksum`: over the
    rest, checked by load_classifier (torch.load does not notice damage inside a tensor's bytes)."""
    blob: dict[str, Any] = {"spec": classifier.spec, "state_dict": classifier.state_dict()}
    if fingerprint is not None:
        blob["fingerprint"] = fingerprints.canonical(fingerprint)
    blob["checksum"] = files.content_checksum(blob)
    files.torch_save(path, blob)


def load_classifier(path: str | Path, fix: str | None = None) -> AttributeClassifier:
    """Load a classifier saved by `save_classifier`, in eval mode; its recorded fingerprint (JSON,
    or None) is `classifier.fingerprint`. A file whose contents do not match its checksum is refused."""
    fix = fix or "delete it and retrain with `mmjsd train-classifier`"
    payload = files.torch_load(path, "classifier", fix, missing_fix="train it: `mmjsd train-classifier --dataset "
                               "DATASET --modality MODALITY` (or snakemake)")
    try:
        classifier = AttributeClassifier(payload["spec"])
        classifier.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:   # a foreign file: one line, no traceback
        raise DataError(f"classifier {path} does not hold a classifier that matches its spec ({exc.__class__.__name__}: {exc})",
                        fix) from None
    files.check_checksum(payload, "classifier", path, fix)
    classifier.fingerprint = payload.get("fingerprint")
    return classifier.eval()


def modality_settings(settings: dict, modality: str) -> dict:
    """One modality's classifier settings: `epochs` is one number for both modalities or {img, text}
    (a CelebA text classifier needs more passes than the image one before it reads the words)."""
    return {**settings, "epochs": per_modality(settings["epochs"], int)[modality]}


def cli_train_classifier(args: argparse.Namespace, config: dict) -> int:
    placement = runtime.place(args, config)   # holds the GPU lock (if any) until the process ends
    device, threads = placement.device, placement.threads
    dataset, modality = args.dataset, args.modality
    held_out = holdout.splits()[0]      # "test" in the pipeline, "val" in a selection run
    train_split = load_checked_split(config, dataset, "train", args.config)
    test_split = load_checked_split(config, dataset, held_out, args.config)
    settings = modality_settings(config["classifier"][dataset], modality)
    precision_used = precision.resolve(config, device)
    progress.log(f"classifier {dataset}/{modality}: device {device}{placement.where()}, precision {precision_used}, {threads} CPU threads; "
                 f"data {train_split.get('source', 'unknown')}: {train_split['labels'].shape[0]} training and "
                 f"{test_split['labels'].shape[0]} {held_out} samples; {settings['epochs']} epochs, batch {settings['batch_size']}")
    classifier, metrics = train_classifier(dataset, modality, train_split, test_split, settings, CLASSIFIER_SEED, device,
                                           precision_used, held_out)
    metrics["precision"] = precision_used
    metrics["threads"] = threads
    metrics["device"] = gpu.device_name(device)
    metrics["scale"] = config["scale"]
    metrics["data_notes"] = test_split.get("notes", "")
    metrics["provenance"] = provenance.provenance(config=config, seed=CLASSIFIER_SEED)
    out = paths.fill(paths.CLASSIFIER, config, dataset=dataset, modality=modality)
    save_classifier(out, classifier, fingerprint=fingerprints.classifier_fingerprint(config, dataset, modality))
    files.write_json(paths.fill(paths.CLASSIFIER_METRICS, config, dataset=dataset, modality=modality), files.json_safe(metrics))
    files.write_json(paths.fill(paths.CLASSIFIER_SUMMARY, config, dataset=dataset, modality=modality),
                     files.json_safe(classifier_summary(metrics)))
    accuracy = metrics[held_out]["accuracy"]
    summary = ", ".join(f"{k} {v:.3f}" for k, v in accuracy.items()) if len(accuracy) <= 8 else f"mean {np.mean(list(accuracy.values())):.3f} over {len(accuracy)} labels"
    print(f"classifier {dataset}/{modality}: held-out accuracy {summary} -> {out}")
    return 0
