"""dSprites: the official file, a procedural stand-in on the same factor grid, and the text.

Official data
    `download()` fetches DeepMind's npz (md5-checked, written atomically); `load_npz()` reads it.
    Keys: imgs (737280 x 64 x 64 uint8 in {0,1}), latents_values (737280 x 6 float64),
    latents_classes (737280 x 6 int64); row = latents_classes . ROW_STRIDES.

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

Text (paper appendix B; Figure 2 shows "square, zero point eight, left, upper mid")
    "<shape>, <scale in words>, <orientation word>, <posY word> <posX word>", e.g.
    "heart, zero point five, upside down, lower right", placed at a random start (drawn once
    per sample) inside 64 '*'. The Figure 2 example fixes the composition: its fourth field
    "upper mid" is vertical word then horizontal word (orientation words are upright, left,
    upside down, right, so "left" is the orientation).
    Bins (also the classifier labels, `LABEL_NAMES`): shape 3; scale 6; orientation 4 = class
    // 10 (quarters of the 40 values: upright, left, upside down, right; note 0 and 2*pi share
    an image but not a bin, as in the grid itself); posX/posY 3 = value thresholds 1/3, 2/3,
    i.e. classes 0-10 / 11-20 / 21-31 (11/10/11 values, symmetric about the centre).
    Words for posY classes: ("upper", "mid", "lower") under our downward convention.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import pickle
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmjsd.data import text as textmod
from mmjsd.errors import DataError, detail
from mmjsd.files import atomic_path

OFFICIAL_URL = "https://github.com/deepmind/dsprites-dataset/raw/master/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
OFFICIAL_MD5 = "7da33b31b13a06f4b04a70402ce90c2e"
OFFICIAL_NAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
OFFLINE_FIX = "work offline with the procedural stand-in: set data.dsprites.source: render (or run `mmjsd dsprites-render --out FILE`)"


def offline_fix(out: str | Path) -> str:
    """First where an official npz downloaded elsewhere goes (the path the pipeline expects), then the stand-in."""
    return (f"copy an official {OFFICIAL_NAME} downloaded elsewhere to {out} (md5 {OFFICIAL_MD5} is checked) "
            f"and run again; or {OFFLINE_FIX}")

FACTOR_NAMES = ("color", "shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES = (1, 3, 6, 40, 32, 32)
ROW_STRIDES = (737280, 245760, 40960, 1024, 32, 1)
N_ROWS = 737280
IMAGE_SIZE = 64
KEYS = ("imgs", "latents_values", "latents_classes")

SHAPES = np.array([1.0, 2.0, 3.0])
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2.0 * np.pi, 40)
POSITIONS = np.linspace(0.0, 1.0, 32)

# --- text and labels ----------------------------------------------------------------------
LABEL_NAMES = ["shape", "scale", "orientation", "posX", "posY"]
LABEL_SIZES = (3, 6, 4, 3, 3)
TEXT_LENGTH = 64
SHAPE_WORDS = ("square", "ellipse", "heart")
SCALE_WORDS = ("zero point five", "zero point six", "zero point seven", "zero point eight",
               "zero point nine", "one point zero")
ORIENTATION_WORDS = ("upright", "left", "upside down", "right")
POSX_WORDS = ("left", "mid", "right")
POSY_WORDS = ("upper", "mid", "lower")            # posY increasing = lower in the image
POSY_WORDS_UPWARD = ("lower", "mid", "upper")     # for a file whose posY runs bottom to top

# --- render geometry ----------------------------------------------------------------------
MARGIN = 16                   # centre pixel of posX/posY class k is MARGIN + k
MAX_RADIUS = 14.0             # px at scale 1: farthest sprite point from its centre
CANVAS = IMAGE_SIZE + 31      # one canvas per sprite; 32 x 32 windows of 64 x 64
CANVAS_CENTRE = 47            # canvas pixel holding the sprite centre (window a -> row 47 - a)
HEART_CENTROID_Y = 0.29348    # area centroid of the implicit heart (x^2+y^2-1)^3 <= x^2 y^3
HEART_RADIUS = 1.29323        # its farthest point (the tip) from that centroid


# ==========================================================================================
# download and files
# ==========================================================================================
def download(out: str | Path, url: str = OFFICIAL_URL, timeout: float = 60.0, md5: str = OFFICIAL_MD5) -> Path:
    """Download the official npz to `out`: streamed to a temporary file, md5-verified, renamed.

    Offline/HTTP failure or a wrong md5 raises DataError and leaves nothing behind.
    """
    out = Path(out)
    digest = hashlib.md5()
    with atomic_path(out) as tmp:
        try:
            response = urllib.request.urlopen(url, timeout=timeout)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise DataError(f"cannot download dSprites from {url} ({reason})", offline_fix(out)) from None
        try:
            with response, open(tmp, "wb") as fh:
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    fh.write(chunk)
        except OSError as exc:
            raise DataError(f"download of {url} broke off ({exc})", "retry, or " + offline_fix(out)) from None
        if digest.hexdigest() != md5:
            raise DataError(f"{url} gave a file with md5 {digest.hexdigest()}, expected {md5}; nothing was written",
                            "retry the download (a proxy or partial transfer can alter it), or " + offline_fix(out))
    return out


def verify_official(path: str | Path, md5: str = OFFICIAL_MD5) -> None:
    """Raise DataError unless `path` is the official npz, byte for byte (its published md5)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"dSprites file {path} not found",
                        "run `mmjsd dsprites-download --out FILE`, or set data.dsprites.source: render for the offline stand-in")
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != md5:
        raise DataError(f"{path} has md5 {digest.hexdigest()}, not the official {md5} (corrupt or truncated)",
                        f"delete {path} and download it again (`mmjsd dsprites-download`), or set data.dsprites.source: render")


def load_npz(path: str | Path) -> dict[str, Any]:
    """Read an official or rendered dSprites npz.

    Returns {"imgs", "latents_values", "latents_classes", "source"}; source is the file's
    'source' entry ("render" for our stand-in) or "official" when absent. A missing,
    truncated or malformed file raises DataError with the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"dSprites file {path} not found",
                        "run `mmjsd dsprites-download --out FILE` (official) or `mmjsd dsprites-render --out FILE` (offline stand-in)")
    fix = f"delete {path} and download it again (`mmjsd dsprites-download`) or re-render it (`mmjsd dsprites-render`)"
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path} is not a readable dSprites npz (not a zip archive; truncated or not an npz)", fix)
    try:
        # The official file's 'metadata' entry is a Python-2 pickle (it would need
        # allow_pickle=True, encoding="latin1"). We never read it, so pickles stay disabled:
        # opening a downloaded file can then never execute code.
        with np.load(path, allow_pickle=False, encoding="latin1") as npz:
            missing = [k for k in KEYS if k not in npz.files]
            if missing:
                raise DataError(f"{path} lacks the dSprites key(s) {', '.join(missing)}", fix)
            arrays = {k: npz[k] for k in KEYS}
            source = str(npz["source"]) if "source" in npz.files else "official"
    except DataError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, pickle.UnpicklingError) as exc:
        raise DataError(f"{path} is not a readable dSprites npz ({detail(exc)})", fix) from None
    imgs, values, classes = arrays["imgs"], arrays["latents_values"], arrays["latents_classes"]
    n = imgs.shape[0] if imgs.ndim else 0
    if imgs.ndim != 3 or imgs.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or values.shape != (n, 6) or classes.shape != (n, 6):
        raise DataError(f"{path} has imgs {imgs.shape}, latents_values {values.shape}, latents_classes {classes.shape}; "
                        f"expected N x 64 x 64, N x 6, N x 6", fix)
    if n == 0:
        raise DataError(f"{path} holds no images", fix)
    arrays["imgs"] = imgs.astype(np.uint8, copy=False)
    arrays["latents_classes"] = classes.astype(np.int64, copy=False)
    arrays["latents_values"] = values.astype(np.float64, copy=False)
    if (arrays["latents_classes"] < 0).any() or (arrays["latents_classes"] >= np.array(FACTOR_SIZES)).any():
        raise DataError(f"{path} has latents_classes outside the dSprites grid {FACTOR_SIZES}", fix)
    arrays["source"] = source
    return arrays


def save_render_npz(out: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write a rendered grid with the official keys plus source="render", atomically."""
    out = Path(out)
    with atomic_path(out) as tmp:
        # a file handle, not the temp path: np.savez would append ".npz" to a foreign suffix
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, imgs=arrays["imgs"], latents_values=arrays["latents_values"],
                                latents_classes=arrays["latents_classes"], source=np.array("render"))
    return out


# ==========================================================================================
# grid and rendering
# ==========================================================================================
def subset_rows(n: int | None, seed: int, total: int = N_ROWS) -> np.ndarray:
    """Row indices of the grid to keep: all (n None or >= total) or a seeded draw of n rows
    without replacement, sorted so that grid order is kept. The same (n, seed) selects the
    same rows of the official file and of the render."""
    if n is None or n >= total:
        return np.arange(total, dtype=np.int64)
    from mmjsd.data.processed import generator

    return torch.randperm(total, generator=generator(seed, "dsprites-subset"))[:n].sort().values.numpy()


def latents_of_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(latents_classes int64 N x 6, latents_values float64 N x 6) of grid rows."""
    rows = np.asarray(rows, dtype=np.int64)
    classes = (rows[:, None] // np.array(ROW_STRIDES)) % np.array(FACTOR_SIZES)
    values = np.stack([np.ones(len(rows)), SHAPES[classes[:, 1]], SCALES[classes[:, 2]],
                       ORIENTATIONS[classes[:, 3]], POSITIONS[classes[:, 4]], POSITIONS[classes[:, 5]]], axis=1)
    return classes.astype(np.int64), values.astype(np.float64)


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


def posy_points_down(imgs: np.ndarray, classes: np.ndarray, max_rows: int = 4096) -> bool | None:
    """Whether larger posY puts the sprite lower in the image (larger row), measured from the
    mean row of sprite pixels in the lowest and highest third of posY; None if undecidable."""
    low = np.flatnonzero(classes[:, 5] <= 10)[:max_rows]
    high = np.flatnonzero(classes[:, 5] >= 21)[:max_rows]
    if len(low) == 0 or len(high) == 0:
        return None
    row_index = np.arange(IMAGE_SIZE, dtype=np.float64)

    def mean_row(sel: np.ndarray) -> float | None:
        mass = (imgs[sel] > 0).sum(axis=2).astype(np.float64)      # N x rows
        total = mass.sum()
        return float((mass * row_index).sum() / total) if total > 0 else None

    a, b = mean_row(low), mean_row(high)
    if a is None or b is None or abs(a - b) < 1.0:
        return None
    return b > a


# ==========================================================================================
# labels and text
# ==========================================================================================
def _position_bin(classes: np.ndarray) -> np.ndarray:
    # value k/31 below 1/3 -> 0, below 2/3 -> 1, else 2; in integers: floor(3k/31), capped
    return np.minimum((3 * classes) // 31, 2)


def factor_labels(latents_classes: np.ndarray) -> np.ndarray:
    """int64 N x 5: shape (3), scale (6), orientation quarter (4), posX third (3), posY third (3)."""
    c = np.asarray(latents_classes, dtype=np.int64)
    return np.stack([c[:, 1], c[:, 2], c[:, 3] // 10, _position_bin(c[:, 4]), _position_bin(c[:, 5])], axis=1)


def _templates(posy_words: tuple[str, str, str]) -> list[str]:
    """All 648 unpadded texts, indexed by the mixed-radix code of the 5 labels."""
    return [f"{s}, {sc}, {o}, {py} {px}"
            for s in SHAPE_WORDS for sc in SCALE_WORDS for o in ORIENTATION_WORDS
            for px in POSX_WORDS for py in posy_words]


def _codes(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels, dtype=np.int64)
    code = np.zeros(len(labels), dtype=np.int64)
    for column, size in enumerate(LABEL_SIZES):
        code = code * size + labels[:, column]
    return code


def describe(labels: np.ndarray, posy_words: tuple[str, str, str] = POSY_WORDS) -> list[str]:
    """Unpadded texts of N x 5 labels, e.g. "square, zero point eight, left, upper mid"."""
    table = _templates(posy_words)
    return [table[k] for k in _codes(labels)]


def factor_text_indices(latents_classes: np.ndarray, generator: torch.Generator, length: int = TEXT_LENGTH,
                        posy_words: tuple[str, str, str] = POSY_WORDS) -> torch.Tensor:
    """uint8 N x length: each row's text at a random start (one draw per row from `generator`,
    in row order) inside '*' padding, as alphabet indices. Built from the 648 templates with
    one gather, so the full grid takes about a second."""
    labels = factor_labels(latents_classes)
    table, lengths = textmod.encode_unpadded(_templates(posy_words), max_length=length)
    codes = _codes(labels)
    starts = textmod.random_pad_starts(lengths[codes], length, generator)
    return textmod.place(table, lengths, codes, starts.numpy(), length)


def factor_texts(latents_classes: np.ndarray, generator: torch.Generator, length: int = TEXT_LENGTH,
                 posy_words: tuple[str, str, str] = POSY_WORDS) -> list[str]:
    """The padded strings of `factor_text_indices` (same draws for the same generator state)."""
    return textmod.decode(factor_text_indices(latents_classes, generator, length, posy_words))


# ==========================================================================================
# command line
# ==========================================================================================
def cli_download(args: argparse.Namespace, config: dict) -> int:
    path = download(args.out)
    print(f"dsprites-download: {path} (md5 {OFFICIAL_MD5} verified)")
    return 0


def cli_render(args: argparse.Namespace, config: dict) -> int:
    settings = config["data"]["dsprites"]
    arrays = render(settings["subset"], settings["seed"])
    save_render_npz(args.out, arrays)
    n = len(arrays["imgs"])
    what = "the full grid" if n == N_ROWS else f"a seeded subset (seed {settings['seed']}) of the grid"
    print(f"dsprites-render: {args.out}: {n} procedurally rendered images, {what}; "
          f"source 'render' (a stand-in, not DeepMind's images)")
    return 0
