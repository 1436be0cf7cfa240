"""How a verdict rule behaves on cells with no real difference, at the seed counts this project uses.

    python benchmarks/diagnostics/verdict_rule_power.py [--trials 200000]

Two questions, each answered by a seeded simulation of unimodal (normal) per-run values:

1. Can a cell's values alone say that its runs fall into two groups? For every contiguous split of
   the sorted runs, the gap between the groups is compared with the pooled within-group standard
   deviation, and with the larger within-group range. Printed: the share of unimodal cells that
   each test flags (a false "two groups"). At 5 runs it is high, so the report does not claim to
   detect groups; it counts runs instead (mmjsd.reporting.verdict, RULE).
2. The report's rule calls a cell ordered when every run of one model is above every run of the
   other. With no difference, that happens with probability 2 / C(nJ + nP, nJ); the simulation
   checks the closed form, and prints how often the rule orders a cell whose means differ by 1 and
   2 standard deviations of the runs (its power).
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from mmjsd.lab import holdout

holdout.enter_selection()   # a lab tool: it reads no data at all, and would never read a test split


def sorted_splits(values: np.ndarray, min_group: int):
    """(gap, pooled sd, larger range) of every contiguous split of sorted rows, groups >= min_group."""
    values = np.sort(values, axis=1)
    n = values.shape[1]
    for k in range(min_group, n - min_group + 1):
        low, high = values[:, :k], values[:, k:]
        within = ((low - low.mean(1, keepdims=True)) ** 2).sum(1) + ((high - high.mean(1, keepdims=True)) ** 2).sum(1)
        pooled = np.sqrt(within / max(n - 2, 1))
        spread = np.maximum(low[:, -1] - low[:, 0], high[:, -1] - high[:, 0])
        yield values[:, k] - values[:, k - 1], pooled, spread


def false_groups(n: int, trials: int, rng: np.random.Generator) -> dict[str, float]:
    values = rng.standard_normal((trials, n))
    flags = {"gap > 3 pooled sd": np.zeros(trials, bool), "gap > larger range": np.zeros(trials, bool),
             "gap > larger range, groups >= 2": np.zeros(trials, bool)}
    for gap, pooled, spread in sorted_splits(values, 1):
        flags["gap > 3 pooled sd"] |= gap > 3 * pooled
        flags["gap > larger range"] |= gap > spread
    for gap, _, spread in sorted_splits(values, 2):
        flags["gap > larger range, groups >= 2"] |= gap > spread
    return {name: float(flag.mean()) for name, flag in flags.items()}


def separation(n: int, shift: float, trials: int, rng: np.random.Generator) -> float:
    """Share of cells where every run of one model lies above every run of the other."""
    j = rng.standard_normal((trials, n)) + shift
    p = rng.standard_normal((trials, n))
    return float(((j.min(1) > p.max(1)) | (j.max(1) < p.min(1))).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print("1. unimodal cells flagged as two groups (share of cells)")
    print("| runs | " + " | ".join(false_groups(5, 10, rng)) + " |")
    for n in (3, 5, 7, 10):
        print(f"| {n} | " + " | ".join(f"{v:.3f}" for v in false_groups(n, args.trials, rng).values()) + " |")
    print("\n2. the run rule: every run of one model above every run of the other (runs per model)")
    print("| runs | closed form 2/C(2n,n) | simulated, no difference | means 1 sd apart | means 2 sd apart |")
    for n in (3, 5, 7, 10):
        print(f"| {n} | {2 / math.comb(2 * n, n):.4f} | {separation(n, 0.0, args.trials, rng):.4f} | "
              f"{separation(n, 1.0, args.trials, rng):.3f} | {separation(n, 2.0, args.trials, rng):.3f} |")


if __name__ == "__main__":
    main()
