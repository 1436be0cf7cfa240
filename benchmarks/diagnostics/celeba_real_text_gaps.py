"""Re-score CelebA runs with the measure on real texts (docs/FIDELITY.md, "Faces from real
texts"; mmjsd.evaluation.conditioning.described_conditioning, as `mmjsd evaluate` computes it).

    python benchmarks/diagnostics/celeba_real_text_gaps.py \
        --classifier results/repro/classifiers/celeba/img.pt \
        --split data/repro/processed/celeba/val_eval.pt RUN [RUN ...]
    RUN: a run folder, its model.pt or its checkpoint.pt, e.g.
         demo fidelity_runs/C3-aligned-nostyle-lr1e-3-ep20/results/runs/celeba/mmjsd/seed0

Pass the image classifier and the `val_eval` split of the data the runs were trained beside, or
the held-out rows may be another scale's training rows. Prints per run the gap (with / without)
for Male, Smiling, Wearing_Lipstick and Heavy_Makeup. A selection tool: it reads val, never test
(mmjsd.lab.holdout).
"""

import argparse

from mmjsd.data.processed import load_split
from mmjsd.evaluation.classifiers import load_classifier
from mmjsd.evaluation.conditioning import described_conditioning
from mmjsd.lab import holdout
from mmjsd.training.runs import load_run

holdout.enter_selection()   # diagnostics are selection tools: they read val, never test

SHOWN = ("Male", "Smiling", "Wearing_Lipstick", "Heavy_Makeup")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders, model.pt or checkpoint.pt files")
    parser.add_argument("--classifier", required=True, help="the CelebA image classifier, e.g. results/repro/classifiers/celeba/img.pt")
    parser.add_argument("--split", required=True, help="the processed val_eval split, e.g. data/repro/processed/celeba/val_eval.pt")
    args = parser.parse_args()
    classifier = load_classifier(args.classifier)
    val_eval = load_split(args.split)
    for path in args.runs:
        result = described_conditioning(load_run(path).model, classifier, val_eval, batch_size=512, seed=0)
        gaps = result["gaps"]
        print(path, f"{result['texts']} texts |",
              " ".join(f"{a} {gaps[a]['gap']:+.3f} ({gaps[a]['with']:.2f}/{gaps[a]['without']:.2f})" for a in SHOWN if a in gaps))


if __name__ == "__main__":
    main()
