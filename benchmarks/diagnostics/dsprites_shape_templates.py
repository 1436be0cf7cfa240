"""Shape of generated dSprites images without a classifier, for any model file: the template
measure of `mmjsd evaluate` (mmjsd.direct_coherence.shape_overlaps), per shape.

    python benchmarks/diagnostics/dsprites_shape_templates.py SPLIT.pt MODEL.pt [MODEL.pt ...]
    e.g. data/repro/processed/dsprites/test.pt results/repro/runs/dsprites/mmjsd/seed0/model.pt

Images from a seeded draw of 3,000 test texts (one padding and style each); the real test
images of the same rows are scored first, the measure's own ceiling (docs/FIDELITY.md, G3).
"""

import sys

import torch

from mmjsd.data.processed import model_input
from mmjsd.direct_coherence import shape_overlaps, shape_summary
from mmjsd.models import load_model

ROWS = 3000


def line(images: torch.Tensor, shape) -> str:
    summary = shape_summary(shape_overlaps(images), shape)
    return (f"best template has the shape {summary['match']:.3f}, mean margin {summary['margin']:+.3f}; margin by shape: "
            + ", ".join(f"{word} {margin:+.3f}" for word, margin in summary["margin_by_shape"].items()))


@torch.no_grad()
def main(split_path: str, models: list[str]) -> None:
    split = torch.load(split_path, weights_only=False)
    rows = torch.sort(torch.randperm(split["labels"].shape[0], generator=torch.Generator().manual_seed(0))[:ROWS]).values
    shape = split["labels"][rows, list(split["label_names"]).index("shape")].numpy()
    print(f"real test images: {line(model_input('img', split['images'][rows]), shape)}")
    for path in models:
        model = load_model(path).eval()
        images = model.generate({"text": model_input("text", split["text"][rows])}, "img", generator=torch.Generator().manual_seed(0))
        print(f"{path}: images from text: {line(images, shape)}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
