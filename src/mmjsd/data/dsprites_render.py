"""The procedural dSprites stand-in (source "render"): the official factor grid, drawn by us.

Procedural stand-in (`render()`, source "render")
    The generator of the official images is not published. `render()` draws the same factor
    grid (color 1; shape square/ellipse/heart; scale linspace(0.5, 1, 6); orientation
    linspace(0, 2*pi, 40); posX, posY linspace(0, 1, 32)) in the official row order and keys,
    so every consumer treats both files alike; every output made from it is labelled "render".
    Geometry (our choices, documented because the original renderer is unknown):
    - image convention: row-major, x = column (left to right), y = row (top to bottom); the
      sprite centre sits at pixel (row, column) = (16 + 31*posY, 16 + 31*posX), i.e. one pixel
      per grid step (the dataset's "smallest step changes") over a 32-pixel range with a
      16-pixel margin, so posY increasing moves the sprite DOWN the image, as in raster/
      OpenCV drawing (the convention of the Infinite dSprites re-implementation). The official
      file's direction cannot be checked offline; `posy_points_down()` measures it from any
      file and `prepare` picks the posY words from that measurement.
    - size: the point of the sprite farthest from its centre lies 14 px * scale away, so even
      a rotated scale-1 sprite stays >= 2 px inside the frame at every position; area grows
      as scale^2.
    - orientation: counter-clockwise as seen in the image (so the second quarter of the angle
      range, "left" in the text, turns the top of the sprite to the left).
    - shapes, tested analytically on pixel centres after inverse rotation/scaling:
      square |u|, |v| <= 1/sqrt(2); ellipse (u/0.5)^2 + v^2 <= 1 (upright: tall, 2:1);
      heart (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0 (lobes up), centred on its area centroid.
    Rendering cost: position is a pure integer translation, so each of the 720 (shape, scale,
    orientation) sprites is rasterised once on a 95 x 95 canvas (vectorised over sprites and
    pixels) and its 1024 positions are 64 x 64 sliding windows of that canvas, copied out in
    one fancy-indexing call per sprite. The full grid costs a few seconds.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from mmjsd.data.dsprites import (
    IMAGE_SIZE,
    N_ROWS,
    ORIENTATIONS,
    SCALES,
    latents_of_rows,
    subset_rows,
)
from mmjsd.core.files import atomic_path

MARGIN = 16                   # centre pixel of posX/posY class k is MARGIN + k
MAX_RADIUS = 14.0             # px at scale 1: farthest sprite point from its centre
CANVAS = IMAGE_SIZE + 31      # one canvas per sprite; 32 x 32 windows of 64 x 64
CANVAS_CENTRE = 47            # canvas pixel holding the sprite centre (window a -> row 47 - a)
HEART_CENTROID_Y = 0.29348    # area centroid of the implicit heart (x^2+y^2-1)^3 <= x^2 y^3
HEART_RADIUS = 1.29323        # its farthest point (the tip) from that centroid

def rasterise_sprites(sprite_ids: np.ndarray, chunk: int = 48) -> np.ndarray:
    """Binary K x 95 x 95 canvases, sprite k = shape*240 + scale*40 + orientation centred on
    canvas pixel (47, 47). Vectorised over sprites and pixels, chunked (48 sprites ~ 3.5 MB
    per float64 plane)."""
    sprite_ids = np.asarray(sprite_ids, dtype=np.int64)
    shape = sprite_ids // 240
    scale = SCALES[(sprite_ids // 40) % 6]
    theta = ORIENTATIONS[sprite_ids % 40]
    coords = np.arange(CANVAS, dtype=np.float64) - CANVAS_CENTRE      # pixel centre offsets
    dx = coords[None, None, :]                                         # column: right = +x
    dy = -coords[None, :, None]                                        # row: down, so y-up = -row
    out = np.empty((len(sprite_ids), CANVAS, CANVAS), dtype=np.uint8)
    for lo in range(0, len(sprite_ids), chunk):
        sl = slice(lo, lo + chunk)
        radius = (MAX_RADIUS * scale[sl])[:, None, None]
        cos, sin = np.cos(theta[sl])[:, None, None], np.sin(theta[sl])[:, None, None]
        # inverse rotation of the pixel offsets (sprite turned counter-clockwise by theta),
        # then into the unit frame where the sprite's farthest point is at radius 1
        u = (cos * dx + sin * dy) / radius
        v = (-sin * dx + cos * dy) / radius
        square = np.maximum(np.abs(u), np.abs(v)) <= 1.0 / math.sqrt(2.0)
        ellipse = (u / 0.5) ** 2 + v ** 2 <= 1.0
        hx, hy = u * HEART_RADIUS, v * HEART_RADIUS + HEART_CENTROID_Y
        heart = (hx * hx + hy * hy - 1.0) ** 3 - hx * hx * hy ** 3 <= 0.0
        kind = shape[sl][:, None, None]
        out[sl] = np.where(kind == 0, square, np.where(kind == 1, ellipse, heart))
    return out


def render(subset: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """The procedural stand-in in the official format and row order.

    subset: None for the full grid (737,280 rows, 3 GB of images) or the number of rows of a
    seeded draw (`subset_rows`). Returns imgs uint8 N x 64 x 64 in {0,1}, latents_values,
    latents_classes, and rows (the grid row of each image).
    """
    return render_rows(subset_rows(subset, seed))


def render_rows(rows: np.ndarray) -> dict[str, np.ndarray]:
    """Render the given grid rows (any order; sorted internally and returned sorted)."""
    rows = np.unique(np.asarray(rows, dtype=np.int64))
    if len(rows) and (rows[0] < 0 or rows[-1] >= N_ROWS):
        raise ValueError(f"grid rows must lie in 0..{N_ROWS - 1}")
    classes, values = latents_of_rows(rows)
    imgs = np.empty((len(rows), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    sprite = rows // 1024
    # rows are sorted, so the rows of one sprite are one contiguous run
    starts = np.flatnonzero(np.r_[True, sprite[1:] != sprite[:-1]])
    ends = np.r_[starts[1:], len(rows)]
    unique = sprite[starts]
    last = CANVAS - IMAGE_SIZE   # 31
    for lo in range(0, len(unique), 48):
        canvases = rasterise_sprites(unique[lo:lo + 48])
        for canvas, begin, end in zip(canvases, starts[lo:lo + 48], ends[lo:lo + 48]):
            windows = np.lib.stride_tricks.sliding_window_view(canvas, (IMAGE_SIZE, IMAGE_SIZE))
            # window (a, b) puts the canvas centre at image pixel (47 - a, 47 - b); position
            # class k must sit at pixel 16 + k, so a = 31 - posY, b = 31 - posX
            imgs[begin:end] = windows[last - classes[begin:end, 5], last - classes[begin:end, 4]]
    return {"imgs": imgs, "latents_values": values, "latents_classes": classes, "rows": rows}


def save_render_npz(out: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write a rendered grid with the official keys plus source="render", atomically."""
    out = Path(out)
    with atomic_path(out) as tmp:
        # a file handle, not the temp path: np.savez would append ".npz" to a foreign suffix
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, imgs=arrays["imgs"], latents_values=arrays["latents_values"],
                                latents_classes=arrays["latents_classes"], source=np.array("render"))
    return out


def cli_render(args: argparse.Namespace, config: dict) -> int:
    settings = config["data"]["dsprites"]
    arrays = render(settings["subset"], settings["seed"])
    save_render_npz(args.out, arrays)
    n = len(arrays["imgs"])
    what = "the full grid" if n == N_ROWS else f"a seeded subset (seed {settings['seed']}) of the grid"
    print(f"dsprites-render: {args.out}: {n} procedurally rendered images, {what}; "
          f"source 'render' (a stand-in, not DeepMind's images)")
    return 0
