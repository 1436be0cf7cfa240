"""`mmjsd --scale S compare-rerun RESULTS`: is a rerun made elsewhere inside the committed distribution?

A run retrained on another machine (another CPU bf16 path, a GPU) follows another trajectory from
its first step (docs/USAGE.md, "Where bytes repeat"), so it is not expected to repeat the
committed value of its seed, only to land among the committed runs. This command reads every
`runs/<dataset>/<model>/seed<S>/eval.json` under RESULTS (the `paths.results` folder of the other
clone), checks that each was trained with the same settings and evaluated on the same test split with the
same evaluation settings as the scale's committed runs, and prints for each of its Table 1 cells where it lands against the
committed runs of that cell (table1.csv / table1_celeba.csv, column `values`):

- `inside`: within the committed runs' range (min-max);
- `near`: outside the range but within mean ± 2 sample standard deviations;
- `outside`: farther.

One line per rerun run: the counts and its farthest cells (in committed standard deviations), then
one line per cell that lies outside. The committed runs are few (five per model at the repro
scale), so a cell can fall outside by chance, and a cell whose committed runs fall into two groups
(report.md says which) can take the other group's value. The exit status is 0 unless an input is
missing or was made with other settings.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

from mmjsd.artifacts.steps import step_settings
from mmjsd.core import files, paths
from mmjsd.errors import DataError
from mmjsd.reporting.aggregate import summarise, table_rows

SHOWN = 3   # farthest cells named on a run's line


def committed_values(config: dict) -> dict[tuple, list[float]]:
    """{(dataset, table, model, modality, factor): each committed run's value} from the scale's tables."""
    tables = {"dsprites": paths.TABLE1, "celeba": paths.TABLE1_CELEBA}
    cells = {}
    for dataset in config["datasets"]:
        path = paths.fill(tables[dataset], config)
        if not path.is_file():
            raise DataError(f"{path} not found: no committed table to compare with",
                            f"aggregate the scale first: `mmjsd --scale {config['scale']} aggregate`")
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                if "values" not in row:
                    raise DataError(f"{path} has no per-run column `values` (written before it existed)",
                                    f"re-derive it: `mmjsd --scale {config['scale']} aggregate`")
                key = (row["dataset"], row["table"], row["model"], row["modality"], row["factor"])
                cells[key] = [float(v) for v in row["values"].split(";") if v]
    return cells


def _committed_eval(config: dict, dataset: str, model: str) -> dict | None:
    """One committed eval.json of the dataset and model: what the rerun's settings must match."""
    for seed in config["seeds"]:
        path = paths.run_file(paths.RUN_EVAL, config, dataset, model, seed)
        if path.is_file():
            return files.read_json(path, f"re-derive the scale: `snakemake all --config scale={config['scale']}`")
    return None


def rerun_evaluations(folder: Path) -> list[tuple[Path, dict]]:
    found = sorted(Path(folder).glob("runs/*/*/seed*/eval.json"))
    if not found:
        raise DataError(f"no runs/<dataset>/<model>/seed<S>/eval.json under {folder}",
                        "name the other clone's results folder (its paths.results, e.g. ../other/results/repro)")
    fix = "re-evaluate that run in its own clone (`snakemake <its eval.json> --config scale=...`)"
    records = []
    for path in found:
        record = files.read_json(path, fix, what="rerun evaluation")
        problem = files.seal_problem(record)
        if problem:
            raise DataError(f"{path}: {problem}", fix)
        records.append((path, record))
    return records


def check_comparable(config: dict, path: Path, record: dict) -> None:
    """The rerun must score the same test split with the same evaluation settings as the committed runs."""
    dataset, model = record.get("dataset"), record.get("model")
    if record.get("holdout", "test") != "test":
        raise DataError(f"{path} scores the {record.get('holdout')!r} split, not test", "compare a test-split evaluation")
    committed = _committed_eval(config, dataset, model) if dataset in config["datasets"] else None
    if committed is None:
        raise DataError(f"{path}: no committed run of {dataset}/{model} at scale {config['scale']}",
                        "compare runs of the scale's own datasets and models")
    mine, theirs = record.get("fingerprint", {}), committed.get("fingerprint", {})
    for key, what in (("splits_sha256", "test split"), ("settings", "evaluation settings")):
        if mine.get(key) != theirs.get(key):
            raise DataError(f"{path} was evaluated with another {what} than the committed {dataset}/{model} runs",
                            f"rerun it at scale {config['scale']} of the same commit's config.yaml")
    # the training settings, from the config the rerun recorded (its model was trained under them)
    trained = step_settings(record.get("provenance", {}).get("config") or {}, "train", dataset)
    changed = sorted(k for k, v in step_settings(config, "train", dataset).items() if trained.get(k) != v)
    if changed:
        raise DataError(f"{path} comes from a model trained with other settings ({', '.join(changed)}) than the "
                        f"committed {dataset} runs", f"rerun it at scale {config['scale']} of the same commit's config.yaml")


def place(value: float, runs: list[float]) -> tuple[str, float | None]:
    """('inside' | 'near' | 'outside', distance from the committed mean in committed standard deviations)."""
    mean, std, _ = summarise(runs)
    distance = abs(value - mean) / std if std else (0.0 if value == mean else math.inf)
    if min(runs) <= value <= max(runs):
        return "inside", distance
    if std is not None and abs(value - mean) <= 2 * std:
        return "near", distance
    return "outside", distance


def compare_run(record: dict, committed: dict[tuple, list[float]]) -> list[tuple[str, str, float, float, list[float]]]:
    """(cell name, where, distance, value, committed runs) for every Table 1 cell of one rerun."""
    dataset = record["dataset"]
    cells = []
    for row in table_rows([dict(record, seed=record.get("seed", 0))], dataset):
        runs = committed.get((dataset, row["table"], row["model"], row["modality"], row["factor"]), [])
        if row["mean"] is None or not runs:
            continue
        # the committed values are table1.csv's, rounded to 4 decimals: round the rerun's alike, so that a
        # committed run compared with itself lands inside
        where, distance = place(round(row["mean"], 4), runs)
        cells.append((f"{row['table']} {row['modality']} {row['factor']}", where, distance, row["mean"], runs))
    return cells


def compare(config: dict, folder: Path) -> list[str]:
    committed = committed_values(config)
    lines = []
    for path, record in rerun_evaluations(folder):
        check_comparable(config, path, record)
        cells = compare_run(record, committed)
        counts = {w: sum(c[1] == w for c in cells) for w in ("inside", "near", "outside")}
        farthest = sorted(cells, key=lambda c: -c[2])[:SHOWN]
        name = f"{record['dataset']}/{record['model']}/seed{record.get('seed')}"
        lines.append(f"rerun {name} ({record.get('device', 'device not recorded')}): {len(cells)} cells, "
                     f"{counts['inside']} inside the committed runs' range, {counts['near']} near (within mean ± 2 std), "
                     f"{counts['outside']} outside; farthest: "
                     + ", ".join(f"{c[0]} {c[3]:.3f} ({c[2]:.1f} std)" for c in farthest))
        for cell, where, distance, value, runs in cells:
            if where == "outside":
                lines.append(f"  outside: {name} {cell} {value:.3f} against committed {min(runs):.3f}-{max(runs):.3f} "
                             f"({' '.join(f'{v:.3f}' for v in runs)})")
    return lines


def cli_compare_rerun(args: argparse.Namespace, config: dict) -> int:
    for line in compare(config, Path(args.results)):
        print(line)
    return 0
