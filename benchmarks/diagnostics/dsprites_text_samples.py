"""Text generated from images, decoded: what each run writes for the same validation images.

    python benchmarks/diagnostics/dsprites_text_samples.py --split data/repro/processed/dsprites/val_eval.pt \
        --run A=results/repro/runs/dsprites/mmjsd/seed0 --run B=other/run/folder [--rows 8]

Prints, for the first ROWS images of SPLIT, the true text (padding removed) and each run's
text generated from the image (seeded sampling), so that a coherence number can be read against
the words behind it. A selection tool: it reads val, never test (mmjsd.lab.holdout).
"""

import argparse

import torch

from mmjsd.data.processed import load_split, model_input
from mmjsd.data.text import decode
from mmjsd.lab import holdout
from mmjsd.training.runs import load_run

holdout.enter_selection()   # diagnostics are selection tools: they read val, never test


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", required=True, help="a processed dSprites validation split, e.g. .../val_eval.pt")
    parser.add_argument("--run", action="append", required=True, metavar="LABEL=PATH",
                        help="a run folder, model.pt or checkpoint.pt, with the label to print it under")
    parser.add_argument("--rows", type=int, default=8)
    args = parser.parse_args()
    split = load_split(args.split)
    alphabet = split["alphabet"]
    images = model_input("img", split["images"][:args.rows])
    generated = {}
    for item in args.run:
        label, _, path = item.partition("=")
        model = load_run(path).model
        tokens = model.generate({"img": images}, "text", generator=torch.Generator().manual_seed(0))
        generated[label] = decode(tokens, alphabet)
    truth = decode(split["text"][:args.rows], alphabet)
    width = max(len(label) for label in generated)
    for row in range(args.rows):
        print(f"{'true':>{width}}: {truth[row].strip('*')}")
        for label, texts in generated.items():
            print(f"{label:>{width}}: {texts[row]}")
        print()


if __name__ == "__main__":
    main()
