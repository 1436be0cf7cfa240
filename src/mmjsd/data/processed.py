"""The processed-data contract shared by training, classifiers and evaluation.

`data/processed/<dataset>/<split>.pt` (mmjsd.core.paths.PROCESSED), one torch file per split in
`SPLITS = (train, test, test_fit, test_eval, val, val_fit, val_eval)`; test_fit and test_eval
are the two seeded halves of test (paper 4.1: latent classifiers are fitted on one half and
scored on the other). `val` is a seeded share of the training rows (disjoint from train and
test) with its halves val_fit / val_eval: every choice of settings is made on it, and the test
split is read once, by the pipeline's final evaluation (mmjsd.lab.holdout).

Each file holds a dict:

| key          | type                                   | meaning |
|--------------|----------------------------------------|---------|
| images       | uint8 N x C x 64 x 64                  | C = 1 (dSprites) or 3 (CelebA). Full 0..255 range for both datasets: dSprites pixels are 0 or 255. Every consumer uses `model_input` (`images.float() / 255`). |
| text         | uint8 N x L                            | indices into `alphabet`, '*'-padded at a random start fixed per sample (L = 64 dSprites, 256 CelebA) |
| alphabet     | str                                    | mmjsd.data.text.ALPHABET (71 symbols) |
| labels       | int64 N x F                            | class index per factor/attribute |
| label_names  | list of F str                          | dSprites: shape, scale, orientation, posX, posY; CelebA: the 40 attribute names |
| source       | str                                    | one of SOURCES (what the images really are) |
| seed         | int                                    | the data seed (subset, text starts, splits) |
| dataset      | str                                    | "dsprites" or "celeba" |
| notes        | str                                    | stand-in label, missing-image count, how the split was made |
| fingerprint  | str (JSON), optional                   | what made it: raw input sha256, the config keys `prepare` reads, the data code's digest (mmjsd.artifacts.fingerprints; consumers refuse a mismatch) |
| checksum     | str, optional                          | files.content_checksum of every other entry, written by `save_split(s)` and checked on every load: damage that keeps the file's size and format (a changed label byte) is caught |

Rows keep the order of the raw data within each split (dSprites grid order, CelebA file order).

Every pipeline step loads a split with `load_checked_split` (missing or stale -> one line naming
the command that rebuilds it), feeds it to the networks through `model_input` (images / 255,
text as int64), and draws row subsets with `sorted_subset` (seeded, kept in split order).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from mmjsd.artifacts import fingerprints
from mmjsd.artifacts.steps import code_digest, step_settings
from mmjsd.core import paths
from mmjsd.core.files import atomic_path, check_checksum, content_checksum, torch_load, torch_save
from mmjsd.core.vocabulary import DATASETS, SOURCES
from mmjsd.data.manifest import manifest_sha256
from mmjsd.errors import DataError
from mmjsd.lab import holdout

KEYS = ("images", "text", "alphabet", "labels", "label_names", "source", "seed", "dataset", "notes")
# Optional in the contract (hand-made splits in tests lack them); the pipeline's consumers require them.
OPTIONAL_KEYS = ("fingerprint", "checksum")
PREPARE_FIX = "run `snakemake` (or `mmjsd prepare --dataset DATASET --input RAW --out-dir data/processed/DATASET`) to build it"


def generator(seed: int, purpose: str) -> torch.Generator:
    """A torch.Generator for one purpose ("subset", "text", "split", ...) of one data seed.

    Each purpose gets its own stream (seed and purpose hashed together), so changing, say,
    the subset size never shifts the text padding or the split of the rows that remain.
    """
    digest = hashlib.sha256(f"mmjsd:{seed}:{purpose}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def split_indices(n: int, test_fraction: float, seed: int, val_fraction: float) -> dict[str, torch.Tensor]:
    """Seeded train/test split of range(n), the validation share of the training rows, and the
    two halves of test and of val.

    Returns {"train", "test", "test_fit", "test_eval", "val", "val_fit", "val_eval"} -> sorted
    int64 index tensors. round(n * test_fraction) rows (at least 2, so both halves are
    non-empty) go to test; then `validation_share` carves val out of the rest. The test rows do
    not depend on val_fraction (the val draw has a generator of its own).
    """
    if n < 5:
        raise DataError(f"only {n} samples: too few to split into train, test and validation halves",
                        "provide more images (raise data.*.subset / max_images / synthetic_count)")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    n_test = min(max(2, round(n * test_fraction)), n - 3)
    order = torch.randperm(n, generator=generator(seed, "split"))
    test = order[:n_test].sort().values
    train, val = validation_share(order[n_test:].sort().values, val_fraction, seed)
    fit, evaluation = test_halves(test, seed)
    val_fit, val_eval = test_halves(val, seed)
    return {"train": train, "test": test, "test_fit": fit, "test_eval": evaluation,
            "val": val, "val_fit": val_fit, "val_eval": val_eval}


def validation_share(train: torch.Tensor, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train without val, val): a seeded share `val_fraction` of the training rows `train` (at
    least 2 rows, so both halves are non-empty; at least 1 row stays for training), each sorted."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    train = torch.as_tensor(train, dtype=torch.int64)
    if train.numel() < 3:
        raise DataError(f"only {train.numel()} training samples: too few to carve a validation split from",
                        "provide more images (raise data.*.subset / max_images / synthetic_count)")
    n_val = min(max(2, round(train.numel() * val_fraction)), train.numel() - 1)
    order = torch.randperm(train.numel(), generator=generator(seed, "validation"))
    return train[order[n_val:]].sort().values, train[order[:n_val]].sort().values


def test_halves(test: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded halves (fit gets the extra one when odd) of a set of held-out indices, each sorted."""
    test = torch.as_tensor(test, dtype=torch.int64)
    order = torch.randperm(test.numel(), generator=generator(seed, "test-halves"))
    n_fit = (test.numel() + 1) // 2
    return test[order[:n_fit]].sort().values, test[order[n_fit:]].sort().values


def validate_split(split: dict[str, Any], where: str = "split") -> None:
    """Raise DataError unless `split` follows the contract above."""
    if not isinstance(split, dict):
        raise DataError(f"{where} does not hold a dict (got {type(split).__name__})", PREPARE_FIX)
    missing = [k for k in KEYS if k not in split]
    if missing:
        raise DataError(f"{where} lacks the key(s) {', '.join(missing)}", "rebuild it: " + PREPARE_FIX)

    def check(ok: bool, problem: str) -> None:
        if not ok:
            raise DataError(f"{where}: {problem}", "rebuild it: " + PREPARE_FIX)

    images, text, labels = split["images"], split["text"], split["labels"]
    check(isinstance(images, torch.Tensor) and images.dtype == torch.uint8 and images.ndim == 4
          and images.shape[1] in (1, 3) and tuple(images.shape[2:]) == (64, 64),
          f"images must be uint8 N x C x 64 x 64 (C 1 or 3), got {_describe(images)}")
    n = images.shape[0]
    check(isinstance(text, torch.Tensor) and text.dtype == torch.uint8 and text.ndim == 2 and text.shape[0] == n,
          f"text must be uint8 {n} x L, got {_describe(text)}")
    check(isinstance(split["alphabet"], str) and len(split["alphabet"]) > 0, "alphabet must be a non-empty str")
    check(text.numel() == 0 or int(text.max()) < len(split["alphabet"]), "text holds indices outside the alphabet")
    check(isinstance(labels, torch.Tensor) and labels.dtype == torch.int64 and labels.ndim == 2 and labels.shape[0] == n,
          f"labels must be int64 {n} x F, got {_describe(labels)}")
    names = split["label_names"]
    check(isinstance(names, list) and all(isinstance(s, str) for s in names) and len(names) == labels.shape[1],
          f"label_names must be a list of {labels.shape[1]} str")
    check(split["source"] in SOURCES, f"source {split['source']!r} is not one of {', '.join(SOURCES)}")
    check(isinstance(split["seed"], int), "seed must be an int")
    check(split["dataset"] in DATASETS, f"dataset {split['dataset']!r} is not one of {', '.join(DATASETS)}")
    check(isinstance(split["notes"], str), "notes must be a str")
    check(isinstance(split.get("fingerprint", ""), str), "fingerprint must be a str (JSON)")


def _describe(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return f"{x.dtype} {tuple(x.shape)}"
    return type(x).__name__


def canonical(split: dict[str, Any]) -> dict[str, Any]:
    """The dict in key order with contiguous, storage-owning tensors, and the checksum of its content.

    torch.save writes a view's whole underlying storage, so a slice would carry its parent
    along and make the file depend on how it was produced; cloning makes equal content give
    byte-identical files.
    """
    out = {}
    for key in (*KEYS, *(k for k in OPTIONAL_KEYS if k in split and k != "checksum")):
        value = split[key]
        out[key] = value if not isinstance(value, torch.Tensor) or _owns_storage(value) else value.contiguous().clone()
    out["checksum"] = content_checksum(out)
    return out


def _owns_storage(t: torch.Tensor) -> bool:
    """Contiguous and exactly covering its storage (then no copy is needed; saves gigabytes
    for the full dSprites grid)."""
    return (t.is_contiguous() and t.storage_offset() == 0
            and t.untyped_storage().nbytes() == t.numel() * t.element_size())


def save_split(path: str | os.PathLike, split: dict[str, Any]) -> None:
    """Validate and write one split atomically (temporary file, then rename)."""
    validate_split(split, str(path))
    torch_save(path, canonical(split))


def save_splits(out_dir: str | os.PathLike, splits: dict[str, dict[str, Any]]) -> list[Path]:
    """Write every split of one dataset, all or nothing.

    All files are first written to temporary names in `out_dir`; only when every one of them
    is complete are they renamed into place. Any failure removes the temporary files and
    leaves the previous outputs (if any) untouched.
    """
    out_dir = Path(out_dir)
    for name, split in splits.items():
        validate_split(split, f"{out_dir / (name + '.pt')}")
    written = [out_dir / f"{name}.pt" for name in splits]
    with contextlib.ExitStack() as stack:
        for path, split in zip(written, splits.values()):
            tmp = stack.enter_context(atomic_path(path))
            # through a file object: torch.save(obj, PATH) names the zip's inner folder after
            # the (random) temporary file name, so the bytes would differ from run to run
            with open(tmp, "wb") as fh:
                torch.save(canonical(split), fh)
                fh.flush()
                os.fsync(fh.fileno())
    return written


def load_split(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate one split file.

    Missing file -> DataError whose fix names `snakemake` / `mmjsd prepare`; unreadable file or
    wrong keys/dtypes/shapes -> DataError; a test split in a selection process (mmjsd.lab.holdout)
    -> DataError before the file is opened.
    """
    holdout.check_readable(Path(path).stem, path)
    fix = "delete it and rebuild: " + PREPARE_FIX
    split = torch_load(path, "processed data", fix, missing_fix=PREPARE_FIX)
    validate_split(split, str(path))
    check_checksum(split, "processed split", path, fix)
    return split


def load_checked_split(config: dict, dataset: str, split: str, config_file: str | os.PathLike = "config.yaml") -> dict:
    """The one way a pipeline step loads a processed split: missing -> a one-line error naming the
    command that makes it; a split that this config's `prepare` did not make from the raw data on
    disk is refused (mmjsd.artifacts.fingerprints)."""
    path = paths.processed(config, dataset, split)
    if not path.is_file():
        raise DataError(
            f"processed split {path} not found",
            f"build it: `mmjsd prepare --scale {config['scale']} --dataset {dataset} ...` (or `snakemake {path}`)",
        )
    holdout.check_readable(path.stem, path)
    try:
        loaded = load_split(path)
    except DataError as exc:     # damaged or unreadable: the fix names this scale's rebuild of exactly this file
        raise DataError(exc.problem, f"rebuild it and what depends on it: "
                                     f"`{fingerprints.rebuild_command(config, path, config_file)}`") from None
    if "checksum" not in loaded:
        raise DataError(f"processed split {path} holds no checksum (written before checksums were kept), so damage "
                        "inside it cannot be noticed", f"rebuild it: `{fingerprints.rebuild_command(config, path, config_file)}`")
    check_split(loaded, path, config, dataset, config_file)
    return loaded


# --------------------------------------------------------------------------------------------
# What made a split (mmjsd.artifacts.fingerprints): its raw input, the config keys `prepare` reads, its code
# --------------------------------------------------------------------------------------------

def raw_input(config: dict, dataset: str) -> Path:
    """The raw file or folder `prepare` reads for `dataset` under this config."""
    return paths.dsprites_input(config) if dataset == "dsprites" else paths.celeba_input(config)


def raw_sha256(path: str | os.PathLike) -> str:
    """sha256 of a raw file's bytes, or of a CelebA folder's manifest (data/manifest.py)."""
    path = Path(path)
    return "manifest:" + manifest_sha256(path) if path.is_dir() else fingerprints.content_sha256(path)



def split_fingerprint(settings: dict, input_sha256: str) -> str:
    """What `prepare` records in every split: `settings` is steps.step_settings(config, "prepare", dataset)."""
    return fingerprints.canonical({"format": fingerprints.FORMAT, "made_by": "prepare", "input_sha256": input_sha256,
                      "settings": settings, "code": code_digest("prepare")})


def expected_split(config: dict, dataset: str) -> dict:
    expected: dict[str, Any] = {"format": fingerprints.FORMAT, "settings": step_settings(config, "prepare", dataset),
                                "code": code_digest("prepare")}
    raw = raw_input(config, dataset)
    if raw.exists():
        expected["input_sha256"] = raw_sha256(raw)
    return expected


def check_split(split: dict, path: str | os.PathLike, config: dict, dataset: str,
                config_file: str | os.PathLike = "config.yaml") -> None:
    """DataError unless `split` was made by this config's `prepare` from the raw input on disk."""
    fingerprints.refuse_stale("processed split", Path(path), split.get("fingerprint"), expected_split(config, dataset), "prepare",
            config, config_file)


# --------------------------------------------------------------------------------------------
# Using a split: the models' input convention and seeded row subsets
# --------------------------------------------------------------------------------------------

def model_input(modality: str, raw: torch.Tensor) -> torch.Tensor:
    """Stored split tensors (uint8) -> the models' input convention: images float in [0, 1]
    (`images / 255`), text int64 alphabet indices."""
    if modality == "img":
        return raw.float() / 255.0
    return raw.long()


def sorted_subset(n: int, cap: int | None, generator: torch.Generator) -> torch.Tensor:
    """Row indices 0..n-1 (cap None or >= n; the generator is then not drawn from), or a draw of
    `cap` of them from `generator`, kept in ascending (split) order: a split may be stored in
    factor-grid order, so its first rows are not a sample of it."""
    if cap is None or cap >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=generator)[:cap].sort().values
