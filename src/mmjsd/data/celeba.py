"""CelebA: reading a folder in torchvision's layout, the attribute text, and a synthetic stand-in.

Folder layout (torchvision's `<root>/celeba/`, or the shared subset's folder itself):
    img_align_celeba/000001.jpg ...   178 x 218 aligned faces
    list_attr_celeba.txt              line 1: count; line 2: the 40 names; then "name v1 .. v40"
                                      with v in {-1, 1}; CRLF line ends are accepted
    list_eval_partition.txt           optional: "name p", p = 0 train, 1 valid, 2 test

`read_folder` uses the images that are present (a partial copy such as ../shared/data/celeba
holds only 000001-020000) and reports how many listed images are missing. Images are
centre-cropped to 148 x 148 (offsets (218-148)//2 = 35 rows, (178-148)//2 = 15 columns, the
authors' crop) and resized to 64 x 64 with antialiased bicubic interpolation (within 1 grey
level of the authors' PIL bicubic resize), decoded in batches with torchvision.io.

Splits (`choose_splits`): the authors trained on partition 0 and evaluated on partition 1
("valid"); we do the same when both occur among the loaded images (partition 2 is then left
unused). Otherwise (e.g. the shared subset, all of which is partition 0) a seeded held-out
share `test_fraction` of the loaded images is carved out, and the summary says so.

Text (paper appendix B.2, the authors' preprocessing script): the names of the attributes
with value 1, in file column order, lower-cased with '_' -> ' ', joined by ", "; attributes
are dropped from the end while the text is longer than 256 characters; the result is placed
at a random start (one draw per image, seeded, so an image's text never changes) inside 256
'*'. Labels: the 40 attributes as 0/1 int64.

Synthetic stand-in (`synthesize_folder`, source "synthetic"): procedural faces written in
the same on-disk format, with attributes drawn from per-sex frequencies measured on the
official attribute file, so the pipeline runs with no real data. The drawing shows Male
(squarer jaw, short vs long hair, beard/moustache/sideburns), Smiling (mouth curve),
Mouth_Slightly_Open, Eyeglasses, hair colour (Black/Blond/Brown/Gray), Bald, Bangs,
Wavy_Hair, Wearing_Hat, Wearing_Lipstick, Heavy_Makeup, Pale_Skin, Rosy_Cheeks,
Wearing_Earrings, Wearing_Necklace, Wearing_Necktie, Narrow_Eyes, Bushy_Eyebrows, Chubby,
Big_Lips, Blurry; the other attributes are labels only. Every output made from it is
labelled "synthetic": it tests the plumbing, not the paper's claims.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mmjsd.data import text as textmod
from mmjsd.errors import DataError, detail

log = logging.getLogger(__name__)

ATTRIBUTE_NAMES = [
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
    "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin",
    "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open",
    "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
]
ATTRIBUTE_WORDS = [name.replace("_", " ").lower() for name in ATTRIBUTE_NAMES]
A = {name: i for i, name in enumerate(ATTRIBUTE_NAMES)}

IMAGE_DIR = "img_align_celeba"
ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
SYNTHETIC_MARKER = "SYNTHETIC"
RAW_WIDTH, RAW_HEIGHT = 178, 218
CROP = 148
IMAGE_SIZE = 64
TEXT_LENGTH = 256
BATCH = 256
IMAGE_FIX = "restore it from the CelebA release, or delete it (it then counts as missing)"
FOLDER_FIX = "set data.celeba.root to a CelebA folder (img_align_celeba/ + list_attr_celeba.txt), or use data.celeba.source: synthetic"


@dataclass
class CelebAFolder:
    """What `read_folder` found: the loaded images with their attributes and partitions."""

    root: Path
    names: list[str]                  # file names of the loaded images, in attribute-file order
    images: torch.Tensor              # uint8 N x 3 x 64 x 64
    attributes: torch.Tensor          # int64 N x 40, 0/1
    partition: np.ndarray | None      # int64 N (0/1/2) when list_eval_partition.txt is present
    listed: int                       # images listed in the attribute file
    missing: int                      # listed but absent from img_align_celeba/
    synthetic: bool                   # the folder carries our SYNTHETIC marker
    notes: list[str] = field(default_factory=list)


# ==========================================================================================
# reading
# ==========================================================================================
def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="strict").splitlines()   # handles CRLF
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a text file", "restore it from the CelebA release") from None


def read_attributes(path: str | Path) -> tuple[list[str], np.ndarray]:
    """(image names, int64 N x 40 values in {-1, 1}) from list_attr_celeba.txt, checked row by
    row: the count on line 1, the 40 names on line 2, then per row exactly a name and 40 values
    -1/1, no name twice. A bad row is named by its line number (two errors that cancel out in a
    flat count could otherwise shift every label between them)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"CelebA attribute file {path} not found", FOLDER_FIX)
    lines = _lines(path)
    fix = f"restore {path.name} from the CelebA release (line 1 count, line 2 the 40 attribute names, then one row per image)"
    if len(lines) < 2 or lines[1].split() != ATTRIBUTE_NAMES:
        got = lines[1].split()[:3] if len(lines) > 1 else []
        raise DataError(f"{path}: line 2 is not the 40 CelebA attribute names (starts {' '.join(got) or 'empty'})", fix)
    try:
        declared = int(lines[0].strip())
    except ValueError:
        raise DataError(f"{path}: line 1 must be the number of rows, got {lines[0].strip()[:60]!r}", fix) from None
    names: list[str] = []
    values = np.empty((max(len(lines) - 2, 0), 40), dtype=np.int64)
    seen: dict[str, int] = {}
    for number, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 41:
            raise DataError(f"{path} line {number}: {len(fields)} fields, expected a name and 40 values "
                            f"(starts {' '.join(fields[:3])!r})", fix)
        name = fields[0]
        if name in seen:
            raise DataError(f"{path} line {number}: image {name} is listed twice (first on line {seen[name]})", fix)
        if any(v not in ("-1", "1") for v in fields[1:]):
            bad = next(v for v in fields[1:] if v not in ("-1", "1"))
            raise DataError(f"{path} line {number} ({name}): value {bad!r} is not -1 or 1", fix)
        seen[name] = number
        values[len(names)] = [1 if v == "1" else -1 for v in fields[1:]]
        names.append(name)
    if declared != len(names):
        raise DataError(f"{path}: line 1 says {declared} rows, the file holds {len(names)}", fix)
    return names, values[:len(names)]


PARTITIONS = (0, 1, 2)   # train, valid, test


def read_partition(path: str | Path) -> dict[str, int]:
    """{image name: partition} from list_eval_partition.txt, checked row by row: exactly
    'name p' with p one of 0, 1, 2, no name twice."""
    path = Path(path)
    fix = f"restore {path.name} from the CelebA release or delete it (a seeded split is then carved)"
    table: dict[str, int] = {}
    lines_of: dict[str, int] = {}
    for number, line in enumerate(_lines(path), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise DataError(f"{path} line {number}: {len(fields)} fields, expected 'name partition'", fix)
        name, value = fields
        if value not in ("0", "1", "2"):
            raise DataError(f"{path} line {number} ({name}): partition {value!r} is not one of 0, 1, 2", fix)
        if name in table:
            raise DataError(f"{path} line {number}: image {name} is listed twice (first on line {lines_of[name]})", fix)
        table[name], lines_of[name] = int(value), number
    return table


def is_synthetic(root: str | Path) -> bool:
    return (Path(root) / SYNTHETIC_MARKER).is_file()


def preprocess(images: list[torch.Tensor]) -> torch.Tensor:
    """Decoded 3 x H x W uint8 images -> uint8 N x 3 x 64 x 64: authors' centre crop 148
    (integer offsets), then antialiased bicubic resize of the whole batch at once."""
    from torchvision.transforms.v2 import functional as F

    crops = []
    for image in images:
        h, w = image.shape[-2:]
        top, left = (h - CROP) // 2, (w - CROP) // 2
        # decode_jpeg returns a CHW view of HWC memory: crop in HWC and let numpy gather the
        # rows (single-threaded memcpy; torch.stack of these strided views was up to 50x slower
        # and erratic on a busy 2-core machine)
        crops.append(image.permute(1, 2, 0).numpy()[top:top + CROP, left:left + CROP])
    batch = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2)   # N x 3 x 148 x 148, channels-last memory
    resized = F.resize(batch, [IMAGE_SIZE, IMAGE_SIZE], interpolation=F.InterpolationMode.BICUBIC, antialias=True)
    return resized.contiguous()


def _torchvision_io():
    """torchvision's JPEG codec, or None where it is gone (deprecated in 0.29 for torchcodec)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            from torchvision.io import ImageReadMode, decode_jpeg, encode_jpeg
        except ImportError:  # pragma: no cover - future torchvision
            return None
    return ImageReadMode, decode_jpeg, encode_jpeg


def _quiet(function, *args, **kwargs):
    """Call a torchvision.io codec without its per-call deprecation warning (the codec is
    still the fastest batched JPEG path here; `_decode_pil` takes over once it is removed)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return function(*args, **kwargs)


def _decode_pil(path: Path) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"{path} is not a readable JPEG ({detail(exc)})", IMAGE_FIX) from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def _decode(paths: list[Path]) -> list[torch.Tensor]:
    codec = _torchvision_io()
    if codec is None:  # pragma: no cover
        images = [_decode_pil(path) for path in paths]
        return _check_sizes(paths, images)
    ImageReadMode, decode_jpeg, _ = codec
    data = []
    for path in paths:
        data.append(torch.frombuffer(bytearray(_read_image(path)), dtype=torch.uint8))
    try:
        images = _quiet(decode_jpeg, data, mode=ImageReadMode.RGB)
    except (RuntimeError, ValueError):
        images = []
        for path, blob in zip(paths, data):   # find the culprit (error path only)
            try:
                images.append(_quiet(decode_jpeg, blob, mode=ImageReadMode.RGB))
            except (RuntimeError, ValueError) as exc:
                raise DataError(f"{path} is not a readable JPEG ({detail(exc)})", IMAGE_FIX) from None
    return _check_sizes(paths, images)


def _read_image(path: Path) -> bytes:
    """An image file's bytes; empty or unreadable (a symlink loop, no permission) -> DataError."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path} cannot be read ({detail(exc)})", IMAGE_FIX) from None
    if not data:
        raise DataError(f"{path} is empty (0 bytes), not a JPEG", IMAGE_FIX)
    return data


def _check_sizes(paths: list[Path], images: list[torch.Tensor]) -> list[torch.Tensor]:
    for path, image in zip(paths, images):
        if min(image.shape[-2:]) < CROP:
            raise DataError(f"{path} is {image.shape[-1]} x {image.shape[-2]}, smaller than the {CROP} x {CROP} crop",
                            "use the aligned 178 x 218 CelebA images (img_align_celeba)")
    return images


def check_folder(root: str | Path) -> None:
    """Cheap checks for parse time (the Snakefile), before any job: the folder exists, holds the
    attribute file and at least one image. `read_folder` does the full reading in `prepare`."""
    root = Path(root)
    where = "data.celeba.root"
    if not root.is_dir():
        raise DataError(f"CelebA folder {root} ({where}) does not exist", FOLDER_FIX)
    if not (root / ATTR_FILE).is_file():
        raise DataError(f"CelebA folder {root} ({where}) has no {ATTR_FILE}", FOLDER_FIX)
    image_dir = root / IMAGE_DIR
    has_image = image_dir.is_dir() and any(entry.name.endswith(".jpg") for entry in os.scandir(image_dir))
    if not has_image:
        raise DataError(f"CelebA folder {root} ({where}) holds no images in {IMAGE_DIR}/",
                        f"put the images under {image_dir}, " + FOLDER_FIX.replace("set ", "or set ", 1))


def read_folder(root: str | Path, max_images: int | None = None) -> CelebAFolder:
    """Load the present images of a CelebA folder (at most `max_images`, file order) with
    their attributes (0/1) and partitions; count the listed images that are missing."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"CelebA folder {root} not found", FOLDER_FIX)
    names, values = read_attributes(root / ATTR_FILE)
    image_dir = root / IMAGE_DIR
    present = {entry.name for entry in os.scandir(image_dir) if entry.is_file()} if image_dir.is_dir() else set()
    keep = np.fromiter((name in present for name in names), dtype=bool, count=len(names))
    available = int(keep.sum())
    missing = len(names) - available
    if available == 0:
        raise DataError(f"no listed CelebA image found in {image_dir} ({len(names)} listed in {ATTR_FILE})",
                        f"put the images under {image_dir}, " + FOLDER_FIX.replace("set ", "or set ", 1))
    index = np.flatnonzero(keep)
    if max_images is not None:
        index = index[:max_images]
    chosen = [names[i] for i in index]
    notes = []
    if missing:
        notes.append(f"{missing} of {len(names)} listed images are missing from the folder ({available} present)")
        log.warning("CelebA folder %s: %d of %d listed images missing; using the %d present", root, missing, len(names), available)
    if max_images is not None and len(index) < available:
        notes.append(f"limited to the first {len(index)} present images (max_images)")

    partition = None
    if (root / PARTITION_FILE).is_file():
        table = read_partition(root / PARTITION_FILE)
        partition = np.array([table.get(name, -1) for name in chosen], dtype=np.int64)
        if (partition < 0).any():
            notes.append(f"{int((partition < 0).sum())} loaded images have no partition entry")

    images = torch.empty((len(chosen), 3, IMAGE_SIZE, IMAGE_SIZE), dtype=torch.uint8)
    for lo in range(0, len(chosen), BATCH):
        paths = [image_dir / name for name in chosen[lo:lo + BATCH]]
        images[lo:lo + len(paths)] = preprocess(_decode(paths))
    attributes = torch.from_numpy((values[index] > 0).astype(np.int64))
    return CelebAFolder(root=root, names=chosen, images=images, attributes=attributes, partition=partition,
                        listed=len(names), missing=missing, synthetic=is_synthetic(root), notes=notes)


def choose_splits(partition: np.ndarray | None, n: int, test_fraction: float, seed: int) -> tuple[dict[str, torch.Tensor], str]:
    """Index tensors for train/test/test_fit/test_eval and a sentence saying how they were made."""
    from mmjsd.data.processed import split_indices, test_halves

    if partition is not None and (partition == 0).sum() >= 1 and (partition == 1).sum() >= 2:
        train = torch.from_numpy(np.flatnonzero(partition == 0))
        test = torch.from_numpy(np.flatnonzero(partition == 1))
        fit, evaluation = test_halves(test, seed)
        unused = int((partition >= 2).sum() + (partition < 0).sum())
        note = (f"official partitions: train = partition 0 ({len(train)}), test = partition 1 'valid' ({len(test)}), "
                f"as the authors evaluated" + (f"; {unused} images of partition 2 (or none) unused" if unused else ""))
        return {"train": train, "test": test, "test_fit": fit, "test_eval": evaluation}, note
    splits = split_indices(n, test_fraction, seed)
    note = (f"carved split: the official valid partition is absent among the loaded images, so a seeded "
            f"(seed {seed}) held-out {test_fraction:g} of them ({len(splits['test'])}) is the test split")
    return splits, note


# ==========================================================================================
# text
# ==========================================================================================
def attribute_string(row: np.ndarray, length: int = TEXT_LENGTH) -> str:
    """The unpadded text of one 0/1 attribute row (appendix B.2)."""
    words = [ATTRIBUTE_WORDS[i] for i in np.flatnonzero(np.asarray(row) > 0)]
    text = ", ".join(words)
    while len(text) > length:
        words = words[:-1]
        text = ", ".join(words)
    return text


def attribute_text_indices(attributes: np.ndarray | torch.Tensor, generator: torch.Generator,
                           length: int = TEXT_LENGTH) -> torch.Tensor:
    """uint8 N x length texts of 0/1 attribute rows; one string per distinct row, one random
    start per image (in row order) from `generator`."""
    attributes = np.asarray(attributes.numpy() if isinstance(attributes, torch.Tensor) else attributes)
    if len(attributes) == 0:
        return torch.zeros((0, length), dtype=torch.uint8)
    unique, codes = np.unique(attributes > 0, axis=0, return_inverse=True)
    table, lengths = textmod.encode_unpadded([attribute_string(row, length) for row in unique], max_length=length)
    codes = codes.reshape(-1)
    starts = textmod.random_pad_starts(lengths[codes], length, generator)
    return textmod.place(table, lengths, codes, starts.numpy(), length)


# ==========================================================================================
# synthetic stand-in
# ==========================================================================================
# P(attribute | sex), measured on the official list_attr_celeba.txt (202,599 rows); P(Male) = 0.417
P_MALE = 0.417
P_GIVEN_MALE = np.array([
    0.266, 0.053, 0.279, 0.348, 0.054, 0.082, 0.156, 0.420, 0.298, 0.021, 0.057, 0.151, 0.244, 0.121,
    0.098, 0.124, 0.150, 0.086, 0.003, 0.308, 1.000, 0.425, 0.100, 0.120, 0.606, 0.220, 0.024, 0.162,
    0.117, 0.003, 0.135, 0.400, 0.242, 0.141, 0.016, 0.081, 0.006, 0.018, 0.174, 0.633])
P_GIVEN_FEMALE = np.array([
    0.000, 0.420, 0.679, 0.102, 0.000, 0.201, 0.301, 0.102, 0.197, 0.239, 0.046, 0.244, 0.069, 0.012,
    0.010, 0.023, 0.000, 0.011, 0.661, 0.560, 0.000, 0.526, 0.000, 0.111, 0.999, 0.330, 0.056, 0.360,
    0.053, 0.111, 0.000, 0.541, 0.184, 0.447, 0.313, 0.025, 0.806, 0.198, 0.000, 0.874])
HAIR_COLOURS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
HAIR_RGB = np.array([[28, 24, 24], [228, 198, 120], [110, 68, 38], [170, 170, 172],
                     [150, 72, 38]], dtype=np.float32)          # last: no labelled colour (auburn)


def sample_attributes(count: int, rng: np.random.Generator) -> np.ndarray:
    """bool count x 40 attributes with CelebA's per-sex frequencies and its exclusions
    (one hair colour at most, no hair colour when bald, beard only for men, ...)."""
    male = rng.random(count) < P_MALE
    p = np.where(male[:, None], P_GIVEN_MALE, P_GIVEN_FEMALE)
    attrs = rng.random((count, 40)) < p
    attrs[:, A["Male"]] = male
    # hair colour: one category (or none) per face, with the per-sex shares
    shares = np.where(male[:, None], P_GIVEN_MALE[[A[h] for h in HAIR_COLOURS]],
                      P_GIVEN_FEMALE[[A[h] for h in HAIR_COLOURS]])
    cumulative = np.cumsum(shares, axis=1)
    colour = (rng.random(count)[:, None] >= cumulative).sum(axis=1)          # 0..3, 4 = none
    bald = attrs[:, A["Bald"]]
    colour[bald] = 4
    for k, name in enumerate(HAIR_COLOURS):
        attrs[:, A[name]] = colour == k
    for name in ("Bangs", "Wavy_Hair", "Straight_Hair", "Receding_Hairline"):
        attrs[bald, A[name]] = False
    attrs[attrs[:, A["Wavy_Hair"]], A["Straight_Hair"]] = False
    # facial hair: men only; no goatee/moustache/sideburns without a beard
    no_beard = attrs[:, A["No_Beard"]] | ~male
    attrs[:, A["No_Beard"]] = no_beard
    beard_share = 1.0 - P_GIVEN_MALE[A["No_Beard"]]
    for name in ("Goatee", "Mustache", "Sideburns"):
        attrs[:, A[name]] = ~no_beard & (rng.random(count) < min(1.0, P_GIVEN_MALE[A[name]] / beard_share))
    attrs[~male, A["5_o_Clock_Shadow"]] = False
    # the mouth is open mostly when smiling (0.76 vs 0.22 in CelebA)
    smiling = attrs[:, A["Smiling"]]
    attrs[:, A["Mouth_Slightly_Open"]] = rng.random(count) < np.where(smiling, 0.76, 0.22)
    return attrs


def render_faces(attrs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 B x 218 x 178 x 3 faces for bool B x 40 attributes; one vectorised pass over
    all pixels of the batch per drawing layer (no per-pixel Python)."""
    attrs = np.asarray(attrs, dtype=bool)
    b = len(attrs)

    def has(name: str) -> np.ndarray:
        return attrs[:, A[name]][:, None, None]

    def param(values) -> np.ndarray:
        return np.asarray(values, dtype=np.float32).reshape(b, 1, 1)

    male = has("Male")
    Y = np.arange(RAW_HEIGHT, dtype=np.float32)[None, :, None] + 0.5
    X = np.arange(RAW_WIDTH, dtype=np.float32)[None, None, :] + 0.5
    cx = param(89 + rng.normal(0, 2.0, b))
    cy = param(124 + rng.normal(0, 2.0, b))
    fa = param(35 + rng.normal(0, 1.2, b) + 3 * attrs[:, A["Male"]] + 4 * attrs[:, A["Chubby"]])   # half width
    fb = param(47 + rng.normal(0, 1.2, b))                                                           # half height
    dx, dy = X - cx, Y - cy

    def paint(mask: np.ndarray, colour: np.ndarray, alpha: float = 1.0) -> None:
        """Set (or blend with weight alpha) the pixels under `mask` (broadcastable to
        B x H x W) to `colour` (B x 3 per image, or 3): work only on the masked pixels."""
        where = np.nonzero(np.broadcast_to(mask, (b, RAW_HEIGHT, RAW_WIDTH)))
        if len(where[0]) == 0:
            return
        col = np.broadcast_to(np.asarray(colour, dtype=np.float32).reshape(-1, 3), (b, 3))[where[0]]
        img[where] = col if alpha == 1.0 else img[where] * (1 - alpha) + col * alpha

    # background: a random muted colour with a vertical light gradient
    bg = rng.uniform(60, 220, (b, 3)).astype(np.float32)
    img = np.broadcast_to(bg[:, None, None, :], (b, RAW_HEIGHT, RAW_WIDTH, 3)) * (1.05 - 0.25 * Y[..., None] / RAW_HEIGHT)
    img = np.ascontiguousarray(img, dtype=np.float32)

    tone = rng.uniform(0, 0.55, (b, 1))
    skin = np.array([238, 200, 172], np.float32) * (1 - tone) + np.array([120, 80, 58], np.float32) * tone
    skin = np.where(attrs[:, [A["Pale_Skin"]]], np.array([250, 228, 214], np.float32), skin).astype(np.float32)
    colour = np.full(b, 4)
    for k, name in enumerate(HAIR_COLOURS):
        colour[attrs[:, A[name]]] = k
    hair = (HAIR_RGB[colour] * rng.uniform(0.9, 1.1, (b, 1))).clip(0, 255).astype(np.float32)
    cloth = rng.uniform(20, 230, (b, 3)).astype(np.float32)
    bald, hat = has("Bald"), has("Wearing_Hat")

    # torso, long hair behind the head (women), neck, ears
    paint(((dx / 80) ** 2 + ((Y - 242) / 62) ** 2) <= 1, cloth)
    wave = np.where(has("Wavy_Hair"), 4 * np.sin(Y / 5.0), 0)
    long_hair = ~male & ~bald & (((np.abs(dx) - wave) / (fa + 17)) ** 2 + ((dy - 12) / (fb + 40)) ** 2 <= 1) & (Y < cy + fb + 38)
    paint(long_hair, hair)
    short_hair = male & ~bald & ((dx / (fa + 5)) ** 2 + ((dy + 8) / (fb + 7)) ** 2 <= 1) & (dy < 0)
    paint(short_hair, hair)
    paint((np.abs(dx) < fa * 0.45) & (dy > 0) & (Y < cy + fb + 32), skin * 0.88)
    paint((((np.abs(dx) - fa) / 5) ** 2 + (dy / 9) ** 2) <= 1, skin * 0.95)
    # face: squarer jaw for men (super-ellipse exponent on the lower half)
    p = np.where(male & (dy > 0), 2.8, 2.0)
    face = (np.abs(dx) / fa) ** p + (np.abs(dy) / fb) ** p <= 1
    paint(face, skin)
    # hair over the forehead (lower hairline with bangs, higher when receding); bald: none
    hairline = cy - fb * np.where(has("Bangs"), 0.2, np.where(has("Receding_Hairline"), 0.62, 0.45))
    paint(~bald & ((dx / (fa + 3)) ** 2 + ((dy + 5) / (fb + 6)) ** 2 <= 1) & (Y < hairline), hair)
    paint(has("Sideburns") & face & (np.abs(dx) > fa - 7) & (np.abs(dy + 5) < 14), hair)
    # hat: crown and brim
    hat_colour = rng.uniform(10, 240, (b, 3)).astype(np.float32)
    paint(hat & (np.abs(dx) < fa + 6) & (Y > cy - fb - 16) & (Y < cy - fb * 0.5), hat_colour)
    paint(hat & (np.abs(dx) < fa + 16) & (np.abs(Y - (cy - fb * 0.5)) < 3), hat_colour * 0.8)

    # eyes, brows, make-up
    ey = cy - 6
    for side in (-1.0, 1.0):
        ex = cx + side * 15
        ddx, ddy = X - ex, Y - ey
        paint(has("Heavy_Makeup") & ((ddx / 9) ** 2 + ((ddy + 3) / 6) ** 2 <= 1), np.array([120, 70, 110], np.float32), 0.6)
        eye_h = np.where(has("Narrow_Eyes"), 1.8, 3.3)
        paint((ddx / 7) ** 2 + (ddy / eye_h) ** 2 <= 1, np.array([245, 245, 245], np.float32))
        paint(ddx ** 2 + ddy ** 2 <= np.minimum(2.7, eye_h) ** 2, np.array([40, 30, 25], np.float32))
        brow_t = np.where(has("Bushy_Eyebrows"), 2.4, 1.2)
        paint((np.abs(ddx) < 8) & (np.abs(ddy + 9 + 0.04 * ddx ** 2) < brow_t), hair * 0.7)
        paint(has("Rosy_Cheeks") & ((ddx ** 2 + (ddy - 17) ** 2) <= 36), np.array([230, 90, 100], np.float32), 0.45)
        ring = np.sqrt((ddx / 11) ** 2 + (ddy / 8.5) ** 2)
        glasses = has("Eyeglasses")
        paint(glasses & (ring <= 0.86), np.array([200, 220, 235], np.float32), 0.25)
        paint(glasses & (ring > 0.86) & (ring <= 1.1), np.array([25, 25, 30], np.float32))
        paint(glasses & (np.abs(ddy + 1) < 1.2) & (side * ddx > 10.5) & (np.abs(dx) < fa), np.array([25, 25, 30], np.float32))
        paint(has("Wearing_Earrings") & (((X - (cx + side * (fa + 1))) ** 2 + (Y - (cy + 14)) ** 2) <= 7), np.array([240, 200, 60], np.float32))
    paint(has("Eyeglasses") & (np.abs(Y - ey) < 1.2) & (np.abs(dx) < 4.5), np.array([25, 25, 30], np.float32))

    # nose
    paint((np.abs(dx) < 1.3) & (dy > -2) & (dy < 12), skin * 0.8)
    paint((np.abs(dx) < 5) & (np.abs(dy - 12) < 1.3), skin * 0.75)

    # facial hair under the mouth layer
    my = cy + 26
    beard = ~has("No_Beard") & face & (dy > 12)
    paint(beard & ~has("Goatee"), hair * 0.9, 0.85)
    paint(has("Goatee") & face & (np.abs(dx) < 11) & (Y > my + 2), hair * 0.9)
    paint(has("5_o_Clock_Shadow") & face & (dy > 14) & (rng.random((b, RAW_HEIGHT, RAW_WIDTH)) < 0.35), hair * 0.6, 0.5)
    paint(has("Mustache") & (np.abs(dx) < 14) & (Y > my - 7) & (Y < my - 2.5), hair * 0.8)

    # mouth: a smile bends the corners up; an open mouth shows a dark gap (teeth if smiling)
    half_w = np.where(has("Smiling"), 14.0, 11.5)
    bend = np.where(has("Smiling"), 6.0, 0.0)
    curve = my + bend * (0.5 - (dx / half_w) ** 2)          # smiling: centre 3 px down, corners 3 px up
    inside = np.abs(dx) < half_w
    open_gap = has("Mouth_Slightly_Open") & inside & (Y > curve) & (Y < curve + 5.5 * (1 - (dx / half_w) ** 2))
    paint(open_gap, np.array([70, 20, 25], np.float32))
    paint(open_gap & has("Smiling") & (Y < curve + 2.2), np.array([240, 240, 235], np.float32))
    lips = np.where(has("Wearing_Lipstick"), 1.0, 0.0)
    lip_colour = (np.array([195, 35, 60], np.float32) * lips[:, 0, 0, None] + skin * 0.62 * (1 - lips[:, 0, 0, None]))
    lip_t = np.where(has("Big_Lips"), 2.6, 1.6)
    paint(inside & (np.abs(Y - curve) < lip_t), lip_colour)

    # jewellery and tie
    paint(has("Wearing_Necklace") & (np.abs(Y - (cy + fb + 24 + 0.015 * dx ** 2)) < 1.5) & (np.abs(dx) < 26), np.array([235, 205, 80], np.float32))
    paint(has("Wearing_Necktie") & (np.abs(dx) < 4 + (Y - cy - fb - 30) * 0.12) & (Y > cy + fb + 30), np.array([150, 20, 30], np.float32))

    out = torch.from_numpy(img).permute(0, 3, 1, 2)
    blurry = torch.from_numpy(attrs[:, A["Blurry"]])
    if blurry.any():
        soft = torch.nn.functional.avg_pool2d(out[blurry], 5, stride=1, padding=2, count_include_pad=False)
        out[blurry] = soft
    out = out.permute(0, 2, 3, 1).numpy() + rng.normal(0, 3.0, (b, RAW_HEIGHT, RAW_WIDTH, 3)).astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _attribute_file(names: list[str], attrs: np.ndarray) -> str:
    """list_attr_celeba.txt in the official format (CRLF, '%2d' values, trailing space on line 2)."""
    signs = np.where(attrs, " 1", "-1")
    rows = [name + " " + " ".join(row) for name, row in zip(names, signs.tolist())]
    return "\r\n".join([str(len(names)), " ".join(ATTRIBUTE_NAMES) + " ", *rows]) + "\r\n"


def _encode_jpegs(faces: np.ndarray, quality: int = 92) -> list[bytes]:
    """B x H x W x 3 uint8 -> JPEG bytes (torchvision's batched encoder, else PIL)."""
    codec = _torchvision_io()
    if codec is None:  # pragma: no cover
        import io

        from PIL import Image

        blobs = []
        for face in faces:
            buffer = io.BytesIO()
            Image.fromarray(face).save(buffer, format="JPEG", quality=quality)
            blobs.append(buffer.getvalue())
        return blobs
    chw = torch.from_numpy(faces).permute(0, 3, 1, 2).contiguous()
    return [data.numpy().tobytes() for data in _quiet(codec[2], list(chw), quality=quality)]


def synthesize_folder(out: str | Path, count: int, seed: int, batch: int = 64) -> Path:
    """Write `count` synthetic faces in CelebA's on-disk layout to `out`, atomically.

    Files: img_align_celeba/000001.jpg.. (178 x 218 JPEG), list_attr_celeba.txt,
    list_eval_partition.txt (the first 90% partition 0 = train, the last 10% partition 1 =
    valid, ordered like the official file; no partition 2), README.md and the SYNTHETIC
    marker. Everything is written to a temporary folder next to `out` and renamed into place
    at the end.
    """
    out = Path(out)
    if count < 1:
        raise DataError(f"synthetic_count must be positive, got {count}", "set data.celeba.synthetic_count >= 8")
    out.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    attrs = sample_attributes(count, rng)
    names = [f"{i:06d}.jpg" for i in range(1, count + 1)]
    # train first, then 'valid' (the split the authors evaluate on); no test partition (2),
    # which the pipeline never uses, so no synthetic face is wasted
    n_valid = max(2, round(count * 0.1))
    partition = np.r_[np.zeros(count - n_valid, int), np.ones(n_valid, int)]
    from mmjsd.files import sweep_temporaries, temp_prefix

    sweep_temporaries(out.parent)      # what a killed earlier call left behind
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(out.name), suffix=".tmp", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)          # mkdtemp makes 0700; the result is an ordinary folder
    try:
        (tmp / IMAGE_DIR).mkdir()
        for lo in range(0, count, batch):
            faces = render_faces(attrs[lo:lo + batch], rng)
            for name, data in zip(names[lo:lo + batch], _encode_jpegs(faces)):
                (tmp / IMAGE_DIR / name).write_bytes(data)
        (tmp / ATTR_FILE).write_bytes(_attribute_file(names, attrs).encode("ascii"))
        (tmp / PARTITION_FILE).write_bytes("".join(f"{n} {p}\r\n" for n, p in zip(names, partition)).encode("ascii"))
        (tmp / SYNTHETIC_MARKER).write_text(f"mmjsd synthetic CelebA stand-in: count={count} seed={seed}\n")
        (tmp / "README.md").write_text(
            "# Synthetic CelebA stand-in (NOT real data)\n\n"
            f"{count} procedural faces written by `mmjsd celeba-synthesize` (seed {seed}) in the layout of\n"
            "torchvision's CelebA folder. Attributes are sampled with CelebA's per-sex frequencies; the\n"
            "drawing shows sex, smile, open mouth, glasses, hair colour, baldness, hat, make-up and more.\n"
            "Every result computed from this folder is labelled 'synthetic' and says nothing about the paper.\n")
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=temp_prefix(out.name), suffix=".old", dir=out.parent))
            os.replace(out, old / "previous")
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


# ==========================================================================================
# torchvision download and command line
# ==========================================================================================
def download_torchvision(root: str | Path) -> Path:
    """torchvision.datasets.CelebA(root, split="all", target_type="attr", download=True);
    returns root/celeba. Any failure (offline, Google Drive quota, gdown missing) becomes a
    DataError pointing at the offline alternatives."""
    root = Path(root)
    try:
        import torchvision.datasets

        torchvision.datasets.CelebA(str(root), split="all", target_type="attr", download=True)
    except Exception as exc:   # noqa: BLE001 - a third-party download can fail in many ways
        raise DataError(
            f"torchvision could not download CelebA into {root} ({detail(exc)})",
            f"CelebA's Google Drive download needs network access (and gdown, pinned in requirements.txt); "
            f"with a copy downloaded elsewhere, put its {IMAGE_DIR}/, {ATTR_FILE} and {PARTITION_FILE} into "
            f"{root / 'celeba'} (the folder this step makes), or set data.celeba.source: folder with "
            f"data.celeba.root: <your copy>; offline: data.celeba.source: synthetic",
        ) from None
    return root / "celeba"


def cli_download(args: argparse.Namespace, config: dict) -> int:
    folder = download_torchvision(args.root)
    print(f"celeba-download: CelebA downloaded by torchvision into {folder}")
    return 0


def cli_synthesize(args: argparse.Namespace, config: dict) -> int:
    settings = config["data"]["celeba"]
    folder = synthesize_folder(args.out, settings["synthetic_count"], settings["seed"])
    print(f"celeba-synthesize: {folder}: {settings['synthetic_count']} synthetic faces (seed {settings['seed']}), "
          f"labelled 'synthetic' (a stand-in, not CelebA)")
    return 0
