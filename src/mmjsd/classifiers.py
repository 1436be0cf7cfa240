"""Attribute classifiers, one per modality, that score cross-modal generations (Table 1a).

An image classifier (small strided conv net) and a text classifier (1-D conv net over one-hot
characters) each predict every label of a dataset at once from one shared trunk:
- dSprites: one categorical head per factor (shape, scale, orientation, posX, posY: 3, 6, 4,
  3, 3 classes, the discretised text factors), cross-entropy loss summed over heads;
- CelebA: one binary logit per attribute (40), binary cross-entropy.

Inputs use the models' conventions, so generated samples can be classified directly:
images float B x C x 64 x 64 in [0, 1]; text int64 B x L of alphabet indices.

Training holds the split in memory as tensors (uint8, converted per batch) on the training
device (a GPU claimed like `mmjsd train` does, else the CPU), draws batches by index from a
seeded `torch.randperm`, and initialises weights from the seed inside a forked RNG, so on the
CPU the same seed and thread count give byte-identical weights.
No public classifier exists for dSprites+text; these networks are ours (see docstrings).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmjsd import files, fingerprints, paths, precision, progress
from mmjsd.errors import DataError

# Known class counts of the discretised dSprites factors (the text's words).
DSPRITES_CLASS_COUNTS = {"shape": 3, "scale": 6, "orientation": 4, "posX": 3, "posY": 3}
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


def _channels(base: int, width: float) -> int:
    return max(4, int(round(base * width)))


class AttributeClassifier(nn.Module):
    """Shared trunk plus a linear layer whose outputs are split into per-label heads.

    `spec` holds everything needed to rebuild the network (saved beside the state_dict).
    """

    def __init__(self, spec: dict[str, Any]):
        super().__init__()
        self.spec = dict(spec)
        width = float(spec["width"])
        c1, c2, c3, c4 = (_channels(b, width) for b in (32, 64, 64, 128))
        hidden = _channels(128, width)
        n_out = int(sum(spec["head_sizes"]))
        if spec["modality"] == "img":
            # 64 -> 32 -> 16 -> 8 -> 4; flattened, not pooled, so position (posX/posY) survives.
            self.trunk = nn.Sequential(
                nn.Conv2d(int(spec["in_channels"]), c1, 4, 2, 1), nn.ReLU(),
                nn.Conv2d(c1, c2, 4, 2, 1), nn.ReLU(),
                nn.Conv2d(c2, c3, 4, 2, 1), nn.ReLU(),
                nn.Conv2d(c3, c4, 4, 2, 1), nn.ReLU(),
                nn.Flatten(),
                nn.Linear(c4 * 4 * 4, hidden), nn.ReLU(),
            )
        elif spec["modality"] == "text":
            # Strided 1-D convs (receptive field ~46 characters: whole dSprites phrases, whole
            # CelebA attribute names), then max over positions because the padding start is random.
            # Twice the image net's channels: 1-D convs are cheap and learn faster wider.
            t1, t2, t3, t4 = (_channels(b, width) for b in (64, 128, 128, 256))
            self.trunk = nn.Sequential(
                nn.Conv1d(int(spec["alphabet_size"]), t1, 4, 2, 1), nn.ReLU(),
                nn.Conv1d(t1, t2, 4, 2, 1), nn.ReLU(),
                nn.Conv1d(t2, t3, 4, 2, 1), nn.ReLU(),
                nn.Conv1d(t3, t4, 4, 2, 1), nn.ReLU(),
                nn.AdaptiveMaxPool1d(1), nn.Flatten(),
                nn.Linear(t4, hidden), nn.ReLU(),
            )
        else:
            raise ValueError(f"unknown modality {spec['modality']!r}")
        self.out = nn.Linear(hidden, n_out)

    @property
    def kind(self) -> str:
        return self.spec["kind"]

    @property
    def label_names(self) -> list[str]:
        return list(self.spec["label_names"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.spec["modality"] == "text":
            x = F.one_hot(x.long(), int(self.spec["alphabet_size"])).transpose(1, 2).float()
        return self.out(self.trunk(x)).float()  # losses and scores in float32 under bf16 autocast too

    def split_heads(self, logits: torch.Tensor) -> list[torch.Tensor]:
        return list(torch.split(logits, list(self.spec["head_sizes"]), dim=1))

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.kind == "binary":
            return F.binary_cross_entropy_with_logits(logits, labels.float())
        heads = self.split_heads(logits)
        return sum(F.cross_entropy(h, labels[:, i]) for i, h in enumerate(heads)) / len(heads)

    @torch.no_grad()
    def predict_and_score(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(predicted labels int64 B x F, positive-class probabilities B x F or None).

        Probabilities are returned for binary attributes only (average precision needs them).
        """
        logits = self(x)
        if self.kind == "binary":
            return (logits > 0).long(), torch.sigmoid(logits)
        return torch.stack([h.argmax(dim=1) for h in self.split_heads(logits)], dim=1), None

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.predict_and_score(x)[0]


def model_input(modality: str, raw: torch.Tensor) -> torch.Tensor:
    """Stored split tensors (uint8) -> the models' input convention."""
    if modality == "img":
        return raw.float() / 255.0
    return raw.long()


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


def module_device(module: nn.Module) -> torch.device:
    """The device a network's parameters live on (inputs are moved there batch by batch); CPU if it has none."""
    first = next(module.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


@torch.no_grad()
def predict_in_batches(classifier: AttributeClassifier, modality: str, raw: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Predictions (and scores) for stored split tensors, on the classifier's device; results on the CPU."""
    classifier.eval()
    device = module_device(classifier)
    predictions, scores = [], []
    for start in range(0, raw.shape[0], batch_size):
        pred, score = classifier.predict_and_score(model_input(modality, raw[start:start + batch_size].to(device)))
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
                     device: str = "cpu", precision_used: str = "fp32") -> tuple[AttributeClassifier, dict[str, Any]]:
    """Train the classifier of one modality; return it (eval mode, on the CPU) and its held-out metrics.

    `settings` is config['classifier'][dataset] (epochs, batch_size, lr, width, max_train_samples).
    Held-out metrics are computed on the real `test` split. `precision_used`: see mmjsd.precision.
    """
    if list(train_split["label_names"]) != list(test_split["label_names"]):
        raise DataError(f"{dataset} train and test splits name different labels", "rerun `mmjsd prepare` for this dataset")
    inputs = _modality_tensor(train_split, modality)
    labels = train_split["labels"].long()
    generator = torch.Generator().manual_seed(seed)
    cap = settings.get("max_train_samples")
    if cap is not None and cap < inputs.shape[0]:
        # A seeded subset, kept in split order, so the cap does not depend on how the split is sorted.
        keep = torch.randperm(inputs.shape[0], generator=generator)[:cap].sort().values
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
        for start in range(0, n, batch_size):
            index = order[start:start + batch_size]
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
        "n_test": int(test_split["labels"].shape[0]),
        "settings": dict(settings),
        "head_sizes": dict(zip(train_split["label_names"], sizes)),
        "train_loss_per_epoch": epoch_losses,
        "test": test_metrics,
        "data_source": test_split.get("source", "unknown"),
        "wall_time_s": round(train_seconds, 3),
    }
    return classifier.cpu(), metrics


def save_classifier(path: str | Path, classifier: AttributeClassifier, fingerprint: dict | None = None) -> None:
    """Write {"spec", "state_dict", "fingerprint", "checksum"} atomically. `fingerprint`: what made
    it (mmjsd.fingerprints.classifier_fingerprint), stored as canonical JSON; `checksum`: over the
    rest, checked by load_classifier (torch.load does not notice damage inside a tensor's bytes)."""
    blob: dict[str, Any] = {"spec": classifier.spec, "state_dict": classifier.state_dict()}
    if fingerprint is not None:
        blob["fingerprint"] = fingerprints.canonical(fingerprint)
    blob["checksum"] = files.content_checksum(blob)
    files.torch_save(path, blob)


def load_classifier(path: str | Path, fix: str | None = None) -> AttributeClassifier:
    """Load a classifier saved by `save_classifier`, in eval mode; its recorded fingerprint (JSON,
    or None) is `classifier.fingerprint`. A file whose contents do not match its checksum is refused."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"classifier {path} not found", "train it: `mmjsd train-classifier --dataset DATASET --modality MODALITY` (or snakemake)")
    fix = fix or "delete it and retrain with `mmjsd train-classifier`"
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        classifier = AttributeClassifier(payload["spec"])
        classifier.load_state_dict(payload["state_dict"])
    except Exception as exc:  # corrupt or foreign file: one clear line instead of a traceback
        raise DataError(f"classifier {path} cannot be loaded ({type(exc).__name__}: {exc})", fix) from None
    stored = payload.get("checksum")
    if stored is not None and stored != files.content_checksum({k: v for k, v in payload.items() if k != "checksum"}):
        raise DataError(f"classifier {path} is damaged: its contents do not match the checksum stored in it", fix)
    classifier.fingerprint = payload.get("fingerprint")
    return classifier.eval()


def load_processed_split(config: dict, dataset: str, split: str, config_file: str | Path = "config.yaml") -> dict:
    """Load one processed split, with a one-line error naming the command that makes it; a split
    that this config's `prepare` did not make from the raw data on disk is refused (fingerprint)."""
    path = paths.processed(config, dataset, split)
    if not path.is_file():
        raise DataError(
            f"processed split {path} not found",
            f"build it: `mmjsd prepare --scale {config['scale']} --dataset {dataset} ...` (or `snakemake {path}`)",
        )
    from mmjsd.data.processed import load_split

    loaded = load_split(path)
    fingerprints.check_split(loaded, path, config, dataset, config_file)
    return loaded


def cli_train_classifier(args: argparse.Namespace, config: dict) -> int:
    from mmjsd.gpu import device_name, select_device

    # Before anything touches CUDA: the claim narrows CUDA_VISIBLE_DEVICES to the GPU it holds.
    device, claim = select_device(args.device, args.gpu_lock_dir, share=args.gpu_share)  # `claim` holds the GPU lock until we return
    threads = args.threads or config["train"]["threads"]
    torch.set_num_threads(int(threads))
    dataset, modality = args.dataset, args.modality
    train_split = load_processed_split(config, dataset, "train", args.config)
    test_split = load_processed_split(config, dataset, "test", args.config)
    settings = config["classifier"][dataset]
    precision_used = precision.resolve(config, device)
    where = f" (GPU {claim.index}, share {claim.share:.2f})" if claim is not None else ""
    progress.log(f"classifier {dataset}/{modality}: device {device}{where}, precision {precision_used}, {threads} CPU threads; "
                 f"data {train_split.get('source', 'unknown')}: {train_split['labels'].shape[0]} training and "
                 f"{test_split['labels'].shape[0]} test samples; {settings['epochs']} epochs, batch {settings['batch_size']}")
    classifier, metrics = train_classifier(dataset, modality, train_split, test_split, settings, CLASSIFIER_SEED, device,
                                           precision_used)
    metrics["precision"] = precision_used
    metrics["threads"] = int(threads)
    metrics["device"] = device_name(device)
    metrics["scale"] = config["scale"]
    metrics["data_notes"] = test_split.get("notes", "")
    metrics["provenance"] = files.provenance(config=config, seed=CLASSIFIER_SEED)
    out = paths.fill(paths.CLASSIFIER, config, dataset=dataset, modality=modality)
    save_classifier(out, classifier, fingerprint=fingerprints.classifier_fingerprint(config, dataset, modality))
    files.write_json(paths.fill(paths.CLASSIFIER_METRICS, config, dataset=dataset, modality=modality), json_safe(metrics))
    from mmjsd.summary import classifier_summary

    files.write_json(paths.fill(paths.CLASSIFIER_SUMMARY, config, dataset=dataset, modality=modality),
                     json_safe(classifier_summary(metrics)))
    accuracy = metrics["test"]["accuracy"]
    summary = ", ".join(f"{k} {v:.3f}" for k, v in accuracy.items()) if len(accuracy) <= 8 else f"mean {np.mean(list(accuracy.values())):.3f} over {len(accuracy)} labels"
    print(f"classifier {dataset}/{modality}: held-out accuracy {summary} -> {out}")
    return 0


def json_safe(obj: Any) -> Any:
    """JSON has no NaN: replace non-finite floats by None, recursively."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj
