"""Table 1b alone for a run: the pipeline's own latent classification, no classifiers.

    python benchmarks/diagnostics/latent_table.py RUN_DIR PROCESSED_DIR [FIT_ROWS]
    e.g. fidelity_runs/X8/results/runs/dsprites/mmjsd/seed0 \
         fidelity_runs/shared/data-60b000401d/processed/dsprites

Calls `mmjsd.evaluate.latent_classification` on RUN_DIR/model.pt (or, while the run is still
training, on the weights of its last RUN_DIR/checkpoint.pt) with the rows the evaluation
uses (FIT_ROWS seeded rows of test_fit, default the paper's 256; all of test_eval), so its
numbers are the run's Table 1b cells. `mmjsd evaluate` needs the attribute classifiers for
Table 1a; on a slow CPU they cost more than an hour, and a probe-only experiment (docs/FIDELITY.md,
X8) does not need them.
"""

import json
import sys
from pathlib import Path

import torch

from mmjsd.evaluate import latent_classification, select_rows
from mmjsd.models import build_model, load_model

EVAL_BATCH = 512


def run_model(run_dir: Path) -> tuple[torch.nn.Module, str]:
    """(the model in eval mode, which weights it holds)."""
    if (run_dir / "model.pt").exists():
        return load_model(run_dir / "model.pt").eval(), "model.pt (finished run)"
    state = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)
    model = build_model(state["spec"])
    model.load_state_dict(state["model"])
    position = json.loads(state["position"])
    return model.eval(), f"checkpoint.pt, epoch {position['epoch']} batch {position['batch']} (step {position['step']})"


def main(run_dir: str, processed_dir: str, fit_rows: int = 256) -> None:
    model, weights = run_model(Path(run_dir))
    test_fit = torch.load(f"{processed_dir}/test_fit.pt", weights_only=False)
    test_eval = torch.load(f"{processed_dir}/test_eval.pt", weights_only=False)
    rows = select_rows(test_fit["labels"].shape[0], fit_rows)
    accuracy, notes = latent_classification(model, test_fit, test_eval, rows, EVAL_BATCH)
    names = list(test_fit["label_names"])
    print(f"Table 1b of {weights}, {fit_rows} fit rows of test_fit, {test_eval['labels'].shape[0]} rows of test_eval")
    print("representation " + " ".join(f"{name:>11s}" for name in names))
    for rep, scores in accuracy.items():
        print(f"{rep:14s} " + " ".join(f"{scores[name]:11.3f}" for name in names))
    for rep, by_label in notes.items():
        for name, note in by_label.items():
            print(f"note {rep} {name}: {note}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(value) for value in sys.argv[3:4]))
