"""`mmjsd`: one command-line entry point, one subcommand per pipeline step.

Every Snakemake rule is exactly one call of this program (DVC's stages run Snakemake). Each subcommand
takes `--config config.yaml --scale NAME` (the validated, merged configuration) plus the few
arguments that say which dataset/model/seed it works on; everything else comes from the config.

Errors in input (missing/corrupt files, bad config, NaN loss) print one line
`mmjsd: error: <problem> -- fix: <fix>` and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmjsd import __version__
from mmjsd.config import dump_yaml, load_config
from mmjsd.core import extensions
from mmjsd.core.files import sweep_tree
from mmjsd.core.vocabulary import DATASETS, MODALITIES, MODELS
from mmjsd.data.celeba_faces import cli_synthesize as cli_celeba_synthesize
from mmjsd.data.download import cli_celeba_download, cli_dsprites_download
from mmjsd.data.dsprites_render import cli_render as cli_dsprites_render
from mmjsd.data.prepare import cli_prepare
from mmjsd.errors import ConfigError, MmjsdError, from_os_error
from mmjsd.evaluation.classifiers import cli_train_classifier
from mmjsd.evaluation.evaluate import cli_evaluate
from mmjsd.pipeline.pulled import cli_adopt_pulled
from mmjsd.pipeline.status import cli_status
from mmjsd.pipeline.verify import cli_verify
from mmjsd.reporting.aggregate import cli_aggregate
from mmjsd.reporting.figure import cli_figure
from mmjsd.reporting.plots import cli_plots
from mmjsd.reporting.report import cli_report
from mmjsd.reporting.rerun import cli_compare_rerun
from mmjsd.training.gpu import config_share
from mmjsd.training.runs import cli_inspect
from mmjsd.training.train import cli_train


def _common(parser: argparse.ArgumentParser, top_level: bool = False) -> None:
    """--config/--scale, accepted before or after the subcommand.

    Subcommands use SUPPRESS defaults so that they do not overwrite a value given before the
    subcommand (argparse applies subparser defaults last).
    """
    parser.add_argument("--config", type=Path, default=Path("config.yaml") if top_level else argparse.SUPPRESS,
                        help="config file (default: config.yaml)")
    parser.add_argument("--scale", default=None if top_level else argparse.SUPPRESS,
                        help="scale overlay from the config's 'scales:' (default: the file's 'scale' key, i.e. paper)")


MAX_SEED = 2**32 - 1   # the schema's bound (src/mmjsd/schemas/config.schema.yaml, $defs.seed)


def seed_value(text: str) -> int:
    """A training seed from the command line: an integer in [0, 2^32)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{value} is outside [0, 2^32): seeds that differ by 2^32 would train the same model")
    return value


def _run_args(parser: argparse.ArgumentParser, with_model: bool = True) -> None:
    parser.add_argument("--dataset", required=True, choices=DATASETS, help="which processed dataset (data/processed/DATASET/)")
    if with_model:
        parser.add_argument("--model", required=True, help="mmjsd (the paper's model), mmpoe (the baseline), or a model the config's extensions register")
        parser.add_argument("--seed", required=True, type=seed_value,
                            help="training seed; the run lives in <paths.results>/runs/DATASET/MODEL/seedSEED/")


def _device_args(parser: argparse.ArgumentParser) -> None:
    """Where a GPU-capable step runs: a GPU it claims itself (src/mmjsd/training/gpu.py), else the CPU."""
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="auto: claim a free GPU if any, else CPU")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: config train.threads)")
    parser.add_argument("--gpu-lock-dir", type=Path, default=None, help="folder of per-GPU lock files (default: $MMJSD_GPU_LOCK_DIR or the system temp dir)")
    parser.add_argument("--gpu-share", type=float, default=None,
                        help="share of one GPU this job claims, in (0, 1]; jobs pack onto a device up to 1.0 "
                             "(default: config resources.gpu_share.<dataset>, else 1.0)")


def check_config(args: argparse.Namespace, config: dict) -> int:
    sys.stdout.write(dump_yaml(config))
    return 0


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmjsd", description=__doc__.split("\n\n")[0],
        epilog="Outputs go under the scale's paths.data and paths.results (config.yaml); "
               "`mmjsd COMMAND --help` names each command's files.")
    parser.add_argument("--version", action="version", version=f"mmjsd {__version__}")
    _common(parser, top_level=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        _common(p)
        return p

    p = add("check-config", check_config, "validate the config (and scale) and print the merged result to stdout")

    p = add("dsprites-download", cli_dsprites_download,
            "download the official dSprites npz, verify its md5, write it atomically")
    p.add_argument("--out", type=Path, required=True, help="destination .npz")

    p = add("dsprites-render", cli_dsprites_render,
            "render the procedural dSprites stand-in on the official factor grid (labelled 'render')")
    p.add_argument("--out", type=Path, required=True, help="destination .npz (official keys plus 'source')")

    p = add("celeba-download", cli_celeba_download, "download CelebA with torchvision into a folder")
    p.add_argument("--root", type=Path, required=True, help="torchvision root (celeba/ is created inside)")

    p = add("celeba-synthesize", cli_celeba_synthesize,
            "write procedural stand-in faces in CelebA's on-disk layout (labelled 'synthetic')")
    p.add_argument("--out", type=Path, required=True, help="destination folder")

    p = add("prepare", cli_prepare,
            "build the processed bimodal dataset (images, generated text, labels, splits)")
    p.add_argument("--dataset", required=True, choices=DATASETS, help="which dataset to build")
    p.add_argument("--input", type=Path, required=True, help="raw npz (dsprites) or CelebA folder (celeba)")
    p.add_argument("--out-dir", type=Path, required=True,
                   help="folder for the split files train, test, test_fit, test_eval, val, val_fit, val_eval .pt "
                        "(the pipeline uses <paths.data>/processed/DATASET)")

    p = add("train", cli_train,
            "train one model on one dataset with one seed (resumes from its checkpoint); writes model.pt, "
            "checkpoint.pt, timing.json, metrics.json, curve.csv in <paths.results>/runs/DATASET/MODEL/seedSEED/")
    _run_args(p)
    _device_args(p)
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many optimiser steps in total (for tests; the run stays resumable)")

    p = add("train-classifier", cli_train_classifier,
            "train the attribute classifier of one modality on the training split; writes "
            "<paths.results>/classifiers/DATASET/MODALITY.pt and .json")
    p.add_argument("--dataset", required=True, choices=DATASETS, help="which processed dataset (data/processed/DATASET/)")
    p.add_argument("--modality", required=True, choices=MODALITIES, help="img or text: which modality the classifier reads")
    _device_args(p)

    p = add("evaluate", cli_evaluate,
            "coherence of cross-modal generations and latent-representation classifiers for one run; "
            "writes eval.json beside the run's model.pt")
    _run_args(p)
    _device_args(p)

    p = add("inspect", cli_inspect,
            "open a trained run (its folder, model.pt or checkpoint.pt) through the checked loader and print its "
            "spec, parameter count, fingerprint and, for a checkpoint, where it stands")
    p.add_argument("path", type=Path, help="a run folder <paths.results>/runs/DATASET/MODEL/seedSEED, or a model.pt / checkpoint.pt")

    p = add("status", cli_status,
            "one line per job of the scale (done, running with epoch, samples/s and ETA, failed, stopped, waiting), "
            "read from its outputs and logs/<scale>/; works beside a running Snakemake (or the dvc repro that runs it)")

    p = add("aggregate", cli_aggregate, "collect every run's evaluation into <paths.results>/table1.csv, table1.md, table1_celeba.csv")
    p = add("figure", cli_figure, "draw Figure 1: CelebA faces generated from text strings; writes <paths.results>/figure1.png")
    add("plots", cli_plots, "draw the training curves and Table 1 (a bar per mean, a dot per run) as PNG files (<paths.results>/plots/, dvc plots)")
    p = add("report", cli_report, "write <paths.results>/report.md: scale, data sources, seeds, hardware, paper comparison")

    p = add("verify", cli_verify,
            "re-check every number of the scale from its weights in a scratch folder: models and classifiers against "
            "their slots, the test splits rebuilt, every evaluation rerun, the tables, Figure 1 and the report re-derived; "
            "one line each (identical, within tolerance, different, missing); exit status 1 when any differs")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder (its path is printed)")
    p = add("compare-rerun", cli_compare_rerun,
            "place the runs of another clone (retrained elsewhere) among the scale's committed runs: per run, how many "
            "Table 1 cells lie inside the committed range, near it (mean ± 2 std) or outside, and which")
    p.add_argument("results", type=Path, help="the other clone's results folder (its paths.results, e.g. ../other/results/repro)")
    add("adopt-pulled", cli_adopt_pulled,
        "after `dvc pull`: check the pulled outputs against dvc.lock, then record them as Snakemake's own "
        "(file times and metadata), so that neither `snakemake all` nor `dvc repro` retrains them")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.scale)
        model = getattr(args, "model", None)
        if model is not None and model not in (*MODELS, *extensions.model_names()):
            raise ConfigError(f"unknown model {model!r} (known: {', '.join((*MODELS, *extensions.model_names()))})",
                              "name one of them, or register the model in a file listed under the config's `extensions:`")
        for root in (config["paths"]["data"], config["paths"]["results"]):
            sweep_tree(root)    # what killed writers left behind, before this command writes anything
        if getattr(args, "gpu_share", "absent") is None:
            args.gpu_share = config_share(config, args.dataset)
        return int(args.handler(args, config) or 0)
    except MmjsdError as exc:
        print(f"mmjsd: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:   # a broken environment (disk full, folder not writable, symlink loop)
        print(f"mmjsd: error: {from_os_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mmjsd: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
