"""The processed-data contract and `mmjsd prepare` (dSprites and CelebA), determinism, failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mmjsd.cli import main
from mmjsd.core import paths
from mmjsd.data import celeba, celeba_faces, dsprites, dsprites_render, prepare, processed
from mmjsd.data.text import ALPHABET, decode, strip_padding
from mmjsd.errors import DataError

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "config.yaml")
SHARED = REPO.parent / "shared" / "data" / "celeba"
DSPRITES_SETTINGS = {"source": "render", "subset": None, "test_fraction": 0.1, "val_fraction": 0.1, "seed": 0}
CELEBA_SETTINGS = {"source": "folder", "root": "unused", "max_images": None, "synthetic_count": 24,
                   "test_fraction": 0.1, "val_fraction": 0.1, "seed": 0}
ALL_SPLIT_FILES = sorted(f"{name}.pt" for name in paths.SPLITS)


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and " -- fix: " in message
    return message


@pytest.fixture(scope="module")
def render_npz(tmp_path_factory) -> Path:
    return dsprites_render.save_render_npz(tmp_path_factory.mktemp("raw") / "render.npz", dsprites_render.render(400, seed=0))


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return celeba_faces.synthesize_folder(tmp_path_factory.mktemp("syn") / "celeba", count=30, seed=0)


def files_of(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --- split helpers --------------------------------------------------------------------------
def test_split_indices_partition_and_halves():
    s = processed.split_indices(101, 0.2, seed=3, val_fraction=0.25)
    assert len(s["test"]) == 20 and len(s["val"]) == 20 and len(s["train"]) == 61
    assert sorted(torch.cat([s["train"], s["val"], s["test"]]).tolist()) == list(range(101))   # disjoint, complete
    assert sorted(torch.cat([s["test_fit"], s["test_eval"]]).tolist()) == s["test"].tolist()
    assert sorted(torch.cat([s["val_fit"], s["val_eval"]]).tolist()) == s["val"].tolist()
    assert len(s["test_fit"]) == len(s["test_eval"]) == 10 and len(s["val_fit"]) == len(s["val_eval"]) == 10
    assert all(torch.equal(v, processed.split_indices(101, 0.2, seed=3, val_fraction=0.25)[k]) for k, v in s.items())
    assert not torch.equal(s["test"], processed.split_indices(101, 0.2, seed=4, val_fraction=0.25)["test"])
    with pytest.raises(DataError):
        processed.split_indices(4, 0.5, seed=0, val_fraction=0.1)


def test_the_validation_share_leaves_the_test_rows_where_they_were():
    """val is carved from the training rows with a generator of its own: the test split does
    not move when val_fraction changes (so test rows never depend on the selection protocol)."""
    small, large = (processed.split_indices(1000, 0.1, seed=0, val_fraction=f) for f in (0.05, 0.3))
    assert torch.equal(small["test"], large["test"]) and torch.equal(small["test_eval"], large["test_eval"])
    assert len(small["val"]) == 45 and len(large["val"]) == 270


# --- dSprites -------------------------------------------------------------------------------
def test_prepare_dsprites_writes_the_contract(render_npz, tmp_path):
    summary = prepare.prepare("dsprites", render_npz, tmp_path, DSPRITES_SETTINGS)
    assert files_of(tmp_path) == ALL_SPLIT_FILES
    assert summary["counts"] == {"train": 324, "test": 40, "test_fit": 20, "test_eval": 20, "val": 36, "val_fit": 18, "val_eval": 18}
    assert summary["source"] == "render"
    train = processed.load_split(tmp_path / "train.pt")
    assert list(train) == [*processed.KEYS, "fingerprint", "checksum"]
    assert train["images"].shape == (324, 1, 64, 64) and set(train["images"].unique().tolist()) == {0, 255}
    assert train["text"].shape == (324, 64) and train["alphabet"] == ALPHABET
    assert train["labels"].shape == (324, 5) and train["label_names"] == dsprites.LABEL_NAMES
    assert train["source"] == "render" and train["dataset"] == "dsprites" and train["seed"] == 0
    assert "STAND-IN" in train["notes"]
    assert strip_padding(decode(train["text"][:20])) == dsprites.describe(train["labels"][:20].numpy())
    fit, ev, test = (processed.load_split(tmp_path / f"{n}.pt") for n in ("test_fit", "test_eval", "test"))
    both = torch.cat([fit["labels"], ev["labels"]])
    assert sorted(map(tuple, both.tolist())) == sorted(map(tuple, test["labels"].tolist()))


def test_prepare_is_byte_identical_per_seed(render_npz, tmp_path):
    prepare.prepare("dsprites", render_npz, tmp_path / "a", DSPRITES_SETTINGS)
    prepare.prepare("dsprites", render_npz, tmp_path / "b", DSPRITES_SETTINGS)
    prepare.prepare("dsprites", render_npz, tmp_path / "c", dict(DSPRITES_SETTINGS, seed=1))
    for name in paths.SPLITS:
        assert (tmp_path / "a" / f"{name}.pt").read_bytes() == (tmp_path / "b" / f"{name}.pt").read_bytes()
    assert (tmp_path / "a" / "train.pt").read_bytes() != (tmp_path / "c" / "train.pt").read_bytes()


def test_full_grid_file_is_cut_to_the_configured_subset(tmp_path, monkeypatch):
    # a stand-in "full grid" of 2048 rows (the real one is 737,280), so the branch runs fast
    monkeypatch.setattr(dsprites, "N_ROWS", 2048)
    arrays = dsprites_render.render_rows(np.arange(2048))
    dsprites_render.save_render_npz(tmp_path / "grid.npz", arrays)
    summary = prepare.prepare("dsprites", tmp_path / "grid.npz", tmp_path / "out", dict(DSPRITES_SETTINGS, subset=100))
    assert sum(summary["counts"][k] for k in ("train", "val", "test")) == 100
    assert any("subset of 100" in note for note in summary["notes"])
    rows = dsprites.subset_rows(100, 0, total=2048)
    expected = dsprites.factor_labels(arrays["latents_classes"][rows])
    split = processed.split_indices(100, 0.1, 0, 0.1)
    assert torch.equal(processed.load_split(tmp_path / "out" / "test.pt")["labels"], torch.from_numpy(expected)[split["test"]])


# --- CelebA ---------------------------------------------------------------------------------
def test_prepare_celeba_synthetic(synthetic, tmp_path):
    summary = prepare.prepare("celeba", synthetic, tmp_path, CELEBA_SETTINGS)
    assert summary["source"] == "synthetic"
    train = processed.load_split(tmp_path / "train.pt")
    test = processed.load_split(tmp_path / "test.pt")
    assert train["images"].shape[1:] == (3, 64, 64) and train["text"].shape[1] == 256
    assert train["labels"].shape[1] == 40 and train["label_names"] == celeba.ATTRIBUTE_NAMES
    val = processed.load_split(tmp_path / "val.pt")
    assert len(train["images"]) + len(val["images"]) + len(test["images"]) == 30
    assert "official partitions" in train["notes"] and "STAND-IN" in train["notes"]
    assert strip_padding(decode(train["text"][:3])) == [celeba.attribute_string(r) for r in train["labels"][:3].numpy()]


@pytest.mark.skipif(not (SHARED / celeba.ATTR_FILE).is_file(), reason=f"the shared CelebA subset is not at {SHARED}")
def test_prepare_celeba_shared_subset(tmp_path):
    summary = prepare.prepare("celeba", SHARED, tmp_path, dict(CELEBA_SETTINGS, max_images=300))
    assert summary["source"] == "shared-subset"
    assert summary["counts"]["train"] + summary["counts"]["val"] + summary["counts"]["test"] == 300 and summary["counts"]["test"] == 30
    notes = " ".join(summary["notes"])
    assert "182599 of 202599 listed images are missing" in notes and "carved" in notes
    assert "missing" in prepare.summary_paragraph(summary)


# --- failures leave nothing behind ----------------------------------------------------------
def test_all_or_nothing_when_a_write_fails(render_npz, tmp_path, monkeypatch):
    out = tmp_path / "out"
    prepare.prepare("dsprites", render_npz, out, DSPRITES_SETTINGS)
    before = {n: (out / n).read_bytes() for n in files_of(out)}
    calls = {"n": 0}
    real_save = torch.save

    def failing_save(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError):
        prepare.prepare("dsprites", render_npz, out, dict(DSPRITES_SETTINGS, seed=7))
    assert {n: (out / n).read_bytes() for n in files_of(out)} == before        # old outputs intact, no temp files
    with pytest.raises(OSError):
        calls["n"] = 0
        prepare.prepare("dsprites", render_npz, tmp_path / "fresh", DSPRITES_SETTINGS)
    assert files_of(tmp_path / "fresh") == []


def test_load_split_errors(tmp_path):
    with pytest.raises(DataError) as exc:
        processed.load_split(tmp_path / "train.pt")
    assert "mmjsd prepare" in one_line(exc) and "snakemake" in one_line(exc)
    (tmp_path / "corrupt.pt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError):
        processed.load_split(tmp_path / "corrupt.pt")
    good = {"images": torch.zeros(2, 1, 64, 64, dtype=torch.uint8), "text": torch.zeros(2, 64, dtype=torch.uint8),
            "alphabet": ALPHABET, "labels": torch.zeros(2, 5, dtype=torch.int64), "label_names": list("abcde"),
            "source": "render", "seed": 0, "dataset": "dsprites", "notes": ""}
    processed.save_split(tmp_path / "ok.pt", good)
    assert processed.load_split(tmp_path / "ok.pt")["source"] == "render"
    for change in ({"images": torch.zeros(2, 1, 64, 64)}, {"labels": torch.zeros(2, 5, dtype=torch.int32)},
                   {"source": "made-up"}, {"label_names": ["a"]}):
        torch.save(dict(good, **change), tmp_path / "bad.pt")
        with pytest.raises(DataError) as exc:
            processed.load_split(tmp_path / "bad.pt")
        one_line(exc)
    torch.save({k: v for k, v in good.items() if k != "text"}, tmp_path / "nokey.pt")
    with pytest.raises(DataError):
        processed.load_split(tmp_path / "nokey.pt")


# --- command line ---------------------------------------------------------------------------
def test_cli_prepare_dsprites(render_npz, tmp_path, capsys):
    out = tmp_path / "dsprites"
    assert main(["prepare", "--config", CONFIG, "--scale", "ci", "--dataset", "dsprites",
                 "--input", str(render_npz), "--out-dir", str(out)]) == 0
    assert files_of(out) == ALL_SPLIT_FILES
    printed = capsys.readouterr().out
    assert printed.startswith("prepare dsprites: 400 samples") and "'render'" in printed


def test_cli_prepare_bad_inputs_exit_nonzero_and_write_nothing(tmp_path, capsys):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"\x00" * 100)
    empty = tmp_path / "empty_celeba"
    (empty / celeba.IMAGE_DIR).mkdir(parents=True)
    (empty / celeba.ATTR_FILE).write_text("0\n" + " ".join(celeba.ATTRIBUTE_NAMES) + "\n")
    cases = [("dsprites", tmp_path / "absent.npz"), ("dsprites", garbage), ("celeba", empty), ("celeba", tmp_path / "none")]
    for dataset, path in cases:
        out = tmp_path / f"out_{dataset}_{path.name}"
        assert main(["prepare", "--config", CONFIG, "--scale", "ci", "--dataset", dataset,
                     "--input", str(path), "--out-dir", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("mmjsd: error: ") and "\n" not in err
        assert files_of(out) == []


def test_same_size_damage_to_a_split_is_caught_by_its_checksum(render_npz, tmp_path):
    """One label changed, file size and format kept: the content checksum written with the split
    refuses it on every load (Snakemake sees only times and sizes)."""
    prepare.prepare("dsprites", render_npz, tmp_path, DSPRITES_SETTINGS)
    path = tmp_path / "test.pt"
    split = torch.load(path, weights_only=False)
    assert split["checksum"] == processed.canonical(split)["checksum"]      # written with the file
    split["labels"][0, 0] = (split["labels"][0, 0] + 1) % 3                   # the checksum stays the old one
    with open(path, "wb") as handle:
        torch.save(split, handle)
    with pytest.raises(DataError, match="damaged") as exc:
        processed.load_split(path)
    one_line(exc)
