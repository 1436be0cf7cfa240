"""CelebA: reading a folder in torchvision's layout, and the attribute text of its images.

Loading only: the torchvision download is in mmjsd.data.download, the synthetic stand-in faces
in mmjsd.data.celeba_faces, and the train/test choice in mmjsd.data.prepare.

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

Text (paper appendix B.2, the authors' preprocessing script): the names of the attributes
with value 1, in file column order, lower-cased with '_' -> ' ', joined by ", "; attributes
are dropped from the end while the text is longer than 256 characters; the result is placed
at a random start (one draw per image, seeded, so an image's text never changes) inside 256
'*'. Labels: the 40 attributes as 0/1 int64.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

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
    # imported here: torchvision is slow to import, and the Snakefile imports this module at
    # parse time (check_folder) where no image is decoded
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


def torchvision_io():
    """torchvision's JPEG codec, or None where it is gone (deprecated in 0.29 for torchcodec).
    Imported here, not at the top: the import itself warns, and may fail on a future torchvision."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            from torchvision.io import ImageReadMode, decode_jpeg, encode_jpeg
        except ImportError:  # pragma: no cover - future torchvision
            return None
    return ImageReadMode, decode_jpeg, encode_jpeg


def quiet(function, *args, **kwargs):
    """Call a torchvision.io codec without its per-call deprecation warning (the codec is
    still the fastest batched JPEG path here; `_decode_pil` takes over once it is removed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return function(*args, **kwargs)


def _decode_pil(path: Path) -> torch.Tensor:
    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"{path} is not a readable JPEG ({detail(exc)})", IMAGE_FIX) from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def _decode(paths: list[Path]) -> list[torch.Tensor]:
    codec = torchvision_io()
    if codec is None:  # pragma: no cover
        images = [_decode_pil(path) for path in paths]
        return _check_sizes(paths, images)
    ImageReadMode, decode_jpeg, _ = codec
    data = []
    for path in paths:
        data.append(torch.frombuffer(bytearray(_read_image(path)), dtype=torch.uint8))
    try:
        images = quiet(decode_jpeg, data, mode=ImageReadMode.RGB)
    except (RuntimeError, ValueError):
        images = []
        for path, blob in zip(paths, data):   # find the culprit (error path only)
            try:
                images.append(quiet(decode_jpeg, blob, mode=ImageReadMode.RGB))
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


def validate_folder(root: str | Path, max_images: int | None = None) -> None:
    """Everything `read_folder` would refuse, found without keeping the images: the attribute and
    partition files parsed row by row, every image that would be used decoded. The Snakefile runs
    it before a changed folder reruns `prepare` (Snakemake deletes a job's outputs first)."""
    read_folder(root, max_images, keep_images=False)


def read_folder(root: str | Path, max_images: int | None = None, keep_images: bool = True) -> CelebAFolder:
    """Load the present images of a CelebA folder (at most `max_images`, file order) with
    their attributes (0/1) and partitions; count the listed images that are missing.
    `keep_images=False` decodes and checks every image but keeps none (`images` is empty)."""
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

    images = torch.empty((len(chosen) if keep_images else 0, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=torch.uint8)
    for lo in range(0, len(chosen), BATCH):
        paths = [image_dir / name for name in chosen[lo:lo + BATCH]]
        decoded = preprocess(_decode(paths))
        if keep_images:
            images[lo:lo + len(paths)] = decoded
    attributes = torch.from_numpy((values[index] > 0).astype(np.int64))
    return CelebAFolder(root=root, names=chosen, images=images, attributes=attributes, partition=partition,
                        listed=len(names), missing=missing, synthetic=is_synthetic(root), notes=notes)


# ==========================================================================================
# text (paper appendix B.2)
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
