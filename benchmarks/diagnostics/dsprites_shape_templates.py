"""Shape of generated dSprites images without a classifier, for any run: the template measure of
`mmjsd evaluate` (mmjsd.evaluation.direct_coherence.shape_overlaps), per shape.

    python benchmarks/diagnostics/dsprites_shape_templates.py --split data/repro/processed/dsprites/val.pt \
        results/repro/runs/dsprites/mmjsd/seed0 [RUN ...]
    RUN: a run folder, its model.pt or its checkpoint.pt

Images from a seeded draw of 3,000 texts of SPLIT (one padding and style each); the real images
of the same rows are scored first, the measure's own ceiling (docs/evidence/fidelity-log.md, G3). A selection
tool: it reads val, never test (mmjsd.lab.holdout).
"""

import argparse

import torch

from mmjsd.data.processed import load_split, model_input
from mmjsd.evaluation.direct_coherence import shape_overlaps, shape_summary
from mmjsd.lab import holdout
from mmjsd.training.runs import load_run

holdout.enter_selection()   # diagnostics are selection tools: they read val, never test

ROWS = 3000


def line(images: torch.Tensor, shape) -> str:
    summary = shape_summary(shape_overlaps(images), shape)
    return (f"best template has the shape {summary['match']:.3f}, mean margin {summary['margin']:+.3f}; margin by shape: "
            + ", ".join(f"{word} {margin:+.3f}" for word, margin in summary["margin_by_shape"].items()))


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders, model.pt or checkpoint.pt files")
    parser.add_argument("--split", required=True, help="a processed dSprites split, e.g. data/repro/processed/dsprites/val.pt")
    args = parser.parse_args()
    split = load_split(args.split)
    rows = torch.sort(torch.randperm(split["labels"].shape[0], generator=torch.Generator().manual_seed(0))[:ROWS]).values
    shape = split["labels"][rows, list(split["label_names"]).index("shape")].numpy()
    print(f"real images of {args.split}: {line(model_input('img', split['images'][rows]), shape)}")
    for path in args.runs:
        model = load_run(path).model
        images = model.generate({"text": model_input("text", split["text"][rows])}, "img", generator=torch.Generator().manual_seed(0))
        print(f"{path}: images from text: {line(images, shape)}")


if __name__ == "__main__":
    main()
