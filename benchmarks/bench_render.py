"""Benchmark of the procedural dSprites renderer and the factor-text builder (not a test).

    .venv/bin/python benchmarks/bench_render.py            # subset + full grid (needs ~3.5 GB RAM)
    .venv/bin/python benchmarks/bench_render.py --no-full  # subset only

Prints images/s for a 24,000-row subset, the time for the full 737,280-row grid, and the
time to build the grid's 64-character texts.
"""

from __future__ import annotations

import argparse
import time

import torch

from mmjsd.data import dsprites
from mmjsd.data.processed import generator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subset", type=int, default=24000)
    parser.add_argument("--no-full", action="store_true", help="skip the full grid")
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}")

    start = time.perf_counter()
    arrays = dsprites.render(args.subset, seed=0)
    seconds = time.perf_counter() - start
    print(f"render subset {args.subset}: {seconds:.2f} s, {args.subset / seconds:,.0f} images/s")

    if not args.no_full:
        start = time.perf_counter()
        arrays = dsprites.render(None)
        seconds = time.perf_counter() - start
        n = len(arrays["imgs"])
        print(f"render full grid {n}: {seconds:.2f} s, {n / seconds:,.0f} images/s")

        start = time.perf_counter()
        text = dsprites.factor_text_indices(arrays["latents_classes"], generator(0, "text"))
        seconds = time.perf_counter() - start
        print(f"texts for {n} rows: {seconds:.2f} s ({tuple(text.shape)} uint8)")


if __name__ == "__main__":
    main()
