"""Every mmJSD dSprites run of the committed repro settings, with the cells that tell its kind of
solution and the training curve that may decide it.

    python benchmarks/diagnostics/solution_kinds.py [--keep] [--cells docs/evidence/selection/solution_kinds.md] [fidelity_runs ...]

Reads the committed run (results/repro: test split), the selection runs of the same
settings committed in docs/evidence/selection/results.jsonl (validation split; no curves kept,
and at lr 0.002 before V3 chose 0.001), and the runs of a fidelity_runs folder named S-*
(validation split, with curves). Prints, per
run: split, seed, bf16 path or precision, final loss and text reconstruction, the epoch at which
the text reconstruction first falls below TEXT_DROP, and the Table 1b image-content shape cell
(about 0.44 in one kind of solution, about 0.86-0.96 in the other) with the 1a text-from-image
shape cell beside it. `--keep` copies the S-* runs of the folders named, with their training
curves, into docs/evidence/selection/solution_kinds.jsonl (read on every later call, so the
evidence stays with the repository); `--cells FILE` writes every run's 25 Table 1 cells as one
markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
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


KEPT = REPO / "docs" / "evidence" / "selection" / "solution_kinds.jsonl"
FACTORS = ("shape", "scale", "orientation", "posX", "posY")


def runs(folders: list[Path], keep: bool) -> list[tuple[str, object, str, list[dict], dict]]:
    """(split, seed, precision, curve rows, evaluation record) of every run, in a fixed order."""
    found = []
    for seed_dir in sorted((REPO / "results" / "repro" / "runs" / "dsprites" / "mmjsd").glob("seed*")):
        evaluation = json.loads((seed_dir / "eval.json").read_text())
        found.append(("test", seed_dir.name[4:], evaluation.get("precision", "?"), curve(seed_dir / "curve.csv"), evaluation))
    for text in (REPO / "docs" / "evidence" / "selection" / "results.jsonl").read_text().splitlines():
        record = json.loads(text)
        label = next((v for k, v in SELECTION.items() if record["name"].startswith(k)), None)
        if label and record["model"] == "mmjsd" and record["dataset"] == "dsprites":
            found.append(("val", record["seed"], label, [record["final"]], record))
    kept = {r["name"]: r for r in map(json.loads, KEPT.read_text().splitlines())} if KEPT.is_file() else {}
    for folder in folders:
        for record in map(json.loads, (folder / "results.jsonl").read_text().splitlines()):
            if record["model"] != "mmjsd" or record["dataset"] != "dsprites" or not record["name"].startswith("S-"):
                continue
            run = folder / record["name"] / "results" / "runs" / "dsprites" / "mmjsd" / f"seed{record['seed']}"
            kept[record["name"]] = dict(record, curve=curve(run / "curve.csv"))
    if keep:
        KEPT.write_text("".join(json.dumps(kept[name], sort_keys=True) + "\n" for name in sorted(kept)))
    for name in sorted(kept, key=lambda n: (kept[n]["precision"], n.count("-"), kept[n]["seed"])):
        variant = name.split("-", 3)[3] if name.count("-") >= 3 else ""     # S-bf16-s0-e24: 24 epochs
        found.append(("val", kept[name]["seed"], " ".join(filter(None, (kept[name]["precision"], variant))),
                      kept[name]["curve"], kept[name]))
    return found


def cells_table(found) -> str:
    """Every run's Table 1a (coherence: text from images, images from text) and 1b (latent
    classification: image, text, joint) cells, one row per run."""
    head = ([f"1a img->text {f}" for f in FACTORS] + [f"1a text->img {f}" for f in FACTORS]
            + [f"1b {r} {f}" for r in ("img", "text", "joint") for f in FACTORS])
    lines = ["| split | seed | precision | final rec_text | " + " | ".join(head) + " |",
             "|---" * (4 + len(head)) + "|"]
    for split, seed, precision, rows, ev in found:
        values = ([ev["coherence"][f]["text"] for f in FACTORS] + [ev["coherence"][f]["img"] for f in FACTORS]
                  + [ev["latent"][r][f] for r in ("img", "text", "joint") for f in FACTORS])
        lines.append(f"| {split} | {seed} | {precision} | {rows[-1]['rec_text']:.1f} | "
                     + " | ".join(f"{v:.3f}" for v in values) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="*", type=Path, help="fidelity_runs folders with S-* runs")
    parser.add_argument("--keep", action="store_true", help=f"copy their S-* runs into {KEPT.relative_to(REPO)}")
    parser.add_argument("--cells", type=Path, help="write every run's 25 cells here (markdown)")
    args = parser.parse_args()
    found = runs(args.folders, args.keep)
    for split, seed, precision, rows, evaluation in found:
        print(line(split, seed, precision, rows, evaluation))
    if args.cells:
        args.cells.write_text(cells_table(found))


if __name__ == "__main__":
    main()
