"""`mmjsd prepare`: raw data -> the four processed split files of one dataset.

dSprites: the official or rendered npz (`dsprites.load_npz`); a full official grid is cut to
`data.dsprites.subset` rows here with the same seeded draw the renderer uses. CelebA: a folder
in torchvision's layout (`celeba.read_folder`, at most `data.celeba.max_images` images).
Both get their text (seeded random padding), labels and splits, and all seven files (train,
test, test_fit, test_eval, val, val_fit, val_eval) are written together or not at all. The
validation split is a seeded share `data.<dataset>.val_fraction` of the training rows: settings
are chosen on it, so the test split is read once, by the final evaluation.

Determinism: every random choice comes from `processed.generator(seed, purpose)`, tensors are
saved contiguous and storage-owning, and torch.save goes through a file object, so the same
input and seed give byte-identical .pt files.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmjsd.artifacts.steps import step_settings
from mmjsd.core.paths import SPLITS, celeba_source
from mmjsd.core.vocabulary import SOURCE_DESCRIPTIONS
from mmjsd.data import celeba, dsprites, processed
from mmjsd.data.text import ALPHABET
from mmjsd.errors import DataError



def _split_dicts(dataset: str, images: torch.Tensor, text: torch.Tensor, labels: torch.Tensor,
                 label_names: list[str], source: str, seed: int, notes: str,
                 indices: dict[str, torch.Tensor]) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "images": images[idx], "text": text[idx], "alphabet": ALPHABET, "labels": labels[idx],
            "label_names": list(label_names), "source": source, "seed": int(seed), "dataset": dataset,
            "notes": notes,
        }
        for name, idx in ((name, indices[name]) for name in SPLITS)
    }


def prepare_dsprites(input_path: Path, settings: dict) -> tuple[dict[str, dict[str, Any]], list[str], str]:
    if settings["source"] == "official":
        dsprites.verify_official(input_path)
    arrays = dsprites.load_npz(input_path)
    source, seed = arrays["source"], int(settings["seed"])
    if source not in ("official", "render"):
        raise DataError(f"{input_path} has source {source!r}, expected 'official' or 'render'",
                        "re-create it with `mmjsd dsprites-download` or `mmjsd dsprites-render`")
    imgs, classes = arrays["imgs"], arrays["latents_classes"]
    notes = [SOURCE_DESCRIPTIONS[source]]
    subset = settings.get("subset")
    if len(imgs) == dsprites.N_ROWS and subset is not None and subset < len(imgs):
        # a full grid on disk: draw the configured subset here, the same rows render() draws
        rows = dsprites.subset_rows(subset, seed, total=len(imgs))
        imgs, classes = imgs[rows], classes[rows]
        notes.append(f"seeded subset of {subset} grid rows drawn here (seed {seed})")
    elif len(imgs) < dsprites.N_ROWS:
        notes.append(f"{len(imgs)} grid rows as stored in the input (a subset)")
    down = dsprites.posy_points_down(imgs, classes)
    posy_words = dsprites.POSY_WORDS if down in (True, None) else dsprites.POSY_WORDS_UPWARD
    notes.append(f"posY words {'/'.join(posy_words)} for posY thirds 0/1/2 "
                 f"({'measured' if down is not None else 'assumed'}: posY increasing moves the sprite "
                 f"{'down' if down in (True, None) else 'up'} the image)")
    text = dsprites.factor_text_indices(classes, processed.generator(seed, "text"), dsprites.TEXT_LENGTH, posy_words)
    labels = torch.from_numpy(dsprites.factor_labels(classes))
    # {0,1} -> {0,255} in place (the contract: every dataset spans 0..255)
    images = np.minimum(imgs, 1, out=imgs if imgs.flags.writeable else None)
    images *= 255
    images = torch.from_numpy(images)[:, None]
    indices = processed.split_indices(len(images), float(settings["test_fraction"]), seed, float(settings["val_fraction"]))
    notes.append(f"seeded (seed {seed}) held-out {settings['test_fraction']:g} test split, halves test_fit/test_eval; "
                 f"validation: a seeded {settings['val_fraction']:g} of the training rows, halves val_fit/val_eval")
    note = "; ".join(notes)
    return _split_dicts("dsprites", images, text, labels, dsprites.LABEL_NAMES, source, seed, note, indices), notes, source


def _celeba_source(folder: celeba.CelebAFolder, configured: str | None) -> str:
    if folder.synthetic:
        return "synthetic"
    if configured == "torchvision":
        return "torchvision"
    return "shared-subset" if folder.missing else "folder"


def celeba_splits(partition: np.ndarray | None, n: int, test_fraction: float, seed: int,
                  val_fraction: float) -> tuple[dict[str, torch.Tensor], str]:
    """Index tensors for train/test/val and their halves, and a sentence saying how they were made.

    The authors trained on partition 0 and evaluated on partition 1 ("valid"); we test on
    partition 1 too when both occur among the loaded images (partition 2 is then left unused).
    Otherwise (e.g. the shared subset, all of which is partition 0) a seeded held-out share
    `test_fraction` of the loaded images is carved out, and the note says so. Either way the
    validation split is a seeded share `val_fraction` of the training rows (a deviation for the
    official partitions: the authors trained on all of partition 0)."""

    if partition is not None and (partition == 0).sum() >= 3 and (partition == 1).sum() >= 2:
        train, val = processed.validation_share(torch.from_numpy(np.flatnonzero(partition == 0)), val_fraction, seed)
        test = torch.from_numpy(np.flatnonzero(partition == 1))
        fit, evaluation = processed.test_halves(test, seed)
        val_fit, val_eval = processed.test_halves(val, seed)
        unused = int((partition >= 2).sum() + (partition < 0).sum())
        note = (f"official partitions: train = partition 0 less the validation share ({len(train)}), validation = a "
                f"seeded {val_fraction:g} of partition 0 ({len(val)}), test = partition 1 'valid' ({len(test)}), "
                f"where the authors evaluated" + (f"; {unused} images of partition 2 (or none) unused" if unused else ""))
        return {"train": train, "test": test, "test_fit": fit, "test_eval": evaluation,
                "val": val, "val_fit": val_fit, "val_eval": val_eval}, note
    splits = processed.split_indices(n, test_fraction, seed, val_fraction)
    n_test, n_val = len(splits["test"]), len(splits["val"])
    note = (f"carved split: the official valid partition is absent among the loaded images, so a seeded "
            f"(seed {seed}) held-out {n_test} of the {n} images is the test split (test_fraction {test_fraction:g}, "
            f"rounded, at least 2); validation: a seeded {n_val} of the {n - n_test} training rows "
            f"(val_fraction {val_fraction:g}, rounded, at least 2)")
    return splits, note


def prepare_celeba(input_path: Path, settings: dict) -> tuple[dict[str, dict[str, Any]], list[str], str]:
    seed = int(settings["seed"])
    folder = celeba.read_folder(input_path, settings.get("max_images"))
    source = _celeba_source(folder, settings.get("source"))
    notes = [SOURCE_DESCRIPTIONS[source]]
    if settings.get("source") == "synthetic" and source != "synthetic":
        notes.append(f"configured source 'synthetic' but {input_path} is not a synthetic folder; labelled by what it holds")
    notes += folder.notes
    text = celeba.attribute_text_indices(folder.attributes, processed.generator(seed, "text"), celeba.TEXT_LENGTH)
    indices, split_note = celeba_splits(folder.partition, len(folder.names), float(settings["test_fraction"]), seed,
                                        float(settings["val_fraction"]))
    notes.append(split_note)
    note = "; ".join(notes)
    return (_split_dicts("celeba", folder.images, text, folder.attributes, celeba.ATTRIBUTE_NAMES, source, seed, note, indices),
            notes, source)


def prepare(dataset: str, input_path: str | Path, out_dir: str | Path, settings: dict,
            config_settings: dict | None = None) -> dict[str, Any]:
    """Build and write data/processed/<dataset>/<split>.pt for every split in paths.SPLITS.

    settings: config["data"][dataset] (for CelebA, 'source' should be the resolved source,
    see mmjsd.core.paths.celeba_source). config_settings: the config keys `prepare` reads as the
    consumers recompute them (steps.step_settings), recorded in each split's fingerprint with
    the input's sha256 and the data code's digest; default {"data.<dataset>": settings}.
    Returns a summary dict (counts, source, notes, files).
    """
    input_path, out_dir = Path(input_path), Path(out_dir)
    if dataset == "dsprites":
        splits, notes, source = prepare_dsprites(input_path, settings)
    elif dataset == "celeba":
        splits, notes, source = prepare_celeba(input_path, settings)
    else:
        raise ValueError(f"unknown dataset {dataset!r}")
    fingerprint = processed.split_fingerprint(config_settings if config_settings is not None else {f"data.{dataset}": settings},
                                              processed.raw_sha256(input_path))
    for split in splits.values():
        split["fingerprint"] = fingerprint
    files = processed.save_splits(out_dir, splits)
    return {
        "dataset": dataset,
        "source": source,
        "seed": int(settings["seed"]),
        "input": str(input_path),
        "counts": {name: int(split["images"].shape[0]) for name, split in splits.items()},
        "text_length": int(splits["train"]["text"].shape[1]),
        "notes": notes,
        "files": [str(f) for f in files],
    }


def summary_paragraph(summary: dict[str, Any]) -> str:
    c = summary["counts"]
    return (f"prepare {summary['dataset']}: {c['train'] + c['val'] + c['test']} samples from {summary['input']} "
            f"(source '{summary['source']}') -> train {c['train']}, validation {c['val']} (val_fit {c['val_fit']}, "
            f"val_eval {c['val_eval']}), test {c['test']} "
            f"(test_fit {c['test_fit']}, test_eval {c['test_eval']}); text {summary['text_length']} characters "
            f"over the {len(ALPHABET)}-symbol alphabet; seed {summary['seed']}. "
            + ". ".join(n[0].upper() + n[1:] for n in summary["notes"]) + ". "
            f"Written: {', '.join(summary['files'])}.")


def cli_prepare(args: argparse.Namespace, config: dict) -> int:
    settings = dict(config["data"][args.dataset])
    if args.dataset == "celeba":
        settings["source"] = celeba_source(config)
    summary = prepare(args.dataset, args.input, args.out_dir, settings, step_settings(config, "prepare", args.dataset))
    print(summary_paragraph(summary))
    return 0
