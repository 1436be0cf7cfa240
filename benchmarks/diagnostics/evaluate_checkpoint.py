"""Evaluate a paused training run from its checkpoint, with the pipeline's own evaluation
(mmjsd.evaluate.evaluate_run: Table 1a coherence, 1b latent classifiers, the classifier-free
measures), for runs longer than one sitting (the 30-epoch dSprites paper run on a GPU lent for
15 minutes a session: docs/FIDELITY.md, "The paper run, resumed across sessions").

    python benchmarks/diagnostics/evaluate_checkpoint.py --config C --scale S --dataset dsprites \
        --model mmjsd --seed 0 --out eval_paused.json [--device cuda]

Reads RUN_DIR/checkpoint.pt (model weights and position), the scale's classifiers and test
splits. Writes the computed numbers plus where the run stood (epoch, batch, step) and the
checkpoint's sha256. It is not eval.json: the pipeline's `mmjsd evaluate` only reads finished
runs (model.pt), and a paused run's numbers must not pass for a finished one's.
"""

import argparse
import json
import sys
from pathlib import Path

import torch

from mmjsd import config as config_io, files, gpu, paths, precision
from mmjsd.evaluate import evaluate_run, load_inputs
from mmjsd.models import build_model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=Path("config.yaml"))
    parser.add_argument("--scale", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    config = config_io.load_config(args.config, args.scale)
    run = dict(dataset=args.dataset, model=args.model, seed=args.seed)
    checkpoint_path = paths.run_file(paths.RUN_CHECKPOINT, config, **run)
    state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
    position = json.loads(state["position"])
    model = build_model(state["spec"])
    model.load_state_dict(state["model"])
    model.to(args.device).eval()

    splits, classifiers, _ = load_inputs(config, args.dataset, args.config)
    for classifier in classifiers.values():
        classifier.to(args.device)
    used = precision.resolve(config, args.device)
    with precision.autocast(args.device, used):
        computed = evaluate_run(model, classifiers, splits["test"], splits["test_fit"], splits["test_eval"],
                                config["eval"], args.seed)
    n_batches = -(-state["run"]["n_train"] // state["run"]["train"]["batch_size"])
    record = {
        **run,
        "scale": config["scale"],
        "paused": {"epoch": position["epoch"], "batch": position["batch"], "step": position["step"],
                   "epochs_done": position["epoch"] + position["batch"] / n_batches,
                   "epochs_planned": state["run"]["train"]["epochs"], "curve": position["curve"]},
        "checkpoint_sha256": files.file_sha256(checkpoint_path),
        "data_source": splits["test"].get("source", "unknown"),
        **computed,
        "device": gpu.device_name(args.device),
        "precision": used,
        "provenance": files.provenance(config=config, seed=args.seed),
    }
    files.write_json(args.out, files.json_safe(record))
    cells = ", ".join(f"{n} img {v['img']:.3f} text {v['text']:.3f}" for n, v in computed["coherence"].items())
    print(f"{args.model} paused at epoch {record['paused']['epochs_done']:.2f} of {record['paused']['epochs_planned']}: {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
