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
    representation. `coherence_*` is each dataset's Table 1a measure, as the report gives it:
    accuracy on dSprites, average precision on CelebA (its accuracies stay in eval.json)."""
    coherence = record.get("coherence_average_precision") or record["coherence"]
    directions = sorted({d for per_label in coherence.values() for d in per_label})
    summary = {f"coherence_{d}": _mean(v.get(d) for v in coherence.values()) for d in directions}
    summary.update({f"latent_{rep}": _mean(per_label.values()) for rep, per_label in sorted(record["latent"].items())})
    return summary


def classifier_summary(metrics: dict) -> dict:
    """Mean held-out accuracy: on test in the pipeline, on val in a selection run (mmjsd.lab.holdout)."""
    held_out = "test" if "test" in metrics else "val"
    return {"accuracy": _mean(metrics[held_out]["accuracy"].values())}
