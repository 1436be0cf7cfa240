"""One fidelity experiment: a scale with a few settings changed, trained and scored by the real CLI.

    python benchmarks/fidelity.py --name E1 --scale demo --dataset dsprites \\
        --set model.dsprites.style_dim='{img: 0, text: 2}' --set data.dsprites.subset=120000

Writes <workdir>/<name>/config.yaml (config.yaml with the overlay merged into the scale and its
own paths), then runs `mmjsd dsprites-render / prepare / train-classifier / train / evaluate`
exactly as the workflow does. Processed data and classifiers are shared between experiments
whose data (and classifier) settings are equal: they live under <workdir>/shared/<hash>.
Prints one line per model with the Table 1 cells and appends a JSON record (settings, budget,
cells, wall times) to <workdir>/results.jsonl: the raw material of the log,
docs/evidence/fidelity-log.md.

A selection tool: it runs with MMJSD_HOLDOUT=val (mmjsd.lab.holdout), so the classifiers report
their accuracy on `val` and every cell is scored on val_fit / val_eval. No command it runs can
open the test split.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

from mmjsd.config import deep_merge, load_config, read_yaml
from mmjsd.lab import holdout

holdout.enter_selection()   # this process and every command it runs read val, never test


def set_path(tree: dict, dotted: str, value) -> None:
    keys = dotted.split(".")
    for key in keys[:-1]:
        tree = tree.setdefault(key, {})
    tree[keys[-1]] = value


def digest(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:10]


def run(cmd: list[str], log: Path) -> float:
    started = time.perf_counter()
    with open(log, "a") as handle:
        handle.write(f"$ {' '.join(cmd)}\n")
        handle.flush()
        code = subprocess.call(cmd, stdout=handle, stderr=subprocess.STDOUT)
    if code != 0:
        sys.exit(f"failed ({code}): {' '.join(cmd)} -- see {log}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--scale", default="demo")
    parser.add_argument("--dataset", default="dsprites", choices=["dsprites", "celeba"])
    parser.add_argument("--models", nargs="+", default=["mmjsd", "mmpoe"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=YAML",
                        help="a setting of the scale's overlay, e.g. train.dsprites.epochs=3")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workdir", default=str(REPO / "fidelity_runs"))
    parser.add_argument("--data-dir", default=None, help="use this data folder (with processed/) instead of the shared one")
    parser.add_argument("--experiment", action="append", default=[], metavar="FILE",
                        help="list this experiment file (experiments/*.py) under the run config's `extensions:`")
    parser.add_argument("--prepare-only", action="store_true",
                        help="make the shared data and classifiers, then stop (lets parallel runs start without racing)")
    args = parser.parse_args()

    workdir = Path(args.workdir).resolve()
    raw = read_yaml(REPO / "config.yaml")
    overlay = raw["scales"].get(args.scale, {}) if args.scale != "paper" else {}
    changes = {}
    for item in args.set:
        key, _, value = item.partition("=")
        set_path(changes, key, yaml.safe_load(value))
    overlay = deep_merge(overlay, changes)
    if args.experiment:     # every mmjsd command below loads it through the run's config (mmjsd.core.extensions)
        overlay["extensions"] = [str(Path(f).resolve()) for f in args.experiment]
    base = load_config(REPO / "config.yaml", args.scale)
    merged = deep_merge({k: v for k, v in base.items() if k != "paths"}, overlay)
    data_key = digest({"data": merged["data"][args.dataset], "dataset": args.dataset})
    classifier_key = digest({"data": data_key, "classifier": merged["classifier"][args.dataset],
                             "precision": merged["precision"]})
    shared = workdir / "shared"
    exp_dir = workdir / args.name
    exp_dir.mkdir(parents=True, exist_ok=True)
    data_dir = args.data_dir or str(shared / f"data-{data_key}")
    overlay["paths"] = {"data": str(Path(data_dir).resolve()), "results": str(exp_dir / "results")}
    overlay["datasets"] = [args.dataset]
    overlay["models"] = args.models
    overlay["seeds"] = [args.seed]
    overlay.setdefault("eval", {}).setdefault("figure", {})["seed"] = args.seed   # the figure seed must be a trained one
    raw["scales"] = {"exp": overlay}
    config_path = exp_dir / "config.yaml"
    config_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    config = load_config(config_path, "exp")
    log = exp_dir / "log.txt"
    cli = ["mmjsd", "--config", str(config_path), "--scale", "exp"]
    data_dir = Path(config["paths"]["data"])
    processed = data_dir / "processed" / args.dataset

    if not (processed / "val_eval.pt").is_file():
        if args.dataset == "dsprites":
            source = config["data"]["dsprites"]["source"]
            raw_file = data_dir / "raw" / "dsprites" / f"{source}.npz"
            if source == "render":
                run([*cli, "dsprites-render", "--out", str(raw_file)], log)
        else:
            from mmjsd.core import paths

            raw_file = paths.celeba_input(config)
            if paths.celeba_source(config) == "synthetic":
                run([*cli, "celeba-synthesize", "--out", str(raw_file)], log)
        run([*cli, "prepare", "--dataset", args.dataset, "--input", str(raw_file), "--out-dir", str(processed)], log)

    # classifiers shared by experiments with the same data and classifier settings
    classifiers = shared / f"classifiers-{classifier_key}" / args.dataset
    classifiers.mkdir(parents=True, exist_ok=True)
    link = exp_dir / "results" / "classifiers" / args.dataset
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink() and not link.exists():   # a folder put there by hand is used as it is
        link.symlink_to(classifiers)
    for modality in ("img", "text"):
        if not (link / f"{modality}.json").is_file():
            run([*cli, "train-classifier", "--dataset", args.dataset, "--modality", modality,
                 "--device", "cpu", "--threads", str(args.threads)], log)
    if args.prepare_only:
        return

    for model in args.models:
        run_dir = exp_dir / "results" / "runs" / args.dataset / model / f"seed{args.seed}"
        train_s = run([*cli, "train", "--dataset", args.dataset, "--model", model, "--seed", str(args.seed),
                       "--device", "cpu", "--threads", str(args.threads)], log)
        eval_s = run([*cli, "evaluate", "--dataset", args.dataset, "--model", model, "--seed", str(args.seed),
                      "--device", "cpu", "--threads", str(args.threads)], log)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        evaluation = json.loads((run_dir / "eval.json").read_text())
        record = {
            "name": args.name, "holdout": evaluation["holdout"], "model": model, "dataset": args.dataset, "seed": args.seed, "changes": changes,
            "experiments": [Path(f).name for f in args.experiment],
            "steps": metrics["steps"], "samples": metrics["steps"] * config["train"][args.dataset]["batch_size"],
            "train_s": round(train_s, 1), "eval_s": round(eval_s, 1), "precision": metrics.get("precision"),
            "final": metrics["final"], "coherence": evaluation["coherence"], "latent": evaluation["latent"],
            "classifier_accuracy": evaluation["classifier_accuracy"],
            "direct": evaluation.get("coherence_direct"), "conditioning": evaluation.get("conditioning"),
            "average_precision": evaluation.get("coherence_average_precision"),
            "described": evaluation.get("conditioning_described"),
        }
        with open(workdir / "results.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")
        shown = list(evaluation["coherence"])[:5] if args.dataset == "dsprites" else ["Male", "Smiling", "Eyeglasses"]
        cells = " ".join(f"{n} {evaluation['coherence'][n]['img']:.2f}/{evaluation['coherence'][n]['text']:.2f}" for n in shown)
        latent = " ".join(f"{n} " + "/".join(f"{evaluation['latent'][r][n]:.2f}" for r in ("img", "text", "joint"))
                          for n in shown)
        if "conditioning" in evaluation:
            cells += " | conditioning gaps: " + " ".join(f"{n} {g['gap']:+.3f}" for n, g in evaluation["conditioning"]["gaps"].items())
        if "coherence_average_precision" in evaluation:
            ap = evaluation["coherence_average_precision"]
            cells += " | AP img: " + " ".join(f"{n} {ap[n]['img']:.2f}" for n in shown if ap[n]["img"] is not None)
        print(f"{args.name} {model}: {metrics['steps']} steps, train {train_s:.0f} s | coherence img/text: {cells} "
              f"| latent img/text/joint: {latent}", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
