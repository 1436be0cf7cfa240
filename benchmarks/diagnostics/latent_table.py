"""Table 1b alone for a finished run: the pipeline's own latent classification, no classifiers.

    python benchmarks/diagnostics/latent_table.py RUN_DIR PROCESSED_DIR [FIT_ROWS]
    e.g. fidelity_runs/X8/results/runs/dsprites/mmjsd/seed0 \
         fidelity_runs/shared/data-60b000401d/processed/dsprites

Calls `mmjsd.evaluate.latent_classification` on RUN_DIR/model.pt with the rows the evaluation
uses (FIT_ROWS seeded rows of test_fit, default the paper's 256; all of test_eval), so its
numbers are the run's Table 1b cells. `mmjsd evaluate` needs the attribute classifiers for
Table 1a; on a slow CPU they cost more than an hour, and a probe-only experiment (docs/FIDELITY.md,
X8) does not need them.
"""

import sys

import torch

from mmjsd.evaluate import latent_classification, select_rows
from mmjsd.models import load_model

EVAL_BATCH = 512


def main(run_dir: str, processed_dir: str, fit_rows: int = 256) -> None:
    model = load_model(f"{run_dir}/model.pt").eval()
    test_fit = torch.load(f"{processed_dir}/test_fit.pt", weights_only=False)
    test_eval = torch.load(f"{processed_dir}/test_eval.pt", weights_only=False)
    rows = select_rows(test_fit["labels"].shape[0], fit_rows)
    accuracy, notes = latent_classification(model, test_fit, test_eval, rows, EVAL_BATCH)
    names = list(test_fit["label_names"])
    print(f"Table 1b, {fit_rows} fit rows of test_fit, {test_eval['labels'].shape[0]} rows of test_eval")
    print("representation " + " ".join(f"{name:>11s}" for name in names))
    for rep, scores in accuracy.items():
        print(f"{rep:14s} " + " ".join(f"{scores[name]:11.3f}" for name in names))
    for rep, by_label in notes.items():
        for name, note in by_label.items():
            print(f"note {rep} {name}: {note}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(value) for value in sys.argv[3:4]))
