"""Validation selection of one setting: run every candidate for both models on the given seeds,
then judge them by a rule fixed before the runs.

    python benchmarks/selection/choose.py run image_decoder --seeds 0 1 [--workdir W]
    python benchmarks/selection/choose.py summary image_decoder [--workdir W]
    python benchmarks/selection/choose.py cells image_decoder [--workdir W]     # every run's cells
    python benchmarks/selection/choose.py reuse celeba_width:width0.125 celeba_lr:lr0.001 --seeds 0 1

`run` calls benchmarks/fidelity.py (the real CLI: render, prepare, classifiers, train, evaluate)
once per candidate x seed, two at a time (one per CPU core), for mmJSD and mmPoE alike: every
candidate is a change to the repro scale's overlay, and both models get the same candidates.
fidelity.py is a selection tool (MMJSD_HOLDOUT=val): every number here is scored on val_fit /
val_eval, and the test split cannot be opened.

The rule (RULE). Per model, the selection score of a run is the mean of its Table 1a cells on
validation (coherence in both directions: the 10 dSprites factor cells, or CelebA's average
precisions). A setting moves from its paper-closer candidate (listed first) to a deviation only
when the deviation raises at least one model's score beyond the seed noise and lowers neither
beyond it (compare, below: more than 2 standard errors of the difference over seeds). A
deviation that helps one model and hurts the other is not adopted: the setting is shared by both.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[2]

from mmjsd.lab import holdout
from mmjsd.reporting.aggregate import summarise

holdout.enter_selection()   # every command below reads val, never test

RULE = ("a deviation replaces the paper-closer candidate only when it raises at least one model's score "
        "(mean Table 1a cell on val) beyond 2 standard errors over seeds and lowers neither beyond that")

# choice -> (dataset, {candidate: [--set KEY=YAML, ...]}), the paper-closer candidate first. The
# settings are overlays of today's repro config: a candidate run before a later decision changed
# that config carries the setting it was run with (an empty list = today's config).
DSPRITES_EARLIER_LR = "train.dsprites.lr=0.002"                      # before the dsprites_lr decision
CELEBA_EARLIER_WIDTH = "model.celeba.width={img: 0.25, text: 0.125}"  # before the celeba_width decision
CELEBA_EARLIER_LR = "train.celeba.lr=0.001"                           # before the celeba_lr decision
CHOICES: dict[str, tuple[str, dict[str, list[str]]]] = {
    "image_decoder": ("dsprites", {
        "conv": [DSPRITES_EARLIER_LR],                          # decided on val: the repro decoder
        "pose": ["model.dsprites.image_decoder=pose", "model.dsprites.style_dim={img: 3, text: 0}", DSPRITES_EARLIER_LR],
    }),
    "text_decoder": ("dsprites", {
        "conv": ["model.dsprites.text_decoder=conv", DSPRITES_EARLIER_LR],
        "aligned": [DSPRITES_EARLIER_LR],                       # decided on val: the repro likelihood
    }),
    "dsprites_lr": ("dsprites", {
        "lr0.001": [],                                          # the paper's; decided on val: the repro setting
        "lr0.002": [DSPRITES_EARLIER_LR],
    }),
    "celeba_width": ("celeba", {
        "width0.125": [CELEBA_EARLIER_LR],                      # decided on val: the repro width
        "width0.25": [CELEBA_EARLIER_WIDTH, CELEBA_EARLIER_LR],
    }),
    "celeba_text_decoder": ("celeba", {
        "conv": ["model.celeba.text_decoder=conv", CELEBA_EARLIER_WIDTH, CELEBA_EARLIER_LR],   # the authors' likelihood
        "aligned": [CELEBA_EARLIER_WIDTH, CELEBA_EARLIER_LR],   # decided on val: the repro likelihood
    }),
    "celeba_style": ("celeba", {
        "style32": ["model.celeba.style_dim=32", CELEBA_EARLIER_WIDTH, CELEBA_EARLIER_LR],     # the authors' styles
        "style0": [CELEBA_EARLIER_WIDTH, CELEBA_EARLIER_LR],    # decided on val: no styles
    }),
    "celeba_lr": ("celeba", {
        "lr0.0005": [],                                         # the authors' rate; decided on val: the repro setting
        "lr0.001": [CELEBA_EARLIER_LR],
    }),
}


# candidates whose code lives outside the product (experiments/, loaded by fidelity.py --experiment)
EXPERIMENT_FILES: dict[tuple[str, str], list[str]] = {
    ("image_decoder", "pose"): ["experiments/dsprites_pose.py"],
}


def run_name(choice: str, candidate: str, seed: int) -> str:
    return f"V-{choice}-{candidate}-s{seed}"


def cmd_run(args: argparse.Namespace) -> None:
    dataset, candidates = CHOICES[args.choice]
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    fidelity = [sys.executable, str(REPO / "benchmarks" / "fidelity.py"), "--scale", "repro", "--dataset", dataset,
                "--workdir", str(workdir)]
    # the shared data and classifiers first, once: parallel runs would race to make them
    first = next(iter(candidates.values()))
    subprocess.run([*fidelity, "--name", f"V-{args.choice}-prepare", "--seed", str(args.seeds[0]), "--prepare-only",
                    *[x for s in first for x in ("--set", s)]], check=True)
    running: list[subprocess.Popen] = []
    for seed in args.seeds:
        for candidate in [c for c in candidates if not args.candidates or c in args.candidates]:
            while len(running) >= args.parallel:
                running[0].wait()
                running = [p for p in running if p.poll() is None]
            name = run_name(args.choice, candidate, seed)
            sets = [x for s in candidates[candidate] for x in ("--set", s)]
            sets += [x for f in EXPERIMENT_FILES.get((args.choice, candidate), []) for x in ("--experiment", str(REPO / f))]
            command = [*fidelity, "--name", name, "--seed", str(seed), "--models", *args.models, *sets]
            with open(workdir / f"{name}.out", "w") as log:
                running.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
            print(f"started {name}", flush=True)
    for process in running:
        process.wait()


def cmd_reuse(args: argparse.Namespace) -> None:
    """Record runs of one choice's candidate under another choice's candidate with the same
    settings: the same settings, seed, data and code train the same model on the CPU byte for
    byte, so the run is not repeated. The two candidates' overlays must be equal."""
    source_choice, source_candidate = args.source.split(":")
    target_choice, target_candidate = args.target.split(":")
    source_sets = sorted(CHOICES[source_choice][1][source_candidate])
    target_sets = sorted(CHOICES[target_choice][1][target_candidate])
    if source_sets != target_sets:
        raise SystemExit(f"{args.source} ({source_sets or 'the current config'}) and {args.target} "
                         f"({target_sets or 'the current config'}) differ in settings: only equal settings' runs are shared")
    workdir = Path(args.workdir)
    records = [json.loads(line) for line in (workdir / "results.jsonl").read_text().splitlines()]
    existing = {(r["name"], r["model"]) for r in records}
    added = []
    for record in records:
        if record["name"].rsplit("-s", 1)[0] != run_name(source_choice, source_candidate, 0).rsplit("-s", 1)[0]:
            continue
        if record["seed"] not in args.seeds or record["model"] not in args.models:
            continue
        name = run_name(target_choice, target_candidate, record["seed"])
        if (name, record["model"]) in existing:
            continue
        added.append(json.dumps({**record, "name": name, "reused_from": record["name"]}))
    with open(workdir / "results.jsonl", "a") as handle:
        handle.writelines(line + "\n" for line in added)
    print(f"recorded {len(added)} run(s) of {args.source} as {args.target}")


def score(record: dict) -> float:
    """Mean Table 1a cell on validation: dSprites accuracy, CelebA average precision."""
    table = record["average_precision"] if record["dataset"] == "celeba" else record["coherence"]
    values = [v for cell in table.values() for v in cell.values() if v is not None]
    return sum(values) / len(values)


def collect(workdir: Path, choice: str) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """candidate -> model -> [(seed, score)] from the fidelity records of this choice."""
    _, candidates = CHOICES[choice]
    prefixes = {run_name(choice, c, 0).rsplit("-s", 1)[0]: c for c in candidates}
    found: dict[str, dict[str, list[tuple[int, float]]]] = {c: {"mmjsd": [], "mmpoe": []} for c in candidates}
    for line in (workdir / "results.jsonl").read_text().splitlines():
        record = json.loads(line)
        candidate = prefixes.get(record["name"].rsplit("-s", 1)[0])
        if candidate is None:
            continue
        if record.get("holdout") != "val":
            raise SystemExit(f"{record['name']} was not scored on val: it cannot decide anything")
        found[candidate][record["model"]].append((record["seed"], score(record)))
    return found


K_SE = 2.0   # the rule fixed before the decisions V1-V7 were run (docs/FIDELITY.md, "Decisions on the validation split")


class Order(NamedTuple):
    diff: float | None
    se: float | None
    order: str | None     # '>', '<', '=' (within the seed noise), '?' (fewer than 2 seeds), None (a model missing)


def compare(candidate: list[float], base: list[float]) -> Order:
    """The candidate's mean score against the base's, by RULE: beyond K_SE standard errors of the
    difference (SE = sqrt(s_c^2/n_c + s_b^2/n_b) over seeds) or within the seed noise. The
    decisions on record were made by this rule; the report's verdict (mmjsd.reporting.verdict)
    counts runs instead, for cells whose runs fall into two groups."""
    (m_c, s_c, n_c), (m_b, s_b, n_b) = summarise(candidate), summarise(base)
    if m_c is None or m_b is None:
        return Order(None, None, None)
    diff = m_c - m_b
    if n_c < 2 or n_b < 2:
        return Order(diff, None, "?")
    se = math.sqrt(s_c ** 2 / n_c + s_b ** 2 / n_b)
    return Order(diff, se, ">" if diff > K_SE * se else "<" if diff < -K_SE * se else "=")


def decide(found: dict[str, dict[str, list[tuple[int, float]]]]) -> list[str]:
    base, *deviations = list(found)
    lines = []
    for deviation in deviations:
        orders = {m: compare([s for _, s in found[deviation][m]], [s for _, s in found[base][m]]) for m in ("mmjsd", "mmpoe")}
        marks = [o.order for o in orders.values()]
        lowered = [m for m, o in orders.items() if o.order == "<"]
        if lowered:     # decided whatever the other model's runs say
            decision = f"keep {base} (lowers {', '.join(lowered)} beyond the seed noise)"
        elif None in marks or "?" in marks:
            decision = "not decided: fewer than 2 seeds of a model or candidate"
        elif ">" in marks:
            decision = f"adopt {deviation}"
        else:
            decision = f"keep {base} (no model gains beyond the seed noise)"
        described = ", ".join(f"{m} {o.diff:+.3f} ± {o.se or 0:.3f} ({o.order})" if o.diff is not None else f"{m} -"
                              for m, o in orders.items())
        lines.append(f"{deviation} - {base}: {described} -> {decision}")
    return lines


def cmd_summary(args: argparse.Namespace) -> None:
    dataset, _ = CHOICES[args.choice]
    found = collect(Path(args.workdir), args.choice)
    print(f"{args.choice} ({dataset}), selection score per model: mean ± std over seeds [seeds]")
    for candidate, by_model in found.items():
        cells = []
        for model, runs in by_model.items():
            mean, std, _ = summarise(s for _, s in runs)
            cells.append(f"{model} {mean:.3f} ± {std or 0:.3f} {sorted(seed for seed, _ in runs)}" if runs else f"{model} -")
        print(f"  {candidate}: " + "; ".join(cells))
    for line in decide(found):
        print("  " + line)
    print(f"rule: {RULE}")


def cmd_cells(args: argparse.Namespace) -> None:
    """Every run's Table 1a cells on val (images from text / text from images), and the
    classifier-free measures beside them (dSprites: template shape match, centroid ~ position)."""
    _, candidates = CHOICES[args.choice]
    prefixes = {run_name(args.choice, c, 0).rsplit("-s", 1)[0]: c for c in candidates}
    for line in (Path(args.workdir) / "results.jsonl").read_text().splitlines():
        record = json.loads(line)
        candidate = prefixes.get(record["name"].rsplit("-s", 1)[0])
        if candidate is None:
            continue
        table = record["average_precision"] if record["dataset"] == "celeba" else record["coherence"]
        cells = " ".join(f"{f} {c['img']:.2f}/{c['text']:.2f}" for f, c in table.items() if c["img"] is not None)
        direct = record.get("direct") or {}
        extra = ""
        if "image_shape_template" in direct:
            pixels = direct["image_pixel_spearman"]
            extra = (f" | template shape {direct['image_shape_template']['match']:.2f}, "
                     + ", ".join(f"{k} {v:+.2f}" for k, v in pixels.items()))
        print(f"{candidate:>10} {record['model']} seed {record['seed']}: score {score(record):.3f} | {cells}{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "summary", "cells", "reuse"):
        p = sub.add_parser(name)
        if name == "reuse":
            p.add_argument("source", help="CHOICE:CANDIDATE whose runs are recorded again, e.g. celeba_width:width0.25")
            p.add_argument("target", help="CHOICE:CANDIDATE they stand for, e.g. celeba_style:style0")
        else:
            p.add_argument("choice", choices=sorted(CHOICES))
        p.add_argument("--workdir", default=str(REPO / "fidelity_runs" / "selection"))
        if name in ("run", "reuse"):
            p.add_argument("--seeds", type=int, nargs="+", required=True)
            p.add_argument("--models", nargs="+", default=["mmjsd", "mmpoe"], choices=["mmjsd", "mmpoe"])
        if name == "run":
            p.add_argument("--candidates", nargs="+", help="only these candidates (default: all)")
            p.add_argument("--parallel", type=int, default=2, help="fidelity processes at a time (one CPU thread each)")
    args = parser.parse_args()
    {"run": cmd_run, "summary": cmd_summary, "cells": cmd_cells, "reuse": cmd_reuse}[args.command](args)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
