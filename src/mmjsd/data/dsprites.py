"""dSprites: reading the official file (or the stand-in on the same grid), its labels and text.

Loading only: the download is in mmjsd.data.download, the procedural stand-in in
mmjsd.data.dsprites_render (both write npz files in the official keys and row order).

Official data
    `load_npz()` reads DeepMind's npz (or the rendered stand-in); `verify_official()` checks
    its published md5.
    Keys: imgs (737280 x 64 x 64 uint8 in {0,1}), latents_values (737280 x 6 float64),
    latents_classes (737280 x 6 int64); row = latents_classes . ROW_STRIDES.

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

import hashlib
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmjsd.data import text as textmod
from mmjsd.data.processed import generator, sorted_subset
from mmjsd.errors import DataError, detail

OFFICIAL_URL = "https://github.com/deepmind/dsprites-dataset/raw/master/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
OFFICIAL_MD5 = "7da33b31b13a06f4b04a70402ce90c2e"
OFFICIAL_NAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"

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
TEXT_FIELDS = ("shape", "scale", "orientation", "posY", "posX")   # the labels in the order the text names them



# ==========================================================================================
# files
# ==========================================================================================
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


# ==========================================================================================
# grid
# ==========================================================================================
def subset_rows(n: int | None, seed: int, total: int = N_ROWS) -> np.ndarray:
    """Row indices of the grid to keep: all (n None or >= total) or a seeded draw of n rows
    without replacement, sorted so that grid order is kept. The same (n, seed) selects the
    same rows of the official file and of the render."""
    return sorted_subset(total, n, generator(seed, "dsprites-subset")).numpy()


def latents_of_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(latents_classes int64 N x 6, latents_values float64 N x 6) of grid rows."""
    rows = np.asarray(rows, dtype=np.int64)
    classes = (rows[:, None] // np.array(ROW_STRIDES)) % np.array(FACTOR_SIZES)
    values = np.stack([np.ones(len(rows)), SHAPES[classes[:, 1]], SCALES[classes[:, 2]],
                       ORIENTATIONS[classes[:, 3]], POSITIONS[classes[:, 4]], POSITIONS[classes[:, 5]]], axis=1)
    return classes.astype(np.int64), values.astype(np.float64)


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
