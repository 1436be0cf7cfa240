"""Re-score CelebA checkpoints with the measure on real texts (docs/FIDELITY.md, "Faces from real
texts"; mmjsd.evaluate.described_conditioning, as `mmjsd evaluate` computes it).

    python benchmarks/diagnostics/celeba_real_text_gaps.py SCALE MODEL.pt [MODEL.pt ...]
    e.g. demo fidelity_runs/C3-aligned-nostyle-lr1e-3-ep20/results/runs/celeba/mmjsd/seed0/model.pt

Uses the scale's image classifier (results/SCALE/classifiers/celeba/img.pt) and its `test_eval`
split (data/SCALE/processed/celeba/test_eval.pt): score a checkpoint with the data it was
trained beside, or its held-out rows may be another scale's training rows. Prints per model the
gap (with / without) for Male, Smiling, Wearing_Lipstick and Heavy_Makeup.
"""

import sys

import torch

from mmjsd.classifiers import load_classifier
from mmjsd.evaluate import described_conditioning
from mmjsd.models import load_model

SHOWN = ("Male", "Smiling", "Wearing_Lipstick", "Heavy_Makeup")


def main(scale: str, models: list[str]) -> None:
    classifier = load_classifier(f"results/{scale}/classifiers/celeba/img.pt")
    test_eval = torch.load(f"data/{scale}/processed/celeba/test_eval.pt", weights_only=False)
    for path in models:
        result = described_conditioning(load_model(path).eval(), classifier, test_eval, batch_size=512, seed=0)
        gaps = result["gaps"]
        print(path, f"{result['texts']} texts |",
              " ".join(f"{a} {gaps[a]['gap']:+.3f} ({gaps[a]['with']:.2f}/{gaps[a]['without']:.2f})" for a in SHOWN if a in gaps))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
