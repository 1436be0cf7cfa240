"""Where every file of the pipeline lives, in one place.

The Snakefile and the CLI build every path from these templates (dvc.yaml names the folders), so a rename here
moves every tool at once. `root` is `config['paths']['data']` or `config['paths']['results']`.
"""

from __future__ import annotations

from pathlib import Path

SPLITS = ("train", "test", "test_fit", "test_eval", "val", "val_fit", "val_eval")
# The held-out splits of each purpose: (whole, fit half, eval half). `test` is read once, by the
# pipeline's final evaluation; `val` (a seeded share of the training rows) by every selection tool.
HOLDOUT_SPLITS = {"test": ("test", "test_fit", "test_eval"), "val": ("val", "val_fit", "val_eval")}

# data side (relative to paths.data)
DSPRITES_RAW = "{data}/raw/dsprites/{source}.npz"          # source: official | render
CELEBA_TORCHVISION_ROOT = "{data}/raw/torchvision"           # torchvision puts celeba/ inside
CELEBA_TORCHVISION = CELEBA_TORCHVISION_ROOT + "/celeba"
CELEBA_SYNTHETIC = "{data}/raw/celeba_synthetic"
# A CelebA folder's content (data/manifest.py): what Snakemake's `prepare` depends on for a
# `folder` source, written at parse time only when the folder's content changed.
CELEBA_MANIFEST = "{data}/raw/celeba_manifest.txt"
PROCESSED = "{data}/processed/{dataset}/{split}.pt"

# results side (relative to paths.results)
RUN_DIR = "{results}/runs/{dataset}/{model}/seed{seed}"
RUN_MODEL = RUN_DIR + "/model.pt"            # final weights + spec (what evaluation loads)
RUN_CHECKPOINT = RUN_DIR + "/checkpoint.pt"  # resumable state: model, optimiser, RNGs, epoch
RUN_TIMING = RUN_DIR + "/timing.json"        # wall time and samples summed over every call (not in the checkpoint's bytes)
RUN_METRICS = RUN_DIR + "/metrics.json"
RUN_CURVE = RUN_DIR + "/curve.csv"
RUN_EVAL = RUN_DIR + "/eval.json"
RUN_SUMMARY = RUN_DIR + "/summary.json"          # headline training numbers
RUN_EVAL_SUMMARY = RUN_DIR + "/eval_summary.json"  # headline evaluation numbers
CLASSIFIER = "{results}/classifiers/{dataset}/{modality}.pt"
CLASSIFIER_METRICS = "{results}/classifiers/{dataset}/{modality}.json"
CLASSIFIER_SUMMARY = "{results}/classifiers/{dataset}/{modality}_summary.json"
TABLE1 = "{results}/table1.csv"
TABLE1_MD = "{results}/table1.md"
TABLE1_CELEBA = "{results}/table1_celeba.csv"
METRICS = "{results}/metrics.json"              # headline numbers per dataset and model (dvc metrics)
FIGURE1 = "{results}/figure1.png"
PLOT_CURVES = "{results}/plots/curves.png"       # training loss per epoch, every run (dvc plots)
PLOT_COHERENCE = "{results}/plots/coherence.png"  # Table 1a as bars, mean and spread over seeds (dvc plots)
REPORT = "{results}/report.md"


def fill(template: str, config: dict, **fields) -> Path:
    """Fill a template with the config's data/results roots and the given fields."""
    return Path(template.format(data=config["paths"]["data"], results=config["paths"]["results"], **fields))


def processed(config: dict, dataset: str, split: str) -> Path:
    return fill(PROCESSED, config, dataset=dataset, split=split)


def run_file(template: str, config: dict, dataset: str, model: str, seed: int) -> Path:
    return fill(template, config, dataset=dataset, model=model, seed=seed)


def celeba_source(config: dict) -> str:
    """Resolve celeba source 'auto': the configured folder when it holds images, else synthetic."""
    settings = config["data"]["celeba"]
    if settings["source"] != "auto":
        return settings["source"]
    images = Path(settings["root"]) / "img_align_celeba"
    return "folder" if images.is_dir() and any(images.glob("*.jpg")) else "synthetic"


def celeba_input(config: dict) -> Path:
    """The CelebA folder (torchvision layout) that `prepare` reads for the configured source."""
    source = celeba_source(config)
    if source == "folder":
        return Path(config["data"]["celeba"]["root"])
    if source == "torchvision":
        return fill(CELEBA_TORCHVISION, config)
    return fill(CELEBA_SYNTHETIC, config)


def dsprites_input(config: dict) -> Path:
    return fill(DSPRITES_RAW, config, source=config["data"]["dsprites"]["source"])
