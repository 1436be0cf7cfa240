"""What the dSprites content means hold, beyond Table 1b's linear probe (docs/evidence/fidelity-log.md,
X1).

    python benchmarks/diagnostics/dsprites_latent_probes.py --run results/repro/runs/dsprites/mmjsd/seed0 \
        --split data/repro/processed/dsprites/val_fit.pt
    --run: a run folder, its model.pt or its checkpoint.pt

On 4,000 seeded rows of SPLIT (3,000 to fit, 1,000 to score): per factor, a logistic regression
and 15 nearest neighbours on the image and text content means; then how far the two posteriors
are apart (KL(q_img || q_text)) and the JS term of the run's weights. A selection tool: it reads
val, never test (mmjsd.lab.holdout).
"""

import argparse

import torch
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from mmjsd.data.processed import load_split, model_input
from mmjsd.lab import holdout
from mmjsd.models import objectives
from mmjsd.training.runs import load_run

holdout.enter_selection()   # diagnostics are selection tools: they read val, never test

ROWS, FIT = 4000, 3000


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a run folder, model.pt or checkpoint.pt, e.g. results/repro/runs/dsprites/mmjsd/seed0")
    parser.add_argument("--split", required=True, help="a processed dSprites split, e.g. data/repro/processed/dsprites/val_fit.pt")
    args = parser.parse_args()
    model = load_run(args.run).model
    split = load_split(args.split)
    rows = torch.randperm(split["labels"].shape[0], generator=torch.Generator().manual_seed(0))[:ROWS]
    posteriors = model.encode({"img": model_input("img", split["images"][rows]), "text": model_input("text", split["text"][rows])})
    labels = split["labels"][rows].numpy()
    for modality in ("img", "text"):
        means = posteriors[modality].content_mu.float().numpy()
        for index, factor in enumerate(split["label_names"]):
            fit, score = (means[:FIT], labels[:FIT, index]), (means[FIT:], labels[FIT:, index])
            linear = LogisticRegression(max_iter=3000).fit(*fit).score(*score)
            neighbours = KNeighborsClassifier(15).fit(*fit).score(*score)
            print(f"{modality:4s} {factor:11s} logistic {linear:.3f}  15 neighbours {neighbours:.3f}")
    mus = torch.stack([posteriors[m].content_mu.float() for m in ("img", "text")])
    logvars = torch.stack([posteriors[m].content_logvar.float() for m in ("img", "text")])
    kl = objectives.gaussian_kl(mus[0], logvars[0], mus[1], logvars[1]).mean().item()
    js = objectives.multimodal_jsd(mus, logvars, model.jsd_weights).mean().item() if hasattr(model, "jsd_weights") else float("nan")
    print(f"KL(q_img || q_text) {kl:.1f} nats, JS term {js:.1f} nats (mean over rows)")


if __name__ == "__main__":
    main()
