"""Table 1b alone for a run: the pipeline's own latent classification, no classifiers.

    python benchmarks/diagnostics/latent_table.py --run fidelity_runs/X8/results/runs/dsprites/mmjsd/seed0 \
        --fit fidelity_runs/shared/data-60b000401d/processed/dsprites/val_fit.pt \
        --eval fidelity_runs/shared/data-60b000401d/processed/dsprites/val_eval.pt [--fit-rows 256]
    --run: a run folder (its model.pt, or while the run is still training its last checkpoint.pt),
           or either file

Calls `mmjsd.evaluation.evaluate.latent_classification` on the run's weights with the rows the evaluation
uses (FIT_ROWS seeded rows of the fit split, default the paper's 256; all of the eval split), so
on val_fit / val_eval its numbers are the run's Table 1b cells as a selection run
(MMJSD_HOLDOUT=val) of `mmjsd evaluate` computes them. `mmjsd evaluate` needs the attribute
classifiers for Table 1a; on a slow CPU they cost more than an hour, and a probe-only experiment
(docs/evidence/fidelity-log.md, X8) does not need them. A selection tool: it reads val, never test
(mmjsd.lab.holdout).
"""

import argparse

from mmjsd.data.processed import load_split
from mmjsd.evaluation.evaluate import latent_classification, select_rows
from mmjsd.lab import holdout
from mmjsd.training.runs import LoadedRun, load_run

holdout.enter_selection()   # diagnostics are selection tools: they read val, never test

EVAL_BATCH = 512


def weights(run: LoadedRun) -> str:
    """Which weights the run holds, in words."""
    if run.position is None:
        return f"{run.path} (finished run)"
    position = run.position
    return f"{run.path}, epoch {position['epoch']} batch {position['batch']} (step {position['step']})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a run folder, model.pt or checkpoint.pt, e.g. results/repro/runs/dsprites/mmjsd/seed0")
    parser.add_argument("--fit", required=True, help="the split the probes are fitted on, e.g. data/repro/processed/dsprites/val_fit.pt")
    parser.add_argument("--eval", required=True, help="the split they are scored on, e.g. data/repro/processed/dsprites/val_eval.pt")
    parser.add_argument("--fit-rows", type=int, default=256, help="seeded rows of the fit split (default: 256, the paper's)")
    args = parser.parse_args()
    run = load_run(args.run)
    fit, evaluation = load_split(args.fit), load_split(args.eval)
    rows = select_rows(fit["labels"].shape[0], args.fit_rows)
    accuracy, notes = latent_classification(run.model, fit, evaluation, rows, EVAL_BATCH)
    names = list(fit["label_names"])
    print(f"Table 1b of {weights(run)}, {rows.numel()} fit rows of {args.fit}, {evaluation['labels'].shape[0]} rows of {args.eval}")
    print("representation " + " ".join(f"{name:>11s}" for name in names))
    for rep, scores in accuracy.items():
        print(f"{rep:14s} " + " ".join(f"{scores[name]:11.3f}" for name in names))
    for rep, by_label in notes.items():
        for name, note in by_label.items():
            print(f"note {rep} {name}: {note}")


if __name__ == "__main__":
    main()
