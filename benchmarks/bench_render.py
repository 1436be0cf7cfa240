"""Benchmark of the data layer (not a test): dSprites rendering and text, CelebA loading.

    .venv/bin/python benchmarks/bench_render.py            # subset + full grid (needs ~3.5 GB RAM)
    .venv/bin/python benchmarks/bench_render.py --no-full  # subset only
    .venv/bin/python benchmarks/bench_render.py --no-full --celeba ../shared/data/celeba --celeba-images 20000

Prints images/s for a 24,000-row subset, the time for the full 737,280-row grid, the time to
build the grid's 64-character texts and, with --celeba, CelebA images/s through read_folder
(JPEG decode, crop 148, bicubic resize to 64) plus the attribute texts.
"""

from __future__ import annotations

import argparse
import time

import torch

from mmjsd.data import dsprites, dsprites_render
from mmjsd.data.processed import generator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subset", type=int, default=24000)
    parser.add_argument("--no-full", action="store_true", help="skip the full grid")
    parser.add_argument("--celeba", default=None, help="a CelebA folder to time read_folder on")
    parser.add_argument("--celeba-images", type=int, default=20000)
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}")

    start = time.perf_counter()
    arrays = dsprites_render.render(args.subset, seed=0)
    seconds = time.perf_counter() - start
    print(f"render subset {args.subset}: {seconds:.2f} s, {args.subset / seconds:,.0f} images/s")

    if not args.no_full:
        start = time.perf_counter()
        arrays = dsprites_render.render(None)
        seconds = time.perf_counter() - start
        n = len(arrays["imgs"])
        print(f"render full grid {n}: {seconds:.2f} s, {n / seconds:,.0f} images/s")

        start = time.perf_counter()
        text = dsprites.factor_text_indices(arrays["latents_classes"], generator(0, "text"))
        seconds = time.perf_counter() - start
        print(f"texts for {n} rows: {seconds:.2f} s ({tuple(text.shape)} uint8)")
        del arrays, text

    if args.celeba:
        from mmjsd.data import celeba

        start = time.perf_counter()
        folder = celeba.read_folder(args.celeba, args.celeba_images)
        seconds = time.perf_counter() - start
        n = len(folder.names)
        print(f"celeba read_folder {n} images: {seconds:.2f} s, {n / seconds:,.0f} images/s")
        start = time.perf_counter()
        celeba.attribute_text_indices(folder.attributes, generator(0, "text"))
        print(f"celeba texts for {n} images: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
