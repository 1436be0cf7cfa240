"""Images generated from text by shape: a figure and the image classifier's confusion.

    python benchmarks/diagnostics/dsprites_shapes_from_text.py --run results/repro/runs/dsprites/mmjsd/seed0 \
        --classifier results/repro/classifiers/dsprites/img.pt --split data/repro/processed/dsprites/val.pt \
        --out repro_images_from_text_by_shape.png
    --run: a run folder, its model.pt or its checkpoint.pt

Figure: 'square / ellipse / heart, one point zero, upright, mid mid', six seeded paddings and
sampled styles each. Confusion: 3,000 seeded texts of SPLIT, their images generated, the true
shape against the classifier's (docs/evidence/fidelity-log.md, "The repro scale, fourth
run"). A selection
tool: it reads val, never test (mmjsd.lab.holdout).
"""

import argparse

import matplotlib
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mmjsd.data.processed import load_split, model_input  # noqa: E402
from mmjsd.data.text import decode, encode_padded  # noqa: E402
from mmjsd.evaluation.classifiers import load_classifier  # noqa: E402
from mmjsd.lab import holdout  # noqa: E402
from mmjsd.training.runs import load_run  # noqa: E402

holdout.enter_selection()   # diagnostics are selection tools: they read val, never test

SHAPES = ["square", "ellipse", "heart"]


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a run folder, model.pt or checkpoint.pt, e.g. results/repro/runs/dsprites/mmjsd/seed0")
    parser.add_argument("--classifier", required=True, help="the dSprites image classifier, e.g. results/repro/classifiers/dsprites/img.pt")
    parser.add_argument("--split", required=True, help="a processed dSprites split, e.g. data/repro/processed/dsprites/val.pt")
    parser.add_argument("--out", required=True, help="the figure to write (.png)")
    args = parser.parse_args()
    model, classifier = load_run(args.run).model, load_classifier(args.classifier)
    split = load_split(args.split)
    length, alphabet = int(split["text"].shape[1]), split["alphabet"]
    generator = torch.Generator().manual_seed(0)
    fig, axes = plt.subplots(3, 6, figsize=(6, 3.2))
    for row, shape in enumerate(SHAPES):
        text = f"{shape}, one point zero, upright, mid mid"
        padded = torch.cat([encode_padded([text], length, torch.Generator().manual_seed(k), alphabet) for k in range(6)])
        images = model.generate({"text": model_input("text", padded)}, "img", generator=generator)
        for col in range(6):
            axes[row, col].imshow(images[col, 0].numpy(), cmap="gray", vmin=0, vmax=1)
            axes[row, col].axis("off")
        axes[row, 0].set_title(shape, fontsize=7, loc="left")
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)

    rows = torch.randperm(split["text"].shape[0], generator=torch.Generator().manual_seed(2))[:3000]
    texts = [s.strip("*") for s in decode(split["text"][rows], alphabet)]
    padded = encode_padded(texts, length, torch.Generator().manual_seed(1), alphabet)
    images = torch.cat([model.generate({"text": model_input("text", padded[i:i + 500])}, "img", generator=generator)
                        for i in range(0, len(texts), 500)])
    predicted = classifier.predict_and_score(images)[0][:, 0].long()
    true = split["labels"][rows, 0].long()
    for index, shape in enumerate(SHAPES):
        counts = torch.bincount(predicted[true == index], minlength=3).tolist()
        print(f"{shape:8s} drawn from text, classified as " + ", ".join(f"{s} {c}" for s, c in zip(SHAPES, counts)))


if __name__ == "__main__":
    main()
