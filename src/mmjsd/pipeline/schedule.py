"""The order in which Snakemake starts the training jobs: the longest first.

With few cores, a long job that starts late sets the DAG's wall time: the fourth repro run
(2026-11-26) started dSprites mmPoE, its longest job (35 min), 22 minutes in, after two shorter
ones, and took 57 min 44 s; its jobs' own times, longest first on 2 cores, add up to about 45.
`train_priority` ranks the configured training jobs by an estimate of their cost and gives the
rule `train` that rank as its priority (10 and up, above every other rule's 0, so training
still goes first).
"""

from __future__ import annotations

from mmjsd.core.paths import celeba_source
from mmjsd.data.dsprites import N_ROWS as DSPRITES_ROWS

CELEBA_ROWS = 202_599

# CPU seconds per training sample on the 2-core development machine at the repro widths
# (results/repro/runs/*/*/seed0/metrics.json: wall_time_s / samples, 2026-11-26). Only the
# ratios matter: mmPoE decodes four times per step against mmJSD's two, a CelebA face costs
# several dSprites sprites.
SECONDS_PER_SAMPLE = {("dsprites", "mmjsd"): 0.99e-3, ("dsprites", "mmpoe"): 1.60e-3,
                      ("celeba", "mmjsd"): 3.5e-3, ("celeba", "mmpoe"): 5.5e-3}


def training_rows(config: dict, dataset: str) -> int:
    """Rows one epoch of `dataset` trains on: the configured subset, image cap or synthetic count
    (CelebA's `auto` resolved as `prepare` resolves it), else the whole dataset; less the test
    split, capped by train.<dataset>.max_train_samples."""
    data = config["data"][dataset]
    if dataset == "dsprites":
        total = data.get("subset") or DSPRITES_ROWS
    elif celeba_source(config) == "synthetic":
        total = int(data["synthetic_count"])
    else:
        total = data.get("max_images") or CELEBA_ROWS
    rows = int(total * (1.0 - float(data["test_fraction"])))
    cap = config["train"][dataset].get("max_train_samples")
    return min(rows, int(cap)) if cap else rows


def training_cost(config: dict, dataset: str, model: str) -> float:
    """Estimated CPU seconds of one training run: epochs x rows x seconds per sample."""
    # a model an extension adds (mmjsd.core.extensions) is not measured: counted as the dataset's costliest
    per_sample = SECONDS_PER_SAMPLE.get((dataset, model), max(v for (d, _), v in SECONDS_PER_SAMPLE.items() if d == dataset))
    return int(config["train"][dataset]["epochs"]) * training_rows(config, dataset) * per_sample


def train_priority(config: dict, dataset: str, model: str) -> int:
    """10 for the cheapest configured training job, 11 for the next, ...: the costliest starts first."""
    jobs = sorted(((d, m) for d in config["datasets"] for m in config["models"]),
                  key=lambda job: (training_cost(config, *job), job))
    return 10 + jobs.index((dataset, model))
