"""Headline numbers for `dvc metrics show`: one small JSON per training run, evaluation and
classifier, written beside the full record (metrics.json, eval.json, <modality>.json), which
keeps the provenance, the notes and every per-attribute number. The whole demo fits one screen."""

from __future__ import annotations

from typing import Any, Iterable


def _mean(values: Iterable[Any]) -> float | None:
    numbers = [float(v) for v in values if isinstance(v, (int, float)) and v == v]
    return round(sum(numbers) / len(numbers), 4) if numbers else None


def train_summary(metrics: dict) -> dict:
    return {"loss": round(float(metrics["final"]["loss"]), 4), "epochs": metrics["epochs"],
            "samples_per_s": metrics["samples_per_s"], "wall_time_s": metrics["wall_time_s"]}


def eval_summary(record: dict) -> dict:
    """Mean over the attributes: coherence per generated modality, latent accuracy per
    representation. Named by measure, as the report names them: `coherence_accuracy_*` (dSprites'
    Table 1a cells), and `coherence_ap_*` where the record has CelebA's average precisions (its
    Table 1a cells)."""
    coherence = record["coherence"]
    directions = sorted({d for per_label in coherence.values() for d in per_label})
    summary = {f"coherence_accuracy_{d}": _mean(v.get(d) for v in coherence.values()) for d in directions}
    precision = record.get("coherence_average_precision")
    if precision:
        summary.update({f"coherence_ap_{d}": _mean(v.get(d) for v in precision.values()) for d in directions})
    summary.update({f"latent_{rep}": _mean(per_label.values()) for rep, per_label in sorted(record["latent"].items())})
    return summary


def classifier_summary(metrics: dict) -> dict:
    """Mean held-out accuracy: on test in the pipeline, on val in a selection run (mmjsd.holdout)."""
    held_out = "test" if "test" in metrics else "val"
    return {"accuracy": _mean(metrics[held_out]["accuracy"].values())}
