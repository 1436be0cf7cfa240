"""Every mmJSD dSprites run of the committed repro settings, with the cells that tell its kind of
solution and the training curve that may decide it.

    python benchmarks/diagnostics/solution_kinds.py [fidelity_runs ...]

Reads the committed three-seed run (results/repro: test split), the selection runs of the same
settings committed in docs/evidence/selection/results.jsonl (validation split; no curves kept,
and at lr 0.002 before V3 chose 0.001), and the runs of a fidelity_runs folder named S-*
(validation split, with curves). Prints, per
run: split, seed, bf16 path or precision, final loss and text reconstruction, the epoch at which
the text reconstruction first falls below TEXT_DROP, and the Table 1b image-content shape cell
(about 0.44 in one kind of solution, about 0.86-0.96 in the other) with the 1a text-from-image
shape cell beside it.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from mmjsd.lab import holdout

holdout.enter_selection()   # a lab tool: it reads recorded numbers only, and never a test split

REPO = Path(__file__).resolve().parents[2]
TEXT_DROP = 18.0


def curve(path: Path) -> list[dict]:
    with open(path) as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def drop_epoch(rows: list[dict]) -> str:
    return next((str(int(r["epoch"])) for r in rows if r["rec_text"] < TEXT_DROP), "never")


def line(split: str, seed, precision: str, rows: list[dict], evaluation: dict) -> str:
    last = rows[-1]
    drop = drop_epoch(rows) if len(rows) > 1 else "?"
    return (f"{split:5s} seed {seed!s:>2} {precision:12s} loss {last['loss']:7.1f} rec_text {last['rec_text']:5.1f} "
            f"rec_text<{TEXT_DROP:g} at epoch {drop:>5} | 1b img shape {evaluation['latent']['img']['shape']:.3f} "
            f"| 1a text shape {evaluation['coherence']['shape']['text']:.3f}")


SELECTION = {"V-dsprites_lr-lr0.001": "bf16", "V-image_decoder-conv": "bf16 lr0.002"}   # the repro settings (lr aside)


def main() -> None:
    for seed_dir in sorted((REPO / "results" / "repro" / "runs" / "dsprites" / "mmjsd").glob("seed*")):
        evaluation = json.loads((seed_dir / "eval.json").read_text())
        print(line("test", seed_dir.name[4:], evaluation.get("precision", "?"), curve(seed_dir / "curve.csv"), evaluation))
    for text in (REPO / "docs" / "evidence" / "selection" / "results.jsonl").read_text().splitlines():
        record = json.loads(text)
        label = next((v for k, v in SELECTION.items() if record["name"].startswith(k)), None)
        if label and record["model"] == "mmjsd" and record["dataset"] == "dsprites":
            print(line("val", record["seed"], label, [record["final"]], record))
    for folder in map(Path, sys.argv[1:]):
        for record in map(json.loads, (folder / "results.jsonl").read_text().splitlines()):
            if record["model"] != "mmjsd" or record["dataset"] != "dsprites" or not record["name"].startswith("S-"):
                continue
            run = folder / record["name"] / "results" / "runs" / "dsprites" / "mmjsd" / f"seed{record['seed']}"
            print(line("val", record["seed"], record["precision"], curve(run / "curve.csv"), record))


if __name__ == "__main__":
    main()
