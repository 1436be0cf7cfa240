"""Training curves and Table 1a as PNG files: `dvc plots show` renders image plots offline (its
interactive plots load their library from a CDN), and anyone can open them.

- `plots/curves.png`: the training loss per epoch of every run, one panel per dataset, one line
  per model and seed (from each run's curve.csv).
- `plots/coherence.png`: Table 1a per dataset and dSprites' Table 1b, a bar at the mean over seeds
  and a dot for every run, the paper's value as a black tick where it has one (from table1.csv /
  table1_celeba.csv, column `values`). The measure is named as the report names it: accuracy on
  dSprites, average precision on CelebA.

Drawn with matplotlib's Agg backend at a fixed size, without version or date metadata, so equal
inputs give equal bytes.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

from mmjsd.core import paths
from mmjsd.core.files import write_bytes
from mmjsd.core.vocabulary import MODALITIES, REPRESENTATIONS
from mmjsd.errors import DataError

DPI = 100
MODEL_COLOURS = {"mmjsd": "tab:blue", "mmpoe": "tab:orange"}
MEASURE = {"dsprites": "coherence (accuracy)", "celeba": "coherence (average precision)"}
DIRECTION = {"img": "images generated from text", "text": "text generated from images"}


def _figure(width_px: int, height_px: int):
    import matplotlib   # here, not at the top: slow to import, and only this step draws

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _read_csv(path: Path, fix: str) -> list[dict]:
    if not path.is_file():
        raise DataError(f"{path} not found", fix)
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def curves_png(config: dict) -> bytes:
    datasets = config["datasets"]
    figure = _figure(520 * len(datasets), 380)
    for index, dataset in enumerate(datasets):
        axes = figure.add_subplot(1, len(datasets), index + 1)
        for model in config["models"]:
            for seed in config["seeds"]:
                path = paths.run_file(paths.RUN_CURVE, config, dataset, model, seed)
                rows = _read_csv(path, f"train it: `snakemake {path} --config scale={config['scale']}`")
                axes.plot([int(r["epoch"]) for r in rows], [float(r["loss"]) for r in rows],
                          color=MODEL_COLOURS.get(model), marker="o", markersize=3, linewidth=1,
                          label=f"{model} seed {seed}")
        axes.set_yscale("log")
        axes.set_xlabel("epoch")
        axes.set_ylabel("training loss (log scale)")
        axes.set_title(f"{dataset}: training loss per epoch", fontsize=10)
        axes.legend(fontsize=7)
    figure.subplots_adjust(left=0.1, right=0.97, bottom=0.14, top=0.9, wspace=0.3)
    return _png(figure)


def _panels(config: dict) -> list[tuple[str, str, str, list[dict]]]:
    """(dataset, table, modality, rows) per panel: Table 1a's two directions for every dataset, then
    dSprites' Table 1b representations (the paper's table; CelebA's 1b is a mean over attributes)."""
    tables = {"dsprites": paths.TABLE1, "celeba": paths.TABLE1_CELEBA}
    panels = []
    for dataset in config["datasets"]:
        path = paths.fill(tables[dataset], config)
        rows = [r for r in _read_csv(path, f"aggregate: `snakemake {path} --config scale={config['scale']}`")
                if r["dataset"] == dataset]
        parts = [("1a", m) for m in MODALITIES]
        if dataset == "dsprites":
            parts += [("1b", r) for r in REPRESENTATIONS]
        for table, modality in parts:
            panels.append((dataset, table, modality, [r for r in rows if r["table"] == table and r["modality"] == modality]))
    return panels


def _run_values(row: dict) -> list[float]:
    """Each run's value of a table1.csv row (column `values`; absent in tables written before it)."""
    return [float(v) for v in row.get("values", "").split(";") if v]


def coherence_png(config: dict) -> bytes:
    panels = _panels(config)
    figure = _figure(1100, 330 * len(panels))
    for panel, (dataset, table, modality, cells) in enumerate(panels, start=1):
        axes = figure.add_subplot(len(panels), 1, panel)
        factors = list(dict.fromkeys(r["factor"] for r in cells))
        models = [m for m in config["models"] if any(r["model"] == m for r in cells)]
        width = 0.8 / max(1, len(models))
        for k, model in enumerate(models):
            mine = {r["factor"]: r for r in cells if r["model"] == model}
            xs = [i + (k - (len(models) - 1) / 2) * width for i in range(len(factors))]
            means = [float(mine[f]["mean"]) if f in mine and mine[f]["mean"] else 0.0 for f in factors]
            seeds = mine[factors[0]]["n_seeds"] if factors and factors[0] in mine else "?"
            axes.bar(xs, means, width, color=MODEL_COLOURS.get(model), alpha=0.45,
                     label=f"{model}: bar = mean, dots = each of {seeds} run(s)")
            # every run as a dot, spread across its bar in seed order: two groups of runs show as two
            # clusters, which a mean with an error bar would hide
            for x, factor in zip(xs, factors):
                values = _run_values(mine[factor]) if factor in mine else []
                offsets = [width * (0.6 * j / (len(values) - 1) - 0.3) for j in range(len(values))] if len(values) > 1 else [0.0] * len(values)
                axes.scatter([x + o for o in offsets], values, s=7, color=MODEL_COLOURS.get(model),
                             edgecolors="black", linewidths=0.4, zorder=3)
        paper = {r["factor"]: float(r["paper"]) for r in cells if r.get("paper")}
        for i, factor in enumerate(factors):
            if factor in paper:
                axes.plot([i - 0.4, i + 0.4], [paper[factor]] * 2, color="black", linewidth=1)
        axes.set_xticks(range(len(factors)))
        axes.set_xticklabels(factors, rotation=60 if len(factors) > 8 else 0, fontsize=6 if len(factors) > 8 else 8,
                             ha="right" if len(factors) > 8 else "center")
        axes.set_ylim(0, 1.25)          # the band above 1 holds the legend, clear of any bar
        axes.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
        axes.set_ylabel(MEASURE[dataset] if table == "1a" else "linear probe (accuracy)", fontsize=8)
        note = "; black: the paper's value" if paper else "; the paper has no numbers here"
        what = DIRECTION[modality] if table == "1a" else f"Table 1b, {modality} latent"
        axes.set_title(f"{dataset}, {what} (scale {config['scale']}){note}", fontsize=9)
        if panel == 1:
            axes.legend(fontsize=7, loc="upper right", ncol=len(models), frameon=False)
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.04, top=0.98, hspace=0.9)
    return _png(figure)


def cli_plots(args: argparse.Namespace, config: dict) -> int:
    for template, draw in ((paths.PLOT_CURVES, curves_png), (paths.PLOT_COHERENCE, coherence_png)):
        out = paths.fill(template, config)
        write_bytes(out, draw(config))
        print(f"wrote {out}")
    return 0
