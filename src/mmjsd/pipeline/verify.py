"""`mmjsd --scale S verify` (`make verify` for the committed repro run): re-check every number of
a scale from its trained weights, in a scratch folder, leaving the scale's own files untouched.

1. Each run's `model.pt` and each classifier against the slot its evaluation names (the sha256
   that `eval.json` recorded for the files it read).
2. The test splits rebuilt from the raw data (`dsprites-render` / `celeba-synthesize` for the
   stand-ins, the configured folder or download otherwise, then `prepare`), against the sha256
   each `eval.json` recorded for the splits it read.
3. `evaluate` rerun for every run from the weights, against the committed `eval.json`.
4. `aggregate`, `figure` and `report` rerun on those evaluations, against the committed tables,
   Figure 1 and report. Where one dataset's runs cannot be re-evaluated (CelebA's real images
   absent), the other dataset's table is still re-derived and compared; Figure 1 and the report,
   which read every dataset, are then `missing`.

One line per run and per output: `identical`, `within tolerance` (with the largest difference
and where), `different`, or `missing` / `refused` with the reason. Numbers are compared leaf by
leaf; TOLERANCE is absolute, on accuracies and average precisions. On the CPU's own bf16 path the
rerun is identical; on another path evaluation rounds differently (docs/USAGE.md, "Where bytes
repeat"). report.md names the commit and the machine, so its lines that say where and when it
ran are left out of the comparison. The exit status is 0 when nothing is different or missing.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import yaml

from mmjsd.config import load_config, read_yaml
from mmjsd.core import paths as P
from mmjsd.core.files import file_sha256
from mmjsd.core.vocabulary import MODALITIES

TOLERANCE = 0.01
# keys of an eval.json that say how and where it ran, not what it measured
RUN_CONTEXT = ("provenance", "device", "threads", "content_sha256", "fingerprint", "inputs", "precision")
# report.md lines that name the commit, the machine or wall times
REPORT_CONTEXT = ("commit", "Hardware", "device", "Devices", "wall", "Wall", "samples/s", "package", "Python", "torch",
                  "pipeline time")


def numeric_leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every leaf of a JSON value."""
    if isinstance(node, dict):
        for key in sorted(node):
            yield from numeric_leaves(node[key], f"{prefix}{key}.")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from numeric_leaves(value, f"{prefix}{index}.")
    else:
        yield prefix.rstrip("."), node


def compare_values(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, str]:
    """('identical' | 'within tolerance' | 'different', detail) for two {key: leaf} maps."""
    if old == new:
        return "identical", ""
    if set(old) != set(new):
        gone = sorted(set(old) ^ set(new))
        return "different", f"keys differ: {', '.join(gone[:3])}{' ...' if len(gone) > 3 else ''}"
    largest, where = 0.0, ""
    for key in old:
        a, b = old[key], new[key]
        if a == b:
            continue
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b)):
            return "different", f"{key}: {a!r} against {b!r}"
        gap = abs(float(a) - float(b)) if math.isfinite(float(a)) and math.isfinite(float(b)) else math.inf
        if gap > largest:
            largest, where = gap, key
    status = "within tolerance" if largest <= TOLERANCE else "different"
    return status, f"largest difference {largest:.4g} at {where}"


def table_values(text: str) -> dict[str, Any]:
    """{row key.column: value} of a Table 1 CSV (numbers as floats)."""
    values = {}
    for row in csv.DictReader(io.StringIO(text)):
        key = ".".join(row[c] for c in ("dataset", "table", "model", "modality", "factor"))
        for column, value in row.items():
            if column == "values":      # each run's value, ';'-joined: one leaf per run
                values.update({f"{key}.values.{i}": float(v) for i, v in enumerate(value.split(";")) if v})
                continue
            try:
                values[f"{key}.{column}"] = float(value) if value else None
            except ValueError:
                values[f"{key}.{column}"] = value
    return values


def scratch_config(config_file: str | Path, scale: str, folder: Path, datasets: list[str] | None = None) -> Path:
    """A copy of the config file whose scale writes into `folder` (data/ and results/), with only
    `datasets` when given."""
    raw = read_yaml(config_file)
    where = {"data": str(folder / "data"), "results": str(folder / "results")}
    overlay = raw if scale == "paper" else raw["scales"][scale]
    overlay["paths"] = where
    if datasets is not None:
        overlay["datasets"] = datasets
    out = folder / "config.yaml"
    out.write_text(yaml.safe_dump(raw, sort_keys=False))
    return out


class Scratch:
    """The scale rebuilt in a scratch folder through the real CLI."""

    def __init__(self, config: dict, config_file: str | Path, folder: Path):
        self.config, self.folder = config, folder
        self.config_file = scratch_config(config_file, config["scale"], folder)
        self.scratch = load_config(self.config_file, config["scale"])

    def limit(self, datasets: list[str]) -> None:
        """From now on the scratch scale holds only `datasets` (the tables of the others are not derived)."""
        self.config_file = scratch_config(self.config_file, self.config["scale"], self.folder, datasets)
        self.scratch = load_config(self.config_file, self.config["scale"])

    def run(self, *args: str) -> tuple[bool, str]:
        command = [sys.executable, "-m", "mmjsd", "--config", str(self.config_file), "--scale", self.config["scale"], *args]
        result = subprocess.run(command, capture_output=True, text=True)
        lines = (result.stderr or result.stdout).strip().splitlines()
        return result.returncode == 0, (lines[-1] if lines else "")

    def raw_input(self, dataset: str) -> tuple[bool, str]:
        """The raw data `prepare` reads, in the scratch folder (rebuilt) or where the config has it."""
        if dataset == "dsprites":
            target = P.dsprites_input(self.scratch)
            if self.config["data"]["dsprites"]["source"] == "render":
                return self.run("dsprites-render", "--out", str(target))
            original = P.dsprites_input(self.config)
        else:
            target = P.celeba_input(self.scratch)
            source = P.celeba_source(self.config)
            if source == "synthetic":
                return self.run("celeba-synthesize", "--out", str(target))
            if source == "folder":
                return True, ""
            original = P.celeba_input(self.config)
        if not original.exists():
            return False, f"{original} not found (download it first: `snakemake {original} --config scale={self.config['scale']}`)"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(original.resolve())
        return True, ""


def _evaluation(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def missing_real_data(config: dict, dataset: str, records: list[dict]) -> tuple[bool, str]:
    """(False, one-line refusal) when the committed CelebA runs read real images that this machine
    lacks: `auto` would fall back to synthetic faces, and a test split of other images."""
    sources = {r.get("data_source") for r in records}
    if dataset != "celeba" or not sources or sources == {"synthetic"} or P.celeba_source(config) != "synthetic":
        return True, ""
    root = config["data"]["celeba"]["root"]
    return False, (f"the committed CelebA runs read real images ({', '.join(sorted(str(s) for s in sources))}), and "
                   f"{root}/img_align_celeba holds none here -- fix: place that CelebA folder at {root} (or set "
                   f"data.celeba.root in config.yaml), then rerun verify")


def stage_run(config: dict, scratch: Scratch, run: tuple, record: dict | None) -> tuple[str, str] | None:
    """Check one run's weights against its eval.json and copy them into the scratch folder;
    (status, why) when the run cannot be re-evaluated, None when it is staged."""
    model = P.run_file(P.RUN_MODEL, config, *run)
    if record is None:
        return "missing", f"{P.run_file(P.RUN_EVAL, config, *run)} is not there to compare with"
    if not model.is_file():
        return "missing", f"{model} is not there (the weights of this run)"
    fingerprint = record.get("fingerprint", {})
    if file_sha256(model) != fingerprint.get("model_sha256"):
        return "different", f"{model} is not the model its eval.json was computed from"
    classifiers = {m: P.fill(P.CLASSIFIER, config, dataset=run[0], modality=m) for m in MODALITIES}
    stray = [m for m, path in classifiers.items()
             if not path.is_file() or file_sha256(path) != fingerprint.get("classifiers_sha256", {}).get(m)]
    if stray:
        return "different", f"the {' and '.join(stray)} classifier is not the one its eval.json used"
    run_dir = P.run_file(P.RUN_MODEL, scratch.scratch, *run).parent
    run_dir.mkdir(parents=True, exist_ok=True)
    for item in model.parent.iterdir():
        if item.is_file() and item.name not in ("eval.json", "eval_summary.json", "checkpoint.pt"):
            shutil.copy2(item, run_dir / item.name)
    return None


def verify(config: dict, config_file: str | Path, folder: Path) -> list[tuple[str, str, str]]:
    """(what, status, detail) for every run and output of the scale."""
    scratch = Scratch(config, config_file, folder)
    lines: list[tuple[str, str, str]] = []
    runs = [(d, m, s) for d in config["datasets"] for m in config["models"] for s in config["seeds"]]
    committed = {run: _evaluation(P.run_file(P.RUN_EVAL, config, *run)) for run in runs}

    unusable: dict[str, str] = {}     # dataset -> why its runs cannot be re-evaluated here
    for dataset in config["datasets"]:
        ok, why = missing_real_data(config, dataset, [r for run, r in committed.items() if run[0] == dataset and r])
        if ok:
            ok, why = scratch.raw_input(dataset)
        if ok:
            raw = P.dsprites_input(scratch.scratch) if dataset == "dsprites" else P.celeba_input(scratch.scratch)
            ok, why = scratch.run("prepare", "--dataset", dataset, "--input", str(raw),
                                  "--out-dir", str(P.processed(scratch.scratch, dataset, "test").parent))
        if not ok:
            lines.append((f"test split {dataset}", "refused", why))
            unusable[dataset] = f"its test split could not be rebuilt ({why.split(' -- fix')[0]})"
            continue
        recorded = {json.dumps((r or {}).get("fingerprint", {}).get("splits_sha256"), sort_keys=True)
                    for run, r in committed.items() if run[0] == dataset and r}
        rebuilt = {name: file_sha256(P.processed(scratch.scratch, dataset, name)) for name in ("test", "test_fit", "test_eval")}
        same = recorded == {json.dumps(rebuilt, sort_keys=True)}
        lines.append((f"test split {dataset}", "identical" if same else "different",
                      "" if same else "its sha256 differs from what the evaluations read; a split records the digest of "
                                      "the data code, so a code change since the run changes its bytes"))
        if not same:
            unusable[dataset] = "its rebuilt test split differs from the one the committed evaluation read"

    for dataset in config["datasets"]:
        for modality in MODALITIES:
            for template in (P.CLASSIFIER, P.CLASSIFIER_METRICS, P.CLASSIFIER_SUMMARY):
                source = P.fill(template, config, dataset=dataset, modality=modality)
                if source.is_file():
                    target = P.fill(template, scratch.scratch, dataset=dataset, modality=modality)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, target)

    staged = []
    lacking: set[str] = set()    # datasets with a run that could not be re-evaluated
    for run in runs:
        name = "run {}/{}/seed{}".format(*run)
        problem = ("refused", unusable[run[0]]) if run[0] in unusable else stage_run(config, scratch, run, committed[run])
        if problem:
            lines.append((name, *problem))
            lacking.add(run[0])
        else:
            staged.append(run)
    # The evaluations are independent, one CPU thread each (the scale's train.threads), as the
    # committed ones ran: one per core at a time, results in run order.
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        outcomes = list(pool.map(lambda run: scratch.run("evaluate", "--dataset", run[0], "--model", run[1],
                                                          "--seed", str(run[2]), "--device", "cpu"), staged))
    for run, (ok, why) in zip(staged, outcomes):
        name = "run {}/{}/seed{}".format(*run)
        if not ok:
            lines.append((name, "refused", why))
            lacking.add(run[0])
            continue
        rerun = _evaluation(P.run_file(P.RUN_EVAL, scratch.scratch, *run))
        strip = lambda r: dict(numeric_leaves({k: v for k, v in r.items() if k not in RUN_CONTEXT}))   # noqa: E731
        lines.append((name, *compare_values(strip(committed[run]), strip(rerun))))

    # A dataset whose runs were all re-evaluated gets its table re-derived even when another's could
    # not be (CelebA's real images absent): a reviewer without them still checks Table 1 of dSprites.
    # Figure 1 (CelebA) and the report (every dataset) need every run.
    complete = [d for d in config["datasets"] if d not in lacking]
    if not complete:
        lines.append(("tables, figure, report", "missing", "not every run could be re-evaluated"))
        return lines
    if lacking:
        scratch.limit(complete)
    steps = ["aggregate"]
    if not lacking:
        steps += ["figure", "report"] if "celeba" in config["datasets"] else ["report"]
    for step in steps:
        ok, why = scratch.run(step)
        if not ok:
            lines.append((step, "refused", why))
            return lines
    for dataset, template in (("dsprites", P.TABLE1), ("celeba", P.TABLE1_CELEBA)):
        if dataset in lacking:
            lines.append((str(P.fill(template, config)), "missing", f"not every {dataset} run could be re-evaluated"))
            continue
        old, new = P.fill(template, config), P.fill(template, scratch.scratch)
        if not old.is_file() and not new.is_file():
            continue
        if not old.is_file():
            lines.append((str(old), "missing", "no committed table to compare with"))
            continue
        lines.append((str(old), *compare_values(table_values(old.read_text()), table_values(new.read_text()))))
    if lacking:
        lines.append(("figure, report", "missing", "they read every dataset's runs"))
        return lines
    if "celeba" in config["datasets"]:
        old, new = P.fill(P.FIGURE1, config), P.fill(P.FIGURE1, scratch.scratch)
        same = old.is_file() and old.read_bytes() == new.read_bytes()
        lines.append((str(old), "identical" if same else ("different" if old.is_file() else "missing"), ""))
    old, new = P.fill(P.REPORT, config), P.fill(P.REPORT, scratch.scratch)
    if old.is_file():
        keep = lambda text: [l for l in text.splitlines() if not any(w in l for w in REPORT_CONTEXT)]   # noqa: E731
        text = new.read_text().replace(str(scratch.folder / "results"), config["paths"]["results"])
        a, b = keep(old.read_text()), keep(text.replace(str(scratch.folder / "data"), config["paths"]["data"]))
        differing = sum(x != y for x, y in zip(a, b)) + abs(len(a) - len(b))
        lines.append((str(old), "identical" if differing == 0 else "different",
                      "" if differing == 0 else f"{differing} line(s) differ (lines naming the commit or machine left out)"))
    return lines


def cli_verify(args: argparse.Namespace, config: dict) -> int:
    folder = Path(tempfile.mkdtemp(prefix=f"mmjsd-verify-{config['scale']}-"))
    started = time.monotonic()
    try:
        lines = verify(config, getattr(args, "config", "config.yaml"), folder)
    finally:
        if not getattr(args, "keep", False):
            shutil.rmtree(folder, ignore_errors=True)
    width = max(len(what) for what, _, _ in lines)
    for what, status, detail in lines:
        print(f"{what:<{width}}  {status}" + (f"  ({detail})" if detail else ""))
    bad = [line for line in lines if line[1] in ("different", "missing", "refused")]
    print(f"verify {config['scale']}: {len(lines) - len(bad)} of {len(lines)} identical or within tolerance "
          f"({time.monotonic() - started:.0f} s)" + (f"; scratch folder kept: {folder}" if getattr(args, "keep", False) else ""))
    return 1 if bad else 0
