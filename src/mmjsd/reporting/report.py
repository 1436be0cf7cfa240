"""results/report.md: what was run, on what, and how it compares with the paper.

Sections: scale, data sources (with each processed split's notes), seeds and runs (device,
wall time), hardware, the attribute classifiers' own accuracy, the paper comparison (table1.md
embedded), whether the paper's direction holds cell by cell (mmjsd.reporting.verdict), Figure 1, and
provenance (git commits, package versions). Demo-scale runs and
stand-in data are labelled at the top and wherever their numbers appear.
Reads only files earlier steps wrote (eval.json, metrics.json, classifier metrics, table1.md).
"""

from __future__ import annotations

import argparse
import datetime
import os
from pathlib import Path
from typing import Any

from mmjsd.artifacts import provenance
from mmjsd.core import files, paths
from mmjsd.core.progress import clock
from mmjsd.core.vocabulary import MODALITIES, SOURCE_DESCRIPTIONS, STAND_IN_SOURCES
from mmjsd.errors import DataError
from mmjsd.models.base import per_modality
from mmjsd.reporting import verdict
from mmjsd.reporting.aggregate import describe_scale, factor_order
from mmjsd.reporting.figure import NO_IMAGE_STYLE, image_style_dim
from mmjsd.reporting.paper import MODEL_LABELS
from mmjsd.training.gpu import cpu_model, gpu_names


def collect(config: dict) -> dict[str, Any]:
    """Everything the report shows, read from the pipeline's outputs."""
    scale = config["scale"]
    runs = []
    for dataset in config["datasets"]:
        for model in config["models"]:
            for seed in config["seeds"]:
                key = dict(dataset=dataset, model=model, seed=seed)
                metrics_path = paths.run_file(paths.RUN_METRICS, config, **key)
                eval_path = paths.run_file(paths.RUN_EVAL, config, **key)
                runs.append({
                    **key,
                    "metrics": files.read_json(metrics_path, f"train the run: `snakemake {metrics_path} --config scale={scale}`"),
                    "metrics_path": str(metrics_path),
                    "eval": files.read_json(eval_path, f"evaluate the run: `snakemake {eval_path} --config scale={scale}`"),
                    "eval_path": str(eval_path),
                })
    classifiers = {}
    for dataset in config["datasets"]:
        for modality in MODALITIES:
            path = paths.fill(paths.CLASSIFIER_METRICS, config, dataset=dataset, modality=modality)
            classifiers[(dataset, modality)] = {
                "metrics": files.read_json(path, f"train it: `mmjsd train-classifier --scale {scale} --dataset {dataset} --modality {modality}`"),
                "path": str(path),
            }
    table_path = paths.fill(paths.TABLE1_MD, config)
    if not table_path.is_file():
        raise DataError(f"{table_path} not found", f"run `mmjsd aggregate --scale {scale}` (or `snakemake {table_path} --config scale={scale}`)")
    figure_path = paths.fill(paths.FIGURE1, config)
    if "celeba" in config["datasets"] and not figure_path.is_file():
        raise DataError(f"{figure_path} not found", f"run `mmjsd figure --scale {scale}` (or `snakemake {figure_path} --config scale={scale}`)")
    # The pipeline's first outputs are the processed splits: their times bound its start from above.
    split_times = [paths.processed(config, d, s).stat().st_mtime for d in config["datasets"] for s in paths.SPLITS
                   if paths.processed(config, d, s).is_file()]
    first_split = (datetime.datetime.fromtimestamp(min(split_times), datetime.timezone.utc).isoformat(timespec="seconds")
                   if split_times else None)
    return {"runs": runs, "classifiers": classifiers, "table_md": table_path.read_text(), "table_path": str(table_path),
            "figure_path": str(figure_path) if figure_path.is_file() else None,
            "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "gpus": gpu_names()},
            "first_split_at": first_split,
            # The run ends with the last output before the report (table, figure): a repeated
            # `mmjsd report` writes the same bytes.
            "last_output_at": datetime.datetime.fromtimestamp(
                max(p.stat().st_mtime for p in (table_path, figure_path) if p.is_file()),
                datetime.timezone.utc).isoformat(timespec="seconds")}


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------

def _sources(data: dict) -> dict[str, tuple[str, str]]:
    """dataset -> (source, notes), from the first run's eval.json (the test split's fields)."""
    out = {}
    for run in data["runs"]:
        out.setdefault(run["dataset"], (run["eval"].get("data_source", "unknown"), run["eval"].get("data_notes", "")))
    return out


def banner(config: dict, data: dict) -> list[str]:
    warnings = []
    if config["scale"] != "paper":
        warnings.append(f"**Reduced scale**: {describe_scale(config['scale'])}.")
    for dataset, (source, _) in sorted(_sources(data).items()):
        if source in STAND_IN_SOURCES:
            warnings.append(f"**{dataset}: STAND-IN DATA (`{source}`)**: {SOURCE_DESCRIPTIONS[source]}.")
    # separate quoted paragraphs, one warning each
    return [line for w in warnings for line in (f"> {w}", ">")][:-1] + ([""] if warnings else [])


# What a reader must know to compare the networks with the paper's: the settings that change the
# likelihood or the latent space (docs/MODELS.md lists every deviation).
TEXT_LIKELIHOODS = {
    "conv": "the padded text (the paper's)",
    "aligned": "the text with its random padding start left out (a deviation)",
}


def model_settings_lines(config: dict) -> list[str]:
    """'- Model, <dataset>: ...' per dataset: text likelihood, style latents, image decoder."""
    lines = []
    for dataset in config["datasets"]:
        model = config["model"][dataset]
        likelihood = model.get("text_decoder", "conv")
        styles = model.get("style_dim", 0)
        parts = [f"text likelihood `{likelihood}` ({TEXT_LIKELIHOODS.get(likelihood, 'see docs/MODELS.md')})",
                 f"style latents {styles}" + ("" if any(per_modality(styles, int).values()) else " (none)"),
                 f"content latent {model['content_dim']}"]
        if "image_decoder" in model:
            parts.append(f"image decoder `{model['image_decoder']}`")
        lines.append(f"- Model, {dataset}: " + "; ".join(parts))
    return lines


def scale_section(config: dict) -> list[str]:
    return [
        "## Scale",
        "",
        f"- Scale: {describe_scale(config['scale'])}",
        f"- Datasets: {', '.join(config['datasets'])}; models: {', '.join(MODEL_LABELS.get(m, m) for m in config['models'])}",
        f"- Results folder: `{config['paths']['results']}`; data folder: `{config['paths']['data']}`",
        "- Training: " + "; ".join(
            f"{d}: {config['train'][d]['epochs']} epochs, batch {config['train'][d]['batch_size']}, "
            f"lr {config['train'][d]['lr']}, width {config['model'][d]['width']}, "
            f"max_train_samples {config['train'][d].get('max_train_samples')}" for d in config["datasets"]),
        *model_settings_lines(config),
        f"- Evaluation: max_test_samples {config['eval']['max_test_samples']}, "
        f"latent_fit_samples {config['eval']['latent_fit_samples']}",
        "",
    ]


def data_section(data: dict) -> list[str]:
    lines = ["## Data sources", ""]
    for dataset, (source, notes) in sorted(_sources(data).items()):
        lines.append(f"- **{dataset}**: `{source}` -- {SOURCE_DESCRIPTIONS.get(source, 'unknown source')}.")
        if notes:
            lines.append(f"  Notes of the processed split: {notes.strip()}")
    lines.append("")
    return lines


def runs_section(config: dict, data: dict) -> list[str]:
    lines = [
        "## Seeds and runs",
        "",
        f"Seeds: {', '.join(str(s) for s in config['seeds'])}.",
        "",
        "| dataset | model | seed | epochs | training samples | device | precision | threads | wall time (s) | samples/s | final loss |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in data["runs"]:
        m = run["metrics"]
        final = m.get("final", {}).get("loss")
        lines.append(
            f"| {run['dataset']} | {MODEL_LABELS.get(run['model'], run['model'])} | {run['seed']} | {m.get('epochs', '?')} | "
            f"{m.get('n_train', '?')} | {m.get('device', '?')} | {m.get('precision', '?')} | {m.get('threads', '?')} | {m.get('wall_time_s', '?')} | "
            f"{m.get('samples_per_s', '?')} | {final if final is None else f'{final:.3f}'} |")
    lines += ["", "Per-run files: " + ", ".join(f"`{r['metrics_path']}`" for r in data["runs"]), ""]
    return lines


def hardware_section(data: dict) -> list[str]:
    def listed(records) -> str:
        return ", ".join(f"`{d}`" for d in sorted({str(r.get("device", "unknown")) for r in records}))

    total = sum(float(r["metrics"].get("wall_time_s") or 0.0) for r in data["runs"])
    machine = data.get("machine") or {}
    gpus = machine.get("gpus") or []
    gpu_text = ", ".join(f"{n} x {name}" for name, n in sorted({g: gpus.count(g) for g in gpus}.items())) or "none"
    starts = [t for t in [data.get("first_split_at"), *(r["metrics"].get("started_at") for r in data["runs"])] if t]
    timing = []
    ends = [t for t in [data.get("last_output_at"), *(r["metrics"].get("finished_at") for r in data["runs"])] if t]
    if starts and ends:
        start, end = min(starts), max(ends)
        span = (datetime.datetime.fromisoformat(end) - datetime.datetime.fromisoformat(start)).total_seconds()
        timing = [f"- Run: started {start} (first processed split or first training call, UTC), ended {end} (last table, figure or training call); "
                  f"total pipeline time {clock(span)} (H:MM:SS, including waits and any pauses between calls)"]
    return [
        "## Hardware",
        "",
        f"- Machine that wrote this report: CPU {machine.get('cpu', 'unknown')}, {machine.get('cores', '?')} cores; "
        f"GPUs: {gpu_text}",
        *timing,
        f"- Training devices (from metrics.json): {listed(r['metrics'] for r in data['runs'])}",
        f"- Total training wall time over all runs: {total:.1f} s ({clock(total)}; summed over resumed calls)",
        f"- Classifier devices (from their .json): {listed(c['metrics'] for c in data['classifiers'].values())}",
        f"- Evaluation devices (from eval.json): {listed(r['eval'] for r in data['runs'])}",
        "",
    ]


def classifier_section(config: dict, data: dict) -> list[str]:
    lines = ["## Attribute classifiers (held-out `test` split)", "",
             "Trained once per dataset and modality on the training split; they score the cross-modal generations.", ""]
    for dataset in config["datasets"]:
        for modality in MODALITIES:
            entry = data["classifiers"][(dataset, modality)]
            m = entry["metrics"]
            test = m["test"]
            accuracy, majority = test["accuracy"], test.get("majority_accuracy", {})
            head = (f"- **{dataset} {modality}** (`{entry['path']}`): {m.get('n_train', '?')} training samples, "
                    f"{m.get('settings', {}).get('epochs', '?')} epochs, {m.get('wall_time_s', '?')} s, data `{m.get('data_source', '?')}`.")
            lines.append(head)
            if dataset == "dsprites":
                lines.append("  Accuracy (majority-class baseline): " + ", ".join(
                    f"{k} {accuracy[k]:.3f} ({majority.get(k, float('nan')):.3f})" for k in factor_order("dsprites", accuracy)))
            else:
                mean_acc = sum(accuracy.values()) / len(accuracy)
                mean_major = sum(majority.values()) / max(len(majority), 1)
                ap = [v for v in test.get("average_precision", {}).values() if v is not None]
                text = f"  Mean accuracy over {len(accuracy)} attributes {mean_acc:.3f} (majority baseline {mean_major:.3f})"
                if ap:
                    text += f", mean average precision {sum(ap) / len(ap):.3f}"
                lines.append(text + ".")
    lines.append("")
    return lines


def comparison_section(data: dict) -> list[str]:
    # table1.md's headings are demoted one level so they sit under this section.
    body = ["#" + line if line.startswith("#") else line for line in data["table_md"].rstrip("\n").split("\n")]
    return ["## Paper comparison", "", f"Embedded from `{data['table_path']}` (numbers also in the CSV files beside it).", "", *body, ""]


def figure_section(config: dict, data: dict) -> list[str]:
    if data["figure_path"] is None:
        return ["## Figure 1", "", "Not drawn: CelebA is not in this scale's datasets.", ""]
    figure = config["eval"]["figure"]
    report_dir = Path(paths.fill(paths.REPORT, config)).parent
    relative = os.path.relpath(data["figure_path"], report_dir)
    styles = "image styles drawn from N(0, I)" if image_style_dim(config) else NO_IMAGE_STYLE
    return [
        "## Figure 1",
        "",
        f"![Figure 1]({relative})",
        "",
        f"`{data['figure_path']}`: CelebA faces generated from text by the seed-{figure['seed']} runs "
        f"(mmJSD left, mmPoE right), {figure['samples_per_row']} samples per row, {styles}. "
        f"Rows: {', '.join(repr(t) for t in figure['texts'])}, then {figure['real_test_texts']} texts of real test images "
        "(in turn male and smiling, male, smiling, neither; the row label says which).",
        "",
    ]


def provenance_section(data: dict) -> list[str]:
    commits = sorted({r["metrics"].get("provenance", {}).get("git_commit", "unknown") for r in data["runs"]}
                     | {r["eval"].get("provenance", {}).get("git_commit", "unknown") for r in data["runs"]})
    packages = provenance.package_versions()
    run_packages = data["runs"][0]["metrics"].get("provenance", {}).get("packages", {}) if data["runs"] else {}
    lines = [
        "## Provenance",
        "",
        f"- Git commit writing this report: `{provenance.git_commit()}`",
        f"- Git commits recorded by the training and evaluation runs: {', '.join(f'`{c}`' for c in commits)}",
        "",
        "| package | this report | training runs |",
        "|---|---|---|",
    ]
    for name in sorted(set(packages) | set(run_packages)):
        lines.append(f"| {name} | {packages.get(name, '-')} | {run_packages.get(name, '-')} |")
    lines.append("")
    return lines


def render_report(config: dict, data: dict) -> str:
    lines = [
        "# mmJSD reproduction report",
        "",
        "Reproduction of Table 1 and Figure 1 of \"Multimodal Generative Learning Utilizing Jensen-Shannon-Divergence\" "
        "(Sutter, Daunhawer, Vogt).",
        "",
        *banner(config, data),
        *scale_section(config),
        *data_section(data),
        *runs_section(config, data),
        *hardware_section(data),
        *classifier_section(config, data),
        *comparison_section(data),
        *verdict.section(data["runs"]),
        *figure_section(config, data),
        *provenance_section(data),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


def cli_report(args: argparse.Namespace, config: dict) -> int:
    text = render_report(config, collect(config))
    out = paths.fill(paths.REPORT, config)
    files.write_text(out, text)
    print(f"wrote {out}")
    return 0
