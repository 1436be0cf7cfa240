"""Mean P(Male), P(Smiling), P(No_Beard) of faces generated from hand-written strings.

    python benchmarks/diagnostics/celeba_string_probe.py --classifier results/repro/classifiers/celeba/img.pt \
        --split data/repro/processed/celeba/val.pt results/repro/runs/celeba/*/seed0
    RUN: a run folder, its model.pt or its checkpoint.pt

64 faces per string: 8 seeded paddings x 8 sampled styles (docs/evidence/fidelity-log.md, "Why
"male" moves nothing"). The split gives the text length and alphabet and the attribute names. A selection
tool: it reads val, never test (mmjsd.lab.holdout).
"""

from __future__ import annotations

import argparse

import torch

from mmjsd.data.processed import load_split, model_input
from mmjsd.data.text import encode_at_seeded_starts
from mmjsd.evaluation.classifiers import load_classifier
from mmjsd.lab import holdout
from mmjsd.training.runs import load_run

holdout.enter_selection()   # diagnostics are selection tools: they read val, never test

STRINGS = ["smiling", "male, smiling", "no beard, smiling", "male, no beard, smiling",
           "young", "male, young", "no beard, young", "male, no beard, young",
           "male", "no beard", "male, no beard"]
ATTRIBUTES = ("Male", "Smiling", "No_Beard")
PADDINGS, STYLES = 8, 8


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders, model.pt or checkpoint.pt files")
    parser.add_argument("--classifier", required=True, help="the CelebA image classifier, e.g. results/repro/classifiers/celeba/img.pt")
    parser.add_argument("--split", required=True, help="a processed CelebA split, e.g. data/repro/processed/celeba/val.pt")
    args = parser.parse_args()
    classifier = load_classifier(args.classifier)
    split = load_split(args.split)
    names, length, alphabet = list(split["label_names"]), int(split["text"].shape[1]), split["alphabet"]
    for path in args.runs:
        model = load_run(path).model
        generator = torch.Generator().manual_seed(0)
        print(path)
        for index, text in enumerate(STRINGS):
            padded = torch.cat([encode_at_seeded_starts([text], length, alphabet, index * PADDINGS + k) for k in range(PADDINGS)])
            faces = model.generate({"text": model_input("text", padded.repeat_interleave(STYLES, 0))}, "img", generator=generator)
            _, scores = classifier.predict_and_score(faces)
            mean = scores.float().mean(0)
            print(f"  {text:26s}" + "  ".join(f"{a} {mean[names.index(a)]:.2f}" for a in ATTRIBUTES))


if __name__ == "__main__":
    main()
