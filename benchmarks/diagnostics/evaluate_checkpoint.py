"""Evaluate a paused training run from its checkpoint, with the pipeline's own evaluation
(mmjsd.evaluation.evaluate.evaluate_run: Table 1a coherence, 1b latent classifiers, the classifier-free
measures), for runs longer than one sitting (the 30-epoch dSprites paper run on a GPU lent for
15 minutes a session: docs/evidence/fidelity-log.md, "G3: the 30-epoch dSprites paper run,
trained across sessions").

    python benchmarks/diagnostics/evaluate_checkpoint.py --config config.yaml --scale paper \
        --run results/paper/runs/dsprites/mmjsd/seed0/checkpoint.pt \
        --split data/paper/processed/dsprites/val.pt \
        --fit data/paper/processed/dsprites/val_fit.pt \
        --eval data/paper/processed/dsprites/val_eval.pt \
        --img-classifier results/paper/classifiers/dsprites/img.pt \
        --text-classifier results/paper/classifiers/dsprites/text.pt \
        --out eval_paused.json [--device cuda]

Reads the checkpoint (weights, the run's dataset / model / seed, where it stood), the two
attribute classifiers and the three validation splits, each through the package's checked
loaders; the config gives only the evaluation settings and the precision. Pass the files of the
data the run was trained beside (classifiers trained with MMJSD_HOLDOUT=val). Writes the
computed numbers plus where the run stood (epoch, batch, step) and the checkpoint's sha256. It
is not eval.json: the pipeline's `mmjsd evaluate` only reads finished runs (model.pt), and a
paused run's numbers must not pass for a finished one's. A selection tool: it reads val, never
test (mmjsd.lab.holdout).
"""

import argparse
import sys
from pathlib import Path

import torch

from mmjsd import config as config_io
from mmjsd.artifacts import provenance
from mmjsd.core import files
from mmjsd.data.processed import load_split
from mmjsd.evaluation.classifiers import load_classifier
from mmjsd.evaluation.evaluate import evaluate_run
from mmjsd.lab import holdout
from mmjsd.training import gpu, precision, runtime
from mmjsd.training.runs import load_run

holdout.enter_selection()   # diagnostics are selection tools: they read val, never test


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=Path("config.yaml"), help="evaluation settings and precision")
    parser.add_argument("--scale", required=True)
    parser.add_argument("--run", required=True, help="a paused run's checkpoint.pt, or its run folder (holding no model.pt)")
    parser.add_argument("--split", required=True, help="the coherence split, e.g. data/paper/processed/dsprites/val.pt")
    parser.add_argument("--fit", required=True, help="the latent classifiers' fit split, e.g. data/paper/processed/dsprites/val_fit.pt")
    parser.add_argument("--eval", required=True, help="the latent classifiers' eval split, e.g. data/paper/processed/dsprites/val_eval.pt")
    parser.add_argument("--img-classifier", required=True, help="e.g. results/paper/classifiers/dsprites/img.pt")
    parser.add_argument("--text-classifier", required=True, help="e.g. results/paper/classifiers/dsprites/text.pt")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    config = config_io.load_config(args.config, args.scale)
    run = load_run(args.run, map_location=args.device)
    if run.position is None:
        raise SystemExit(f"mmjsd: error: {run.path} is a finished run (model.pt), not a paused one -- fix: score it with "
                         "`MMJSD_HOLDOUT=val mmjsd evaluate ...`, or pass the run's checkpoint.pt")
    key, position = run.fingerprint, run.position
    splits = {"split": load_split(args.split), "fit": load_split(args.fit), "eval": load_split(args.eval)}
    classifiers = {"img": load_classifier(args.img_classifier), "text": load_classifier(args.text_classifier)}
    for classifier in classifiers.values():
        classifier.to(args.device)
    used = precision.resolve(config, args.device)
    with precision.autocast(args.device, used):
        computed = evaluate_run(run.model, classifiers, splits["split"], splits["fit"], splits["eval"],
                                config["eval"], key["seed"])
    n_batches = runtime.n_batches(key["n_train"], key["train"]["batch_size"])
    record = {
        "dataset": key["dataset"], "model": key["model"], "seed": key["seed"],
        "scale": config["scale"],
        "holdout": holdout.current(),
        "inputs": {"run": str(run.path), "split": args.split, "fit": args.fit, "eval": args.eval,
                   "img_classifier": args.img_classifier, "text_classifier": args.text_classifier},
        "paused": {"epoch": position["epoch"], "batch": position["batch"], "step": position["step"],
                   "epochs_done": position["epoch"] + position["batch"] / n_batches,
                   "epochs_planned": key["train"]["epochs"], "curve": position["curve"]},
        "checkpoint_sha256": files.file_sha256(run.path),
        "data_source": splits["split"].get("source", "unknown"),
        **computed,
        "device": gpu.device_name(args.device),
        "precision": used,
        "provenance": provenance.provenance(config=config, seed=key["seed"]),
    }
    files.write_json(args.out, files.json_safe(record))
    cells = ", ".join(f"{n} img {v['img']:.3f} text {v['text']:.3f}" for n, v in computed["coherence"].items())
    print(f"{key['model']} paused at epoch {record['paused']['epochs_done']:.2f} of {record['paused']['epochs_planned']}: {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
