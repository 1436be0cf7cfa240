"""Does the CelebA text classifier's accuracy depend on where the text starts?

    python benchmarks/diagnostics/text_classifier_offsets.py --classifier results/repro/classifiers/celeba/text.pt \
        --split data/repro/processed/celeba/val.pt [--rows 1000]

Scores the first 1,000 texts of the split as stored (seeded random start), moved to start 0, and
right-aligned; prints per-attribute accuracy and the mean text length of men's and women's texts.
A selection tool: it reads val, never test (mmjsd.lab.holdout).
"""

from __future__ import annotations

import argparse

import torch

from mmjsd.data.processed import load_split, model_input
from mmjsd.data.text import decode, encode
from mmjsd.evaluation.classifiers import load_classifier
from mmjsd.lab import holdout

holdout.enter_selection()   # diagnostics are selection tools: they read val, never test

ATTRIBUTES = ("Male", "Smiling", "No_Beard", "Eyeglasses", "Young")


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classifier", required=True, help="the CelebA text classifier, e.g. results/repro/classifiers/celeba/text.pt")
    parser.add_argument("--split", required=True, help="a processed CelebA split, e.g. data/repro/processed/celeba/val.pt")
    parser.add_argument("--rows", type=int, default=1000, help="the first ROWS texts of the split (default: 1000)")
    args = parser.parse_args()
    classifier = load_classifier(args.classifier)
    split = load_split(args.split)
    names, alphabet, n = list(split["label_names"]), split["alphabet"], args.rows
    length = int(split["text"].shape[1])
    raw = [s.strip("*") for s in decode(split["text"][:n], alphabet)]
    labels = split["labels"][:n] > 0
    variants = {"as stored": split["text"][:n],
                "start 0": encode([s.ljust(length, "*") for s in raw], alphabet, length),
                "right-aligned": encode([s.rjust(length, "*") for s in raw], alphabet, length)}
    for name, tokens in variants.items():
        predicted, _ = classifier.predict_and_score(model_input("text", tokens))
        accuracy = (predicted.bool() == labels).float().mean(0)
        print(f"{name:14s}" + "  ".join(f"{a} {accuracy[names.index(a)]:.3f}" for a in ATTRIBUTES) + f"  mean {accuracy.mean():.3f}")
    lengths = torch.tensor([len(s) for s in raw]).float()
    male = labels[:, names.index("Male")]
    print(f"mean text length: men {lengths[male].mean():.1f}, women {lengths[~male].mean():.1f} characters")


if __name__ == "__main__":
    main()
