"""Where the image classifier puts faces of men and women: real validation images, the model's
images from their own image content, and its images from their texts (docs/evidence/fidelity-log.md, C14).

    python benchmarks/diagnostics/celeba_attribute_levels.py \
        --classifier results/repro/classifiers/celeba/img.pt \
        --split data/repro/processed/celeba/val_eval.pt RUN [RUN ...]
    RUN: a run folder (results/repro/runs/celeba/mmjsd/seed0), its model.pt or its checkpoint.pt

For the first 512 rows of SPLIT: the mean P(Male) and P(Smiling) from the image classifier, for
the rows whose true label has the attribute and for the others, on each of the three kinds of
face. A gap of means that is small on faces generated from *images* as well as from texts says
the classifier reads the model's faces flatly; one that is small only from texts says the text
does not carry the attribute through. A selection tool: it reads val, never test (mmjsd.lab.holdout).
"""

import argparse

import torch

from mmjsd.data.processed import load_split, model_input
from mmjsd.evaluation.classifiers import load_classifier
from mmjsd.lab import holdout
from mmjsd.training.runs import load_run

holdout.enter_selection()   # diagnostics are selection tools: they read val, never test

ROWS, SHOWN = 512, ("Male", "Smiling")


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders, model.pt or checkpoint.pt files")
    parser.add_argument("--classifier", required=True, help="the CelebA image classifier, e.g. results/repro/classifiers/celeba/img.pt")
    parser.add_argument("--split", required=True, help="a processed CelebA split, e.g. data/repro/processed/celeba/val_eval.pt")
    args = parser.parse_args()
    classifier = load_classifier(args.classifier)
    split = load_split(args.split)
    names = list(split["label_names"])
    labels = split["labels"][:ROWS].bool()
    images = model_input("img", split["images"][:ROWS])
    texts = model_input("text", split["text"][:ROWS])

    def levels(faces: torch.Tensor) -> str:
        probability = classifier.predict_and_score(faces)[1].float()
        parts = []
        for attribute in SHOWN:
            column = names.index(attribute)
            has = labels[:, column]
            parts.append(f"{attribute} {probability[has, column].mean():.2f} / {probability[~has, column].mean():.2f}")
        return ", ".join(parts)

    print(f"real images of {args.split}: {levels(images)}  (with / without the attribute)")
    for path in args.runs:
        model = load_run(path).model
        generator = torch.Generator().manual_seed(0)
        from_images = model.generate({"img": images}, "img", generator=generator)
        from_texts = model.generate({"text": texts}, "img", generator=generator)
        print(f"{path}\n  from their images: {levels(from_images)}\n  from their texts:  {levels(from_texts)}")


if __name__ == "__main__":
    main()
