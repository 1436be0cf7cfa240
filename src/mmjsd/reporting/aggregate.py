"""Collect every run's eval.json into Table 1: table1.csv, table1_celeba.csv, table1.md, metrics.json.

Rows (one per model x table x modality/representation x factor):
  dataset, table, model, modality, factor, mean, std, n_seeds, seeds, paper, diff, scale, data_source
- table "1a": coherence of cross-modal generations; modality "img" = images generated from
  text, "text" = text generated from images. dSprites: accuracy; CelebA: average precision.
- table "1b": latent-representation classifiers; modality = representation img/text/joint;
  accuracy for both datasets.
- mean over seeds; std is the SAMPLE standard deviation (ddof=1), left empty when only one
  seed has a value; a seed whose value is null (e.g. an AP undefined because the evaluated
  rows hold no positive) is left out and not counted in n_seeds.
- paper: the paper's Table 1 value (dSprites only); diff = mean - paper, empty without one.
metrics.json holds the headline numbers `dvc metrics show` prints: per dataset, model and
table/modality, the mean over factors of the cell means (dSprites accuracy; CelebA 1a average
precision, 1b accuracy), rounded to 4 digits.
Numbers are written with a fixed format ('%.4f') and rows in a fixed order, so rerunning on
the same inputs gives identical bytes.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Iterable

from mmjsd.artifacts.fingerprints import check_eval_slot, rebuild_command
from mmjsd.core import files, paths
from mmjsd.core.vocabulary import DATASETS, DIRECTIONS, REPRESENTATIONS, SOURCE_DESCRIPTIONS
from mmjsd.data.dsprites import LABEL_SIZES
from mmjsd.errors import DataError
from mmjsd.reporting.paper import DSPRITES_FACTORS, MODEL_LABELS, MODEL_ORDER, paper_value

# `values`: each run's value, in the order of `seeds` (a cell whose runs fall into two groups shows it here,
# not in the mean)
COLUMNS = ("dataset", "table", "model", "modality", "factor", "mean", "std", "n_seeds", "seeds", "values",
           "paper", "diff", "scale", "data_source")
FLOAT_FORMAT = "%.4f"
JOINT_ROW_NOTE = (
    "Note on the paper's numbers in 1b: the paper labels its third 1b row \"mmJSD Joint\". mmJSD has no "
    "joint row of its own in that table (its img/text rows come first, then mmPoE's), and by its position "
    "among mmPoE's rows and its values it is mmPoE's joint representation; it is compared with our mmPoE "
    "`joint` row here (src/mmjsd/reporting/paper.py)."
)
DSPRITES_CHANCE = {factor: 1 / size for factor, size in zip(DSPRITES_FACTORS, LABEL_SIZES)}
CELEBA_NAMED_ATTRIBUTES = ("Male", "Smiling", "Eyeglasses", "Blond_Hair", "Wavy_Hair", "Heavy_Makeup", "Wearing_Lipstick")

def describe_source(source: str) -> str:
    return f"`{source}` ({SOURCE_DESCRIPTIONS.get(source, 'unknown source')})"


SCALE_LABELS = {
    "paper": "the paper's settings",
    "repro": ("a reduced-scale reproduction: the paper's models and measures with less data, narrower networks "
              "and fewer epochs, sized for a 2-core CPU (the budget is under Scale in report.md); its cells are "
              "compared with the paper's by the direction of the mmJSD - mmPoE difference, not by value"),
    "demo": "a smoke run: minutes on a CPU; it shows that the pipeline runs end to end and is not evidence about the paper",
    "ci": "the CI scale: it exercises every stage and proves nothing about the paper",
}


def describe_scale(scale: str) -> str:
    """What a scale's numbers are, in one phrase (every table and report names it)."""
    return f"`{scale}` -- " + SCALE_LABELS.get(scale, "a custom scale with reduced settings (see its config); not the paper's settings")


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------

def eval_path(config: dict, dataset: str, model: str, seed: int) -> Path:
    return paths.run_file(paths.RUN_EVAL, config, dataset, model, seed)


def read_evaluations(config: dict, dataset: str, config_file: str | Path = "config.yaml") -> list[dict]:
    """Every eval.json of `dataset` for the config's models x seeds (each with its '_path')."""
    records = []
    for model in config["models"]:
        for seed in config["seeds"]:
            path = eval_path(config, dataset, model, seed)
            fix = f"run `{rebuild_command(config, path, config_file)}`"
            record = files.read_json(path, fix, what=f"evaluation of run {dataset}/{model}/seed{seed}")
            problem = files.seal_problem(record)
            if problem:
                raise DataError(f"{path}: {problem}", fix)
            if record.get("holdout", "test") != "test":   # a selection run's numbers never enter Table 1
                raise DataError(f"{path} scores the {record.get('holdout')!r} split, not test: a selection run's "
                                f"evaluation in a pipeline slot", f"re-evaluate on test: `{fix.split('`')[1]}`")
            check_eval_slot(config, record, path, dataset, model, seed, fix, config_file)
            record["_path"] = str(path)
            records.append(record)
    return records


# --------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------

def present(value: Any) -> bool:
    """A measured value: not missing and not NaN (summarise's rule, so `values` matches `n_seeds`)."""
    return value is not None and not math.isnan(float(value))


def summarise(values: Iterable[float | None]) -> tuple[float | None, float | None, int]:
    """(mean, sample std with ddof=1 or None when fewer than 2 values, count), ignoring None/NaN."""
    kept = [float(v) for v in values if present(v)]
    if not kept:
        return None, None, 0
    mean = sum(kept) / len(kept)
    if len(kept) < 2:
        return mean, None, len(kept)
    variance = sum((v - mean) ** 2 for v in kept) / (len(kept) - 1)
    return mean, math.sqrt(variance), len(kept)


def _model_order(models: Iterable[str]) -> list[str]:
    rank = {m: i for i, m in enumerate(MODEL_ORDER)}
    return sorted(set(models), key=lambda m: (rank.get(m, len(rank)), m))


def _cell_values(records: list[dict], table: str, modality: str, factor: str, coherence_key: str) -> list[tuple[int, Any]]:
    values = []
    for record in records:
        if table == "1a":
            value = record[coherence_key][factor][modality]
        else:
            value = record["latent"][modality][factor]
        values.append((int(record["seed"]), value))
    return values


def table_rows(records: list[dict], dataset: str) -> list[dict]:
    """Rows for one dataset in a fixed order: table, model (paper order), modality, factor."""
    if not records:
        return []
    coherence_key = "coherence_average_precision" if dataset == "celeba" else "coherence"
    factors = factor_order(dataset, records[0][coherence_key])
    rows = []
    for table, modalities in (("1a", DIRECTIONS), ("1b", REPRESENTATIONS)):
        for model in _model_order(r["model"] for r in records):
            runs = sorted((r for r in records if r["model"] == model), key=lambda r: int(r["seed"]))
            for modality in modalities:
                for factor in factors:
                    seeded = _cell_values(runs, table, modality, factor, coherence_key)
                    mean, std, n = summarise(v for _, v in seeded)
                    paper = paper_value(table, model, modality, factor) if dataset == "dsprites" else None
                    rows.append({
                        "dataset": dataset, "table": table, "model": model, "modality": modality, "factor": factor,
                        "mean": mean, "std": std, "n_seeds": n,
                        "seeds": ";".join(str(s) for s, v in seeded if present(v)),
                        "values": [float(v) for _, v in seeded if present(v)],
                        "paper": paper,
                        "diff": (mean - paper) if (mean is not None and paper is not None) else None,
                        "scale": _joined(r["scale"] for r in runs),
                        "data_source": _joined(r["data_source"] for r in runs),
                    })
    return rows


def factor_order(dataset: str, labels) -> list[str]:
    """dSprites factors in the paper's column order; other labels as stored (eval.json sorts keys)."""
    labels = list(labels)
    if dataset == "dsprites":
        return [f for f in DSPRITES_FACTORS if f in labels] + [f for f in labels if f not in DSPRITES_FACTORS]
    return labels


def _joined(values: Iterable[str]) -> str:
    return ";".join(sorted(set(str(v) for v in values)))


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(_fmt(v) for v in value)
    if isinstance(value, float):
        return "" if math.isnan(value) else FLOAT_FORMAT % value
    return str(value)


def format_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_fmt(row[c]) for c in COLUMNS])
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------

def _cell(row: dict | None, digits: int = 3, with_paper: bool = True) -> str:
    if row is None or row["mean"] is None:
        return "n/a"
    text = f"{row['mean']:.{digits}f}"
    if row["std"] is not None:
        text += f" ± {row['std']:.{digits}f}"
    if with_paper and row["paper"] is not None:
        text += f" ({row['paper']:g})"
    return text


def _index(rows: list[dict]) -> dict[tuple, dict]:
    return {(r["table"], r["model"], r["modality"], r["factor"]): r for r in rows}


def _run_summary(records: list[dict]) -> tuple[str, str, str]:
    scale = _joined(r["scale"] for r in records)
    sources = sorted(set(r["data_source"] for r in records))
    seeds = ", ".join(str(s) for s in sorted(set(int(r["seed"]) for r in records)))
    return scale, "; ".join(describe_source(s) for s in sources), seeds


def _classifier_table(records: list[dict], factors: list[str]) -> list[str]:
    """The classifiers' own held-out accuracy (identical in every eval.json of a dataset)."""
    accuracy = records[0]["classifier_accuracy"]
    lines = ["| classifier | " + " | ".join(factors) + " |", "|---|" + "---|" * len(factors)]
    for modality in DIRECTIONS:
        lines.append(f"| {modality} | " + " | ".join(f"{accuracy[modality][f]:.3f}" for f in factors) + " |")
    return lines


def dsprites_markdown(records: list[dict], rows: list[dict]) -> list[str]:
    if not records:
        return ["## dSprites + text", "", "dSprites is not in this scale's datasets: no Table 1 rows.", ""]
    factors = factor_order("dsprites", records[0]["coherence"])
    scale, sources, seeds = _run_summary(records)
    cells = _index(rows)
    lines = [
        "## Table 1 (dSprites + text): reproduction vs. paper",
        "",
        f"- Scale: {describe_scale(scale)}",
        f"- Data: {sources}",
        f"- Seeds: {seeds}. Cells: `ours mean ± sample std over seeds (ddof=1; no std with one seed) (paper)`.",
        f"- Rows in `table1.csv` (same numbers at 4 decimals, with `diff` = ours - paper, and each run's value in "
        f"`values`); report.md judges each cell run by run.",
        "",
        "Classifiers' own accuracy on the held-out `test` split (upper bound for coherence;"
        " chance: " + ", ".join(f"{f} {DSPRITES_CHANCE[f]:.2f}" for f in factors if f in DSPRITES_CHANCE) + "):",
        "",
        *_classifier_table(records, factors),
        "",
        "### (a) Coherence: accuracy of cross-modal generations",
        "`img` = images generated from text, `text` = text generated from images.",
        "",
        "| model | " + " | ".join(f"{f} {d}" for f in factors for d in DIRECTIONS) + " |",
        "|---|" + "---|" * (2 * len(factors)),
    ]
    models = _model_order(r["model"] for r in records)
    for model in models:
        lines.append(f"| {MODEL_LABELS.get(model, model)} | "
                     + " | ".join(_cell(cells.get(("1a", model, d, f))) for f in factors for d in DIRECTIONS) + " |")
    lines += [
        "",
        "### (b) Linear classifiers on the latent representations (content means): accuracy",
        "",
        "| model | representation | " + " | ".join(factors) + " |",
        "|---|---|" + "---|" * len(factors),
    ]
    for model in models:
        for rep in REPRESENTATIONS:
            lines.append(f"| {MODEL_LABELS.get(model, model)} | {rep} | "
                         + " | ".join(_cell(cells.get(("1b", model, rep, f))) for f in factors) + " |")
    lines += ["", JOINT_ROW_NOTE]
    notes = [(r["model"], r["seed"], rep, label, note) for r in records
             for rep, per_label in sorted(r.get("latent_notes", {}).items()) for label, note in sorted(per_label.items())]
    if notes:
        lines += ["", "Latent-classifier fits that needed special handling:"]
        lines += [f"- {MODEL_LABELS.get(m, m)} seed {s}, {rep}, {label}: {note}" for m, s, rep, label, note in notes]
    lines.append("")
    return lines


def _mean(values: Iterable[float | None]) -> float | None:
    return summarise(values)[0]


def celeba_markdown(records: list[dict], rows: list[dict]) -> list[str]:
    if not records:
        return []
    scale, sources, seeds = _run_summary(records)
    attributes = list(records[0]["coherence_average_precision"])
    named = [a for a in CELEBA_NAMED_ATTRIBUTES if a in attributes] or attributes[:5]
    cells = _index(rows)
    models = _model_order(r["model"] for r in records)
    lines = [
        "## CelebA + text (the paper shows these only as figures; no paper values)",
        "",
        f"- Scale: {describe_scale(scale)}",
        f"- Data: {sources}",
        f"- Seeds: {seeds}. Per-attribute rows in `table1_celeba.csv` (1a: average precision, 1b: accuracy).",
        "",
        "Coherence, average precision of the attribute classifier on cross-modal generations "
        "(first columns: mean over attributes of the seed means, attributes with an undefined AP left out; "
        "named attributes: mean ± std over seeds):",
        "",
        "| model | img (generated from text) | text (generated from images) | " + " | ".join(f"{a} img | {a} text" for a in named) + " |",
        "|---|---|---|" + "---|---|" * len(named),
    ]
    for model in models:
        overall = [_mean(cells[("1a", model, d, a)]["mean"] for a in attributes) for d in DIRECTIONS]
        named_cells = [_cell(cells.get(("1a", model, d, a)), with_paper=False) for a in named for d in DIRECTIONS]
        lines.append(f"| {MODEL_LABELS.get(model, model)} | " + " | ".join(_num(v) for v in overall) + " | " + " | ".join(named_cells) + " |")
    lines += [
        "",
        "Latent-representation classifiers, accuracy (mean over attributes):",
        "",
        "| model | " + " | ".join(REPRESENTATIONS) + " |",
        "|---|" + "---|" * len(REPRESENTATIONS),
    ]
    for model in models:
        lines.append(f"| {MODEL_LABELS.get(model, model)} | "
                     + " | ".join(_num(_mean(cells[("1b", model, rep, a)]["mean"] for a in attributes)) for rep in REPRESENTATIONS) + " |")
    accuracy = records[0]["classifier_accuracy"]
    lines += [
        "",
        "Classifiers' own held-out accuracy (mean over attributes): "
        + ", ".join(f"{m} {_num(_mean(accuracy[m].values()))}" for m in DIRECTIONS) + ".",
        "",
    ]
    return lines


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def sources_markdown(records: list[dict]) -> list[str]:
    lines = ["## Files these numbers come from", ""]
    for record in records:
        inputs = record.get("inputs", {})
        model = inputs.get("model", "?")
        lines.append(f"- `{record['_path']}` (model `{model}`)")
    classifier_files = sorted({p for r in records for p in r.get("inputs", {}).get("classifier_metrics", {}).values()})
    lines += [f"- classifier metrics `{p}`" for p in classifier_files]
    lines.append("")
    return lines


def render_markdown(config: dict, dsprites_records: list[dict], dsprites_rows: list[dict],
                    celeba_records: list[dict], celeba_rows: list[dict]) -> str:
    lines = [
        "# Table 1: reproduced numbers beside the paper's",
        "",
        f"Scale: {describe_scale(config['scale'])}. Models: "
        + ", ".join(MODEL_LABELS.get(m, m) for m in _model_order(config["models"]))
        + ". Seeds: " + ", ".join(str(s) for s in config["seeds"]) + ".",
        "",
        *dsprites_markdown(dsprites_records, dsprites_rows),
        *celeba_markdown(celeba_records, celeba_rows),
        *sources_markdown(dsprites_records + celeba_records),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

def headline_metrics(rows_by_dataset: dict[str, list[dict]]) -> str:
    """metrics.json: {dataset: {model: {"1a_img": mean over factors, ...}}} in table order."""
    metrics: dict[str, dict[str, dict[str, float]]] = {}
    for dataset, rows in rows_by_dataset.items():
        groups: dict[tuple[str, str], list[float]] = {}
        for row in rows:
            if row["mean"] is not None:
                groups.setdefault((row["model"], f"{row['table']}_{row['modality']}"), []).append(row["mean"])
        for (model, cell), values in groups.items():
            metrics.setdefault(dataset, {}).setdefault(model, {})[cell] = round(sum(values) / len(values), 4)
    return json.dumps(metrics, indent=2) + "\n"


def aggregate(config: dict, config_file: str | Path = "config.yaml") -> dict[str, str]:
    """The text of every output, keyed by path (nothing written)."""
    records = {d: read_evaluations(config, d, config_file) if d in config["datasets"] else [] for d in DATASETS}
    rows = {d: table_rows(records[d], d) for d in records}
    outputs = {
        str(paths.fill(paths.TABLE1, config)): format_csv(rows["dsprites"]),
        str(paths.fill(paths.TABLE1_MD, config)): render_markdown(config, records["dsprites"], rows["dsprites"],
                                                                   records["celeba"], rows["celeba"]),
    }
    if "celeba" in config["datasets"]:
        outputs[str(paths.fill(paths.TABLE1_CELEBA, config))] = format_csv(rows["celeba"])
    outputs[str(paths.fill(paths.METRICS, config))] = headline_metrics({d: rows[d] for d in config["datasets"]})
    return outputs


def cli_aggregate(args: argparse.Namespace, config: dict) -> int:
    for path, text in aggregate(config, getattr(args, "config", "config.yaml")).items():
        files.write_text(path, text)
        print(f"wrote {path}")
    return 0
