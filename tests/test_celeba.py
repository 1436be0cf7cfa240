"""CelebA: folder reader (shared real subset and synthetic stand-in), text, splits, errors, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from mmjsd.cli import main
from mmjsd.data import celeba, celeba_faces, download, prepare
from mmjsd.data.text import decode, strip_padding
from mmjsd.errors import DataError

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config.yaml"
SHARED = REPO.parent / "shared" / "data" / "celeba"
needs_shared = pytest.mark.skipif(not (SHARED / celeba.ATTR_FILE).is_file() or not (SHARED / celeba.IMAGE_DIR).is_dir(),
                                  reason=f"the shared CelebA subset is not at {SHARED}")


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and " -- fix: " in message
    return message


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return celeba_faces.synthesize_folder(tmp_path_factory.mktemp("syn") / "celeba", count=24, seed=0)


def attrs_row(*names: str) -> np.ndarray:
    row = np.zeros(40, dtype=np.int64)
    row[[celeba.A[n] for n in names]] = 1
    return row


# --- text -----------------------------------------------------------------------------------
def test_attribute_names_and_words():
    assert len(celeba.ATTRIBUTE_NAMES) == 40 and celeba.ATTRIBUTE_NAMES[0] == "5_o_Clock_Shadow"
    assert celeba.ATTRIBUTE_NAMES[20] == "Male" and celeba.ATTRIBUTE_NAMES[-1] == "Young"
    assert celeba.ATTRIBUTE_WORDS[0] == "5 o clock shadow"


def test_exact_text_in_file_column_order():
    row = attrs_row("Young", "Smiling", "Male", "Eyeglasses", "Black_Hair")
    assert celeba.attribute_string(row) == "black hair, eyeglasses, male, smiling, young"
    assert celeba.attribute_string(np.zeros(40)) == ""


def test_long_texts_are_cut_from_the_end():
    full = ", ".join(celeba.ATTRIBUTE_WORDS)
    assert len(full) > 256
    cut = celeba.attribute_string(np.ones(40))
    assert len(cut) <= 256 and full.startswith(cut)
    n = cut.count(", ") + 1
    assert len(", ".join(celeba.ATTRIBUTE_WORDS[: n + 1])) > 256


def test_text_indices_padding_and_seed():
    rows = np.stack([attrs_row("Male"), attrs_row("Smiling", "Young"), attrs_row("Male"), np.ones(40, np.int64)])
    a = celeba.attribute_text_indices(rows, torch.Generator().manual_seed(0))
    b = celeba.attribute_text_indices(torch.from_numpy(rows), torch.Generator().manual_seed(0))
    c = celeba.attribute_text_indices(rows, torch.Generator().manual_seed(1))
    assert a.dtype == torch.uint8 and a.shape == (4, 256)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert strip_padding(decode(a)) == [celeba.attribute_string(r) for r in rows]


# --- the shared real subset ------------------------------------------------------------------
@needs_shared
def test_read_shared_subset():
    folder = celeba.read_folder(SHARED, max_images=200)
    assert folder.images.shape == (200, 3, 64, 64) and folder.images.dtype == torch.uint8
    assert folder.names[0] == "000001.jpg" and folder.names[-1] == "000200.jpg"
    assert folder.listed == 202599 and folder.missing == 202599 - 20000
    assert folder.attributes.dtype == torch.int64 and set(folder.attributes.unique().tolist()) == {0, 1}
    assert (folder.partition == 0).all() and not folder.synthetic
    assert any("missing" in note for note in folder.notes)
    # the first image's attributes and text, straight from the official file
    assert celeba.attribute_string(folder.attributes[0].numpy()) == (
        "arched eyebrows, attractive, brown hair, heavy makeup, high cheekbones, mouth slightly open, "
        "no beard, pointy nose, smiling, straight hair, wearing earrings, wearing lipstick, young")
    # the authors' pipeline: crop rows 35.., cols 15.., PIL bicubic resize to 64
    for k in (0, 123):
        pil = Image.open(SHARED / celeba.IMAGE_DIR / folder.names[k]).convert("RGB")
        ref = np.asarray(pil.crop((15, 35, 163, 183)).resize((64, 64), Image.BICUBIC)).astype(int)
        ours = folder.images[k].permute(1, 2, 0).numpy().astype(int)
        assert np.abs(ref - ours).max() <= 2
    splits, note = prepare.celeba_splits(folder.partition, 200, 0.1, seed=0, val_fraction=0.1)
    assert note.startswith("carved") and len(splits["test"]) == 20 and len(splits["val"]) == 18


# --- synthetic stand-in ---------------------------------------------------------------------
def test_synthetic_folder_layout(synthetic):
    files = sorted(p.name for p in synthetic.iterdir())
    assert files == sorted(["README.md", celeba.SYNTHETIC_MARKER, celeba.IMAGE_DIR, celeba.ATTR_FILE, celeba.PARTITION_FILE])
    raw = (synthetic / celeba.ATTR_FILE).read_bytes()
    lines = raw.split(b"\r\n")
    assert lines[0] == b"24" and lines[1].split() == [n.encode() for n in celeba.ATTRIBUTE_NAMES]
    assert lines[2].startswith(b"000001.jpg ") and len(lines[2].split()) == 41
    assert sorted(p.name for p in (synthetic / celeba.IMAGE_DIR).iterdir())[-1] == "000024.jpg"
    with Image.open(synthetic / celeba.IMAGE_DIR / "000001.jpg") as im:
        assert im.size == (178, 218) and im.mode == "RGB"
    assert not [p for p in synthetic.parent.iterdir() if p.name.startswith(".")]     # no temp folders left
    folder = celeba.read_folder(synthetic)
    assert folder.synthetic and folder.missing == 0 and len(folder.names) == 24
    splits, note = prepare.celeba_splits(folder.partition, 24, 0.1, seed=0, val_fraction=0.1)
    assert note.startswith("official partitions") and len(splits["train"]) + len(splits["val"]) + len(splits["test"]) == 24
    partition_0 = set(np.flatnonzero(folder.partition == 0).tolist())
    assert set(splits["val"].tolist()) <= partition_0 and not set(splits["val"].tolist()) & set(splits["train"].tolist())


def test_synthetic_is_deterministic_and_replaces_atomically(synthetic, tmp_path):
    again = celeba_faces.synthesize_folder(tmp_path / "celeba", count=24, seed=0)
    for name in (celeba.ATTR_FILE, celeba.PARTITION_FILE, f"{celeba.IMAGE_DIR}/000007.jpg"):
        assert (again / name).read_bytes() == (synthetic / name).read_bytes()
    celeba_faces.synthesize_folder(tmp_path / "celeba", count=10, seed=1)              # over an existing one
    assert len(list((tmp_path / "celeba" / celeba.IMAGE_DIR).iterdir())) == 10
    assert [p.name for p in tmp_path.iterdir()] == ["celeba"]


def test_synthetic_attribute_frequencies_are_plausible():
    attrs = celeba_faces.sample_attributes(4000, np.random.default_rng(0))
    share = attrs.mean(0)
    assert abs(share[celeba.A["Male"]] - 0.417) < 0.03 and abs(share[celeba.A["Smiling"]] - 0.48) < 0.03
    hair = attrs[:, [celeba.A[h] for h in celeba_faces.HAIR_COLOURS]]
    assert hair.sum(1).max() <= 1 and not (hair.any(1) & attrs[:, celeba.A["Bald"]]).any()
    female = ~attrs[:, celeba.A["Male"]]
    assert not attrs[female][:, [celeba.A["Goatee"], celeba.A["Mustache"], celeba.A["Bald"]]].any()


def test_synthetic_faces_show_the_key_attributes():
    def draw(*names: str) -> np.ndarray:
        return celeba_faces.render_faces(attrs_row(*names)[None].astype(bool), np.random.default_rng(3))[0].astype(int)

    base = draw("Young")
    # eyeglasses: dark frame around the eyes (rows ~100-130), nothing else changes much
    glasses = draw("Young", "Eyeglasses")
    diff = np.abs(glasses - base).sum(2) > 60
    assert diff[95:135].sum() > 150 and diff[:80].sum() + diff[150:].sum() < 20
    # hair colour: the top of the head is light for blond, dark for black
    crown = (slice(70, 80), slice(80, 98))
    assert draw("Blond_Hair")[crown].mean() > 150 > 60 > draw("Black_Hair")[crown].mean()
    # bald man: skin on the crown instead of hair
    man, bald = draw("Male", "Black_Hair"), draw("Male", "Bald")
    assert man[crown].mean() < 60 and bald[crown].mean() > 100
    # male vs female: long hair beside the lower face only for women
    side = (slice(150, 165), slice(44, 50))
    woman = draw("Black_Hair")
    assert woman[side].mean() < 60 and np.abs(man[side] - woman[side]).mean() > 30
    # smiling: the mouth corners move up
    smile = draw("Young", "Smiling")
    assert np.abs(smile - base)[140:160, 70:110].sum() > 2000


# --- bad inputs -----------------------------------------------------------------------------
def test_folder_without_images_names_root_and_fix(synthetic, tmp_path):
    root = tmp_path / "empty"
    (root / celeba.IMAGE_DIR).mkdir(parents=True)
    (root / celeba.ATTR_FILE).write_bytes((synthetic / celeba.ATTR_FILE).read_bytes())
    with pytest.raises(DataError) as exc:
        celeba.read_folder(root)
    message = one_line(exc)
    assert str(root) in message and "data.celeba.root" in message and "synthetic" in message
    with pytest.raises(DataError):
        celeba.read_folder(tmp_path / "nowhere")


def test_header_not_the_40_names(synthetic, tmp_path):
    root = tmp_path / "bad"
    (root / celeba.IMAGE_DIR).mkdir(parents=True)
    lines = (synthetic / celeba.ATTR_FILE).read_text().splitlines()
    lines[1] = lines[1].replace("Smiling", "Grinning")
    (root / celeba.ATTR_FILE).write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as exc:
        celeba.read_folder(root)
    assert "40 CelebA attribute names" in one_line(exc)


def test_corrupt_jpeg_names_the_file(synthetic, tmp_path):
    import shutil

    root = tmp_path / "corrupt"
    shutil.copytree(synthetic, root)
    (root / celeba.IMAGE_DIR / "000003.jpg").write_bytes(b"\xff\xd8 broken")
    with pytest.raises(DataError) as exc:
        celeba.read_folder(root)
    assert "000003.jpg" in one_line(exc)


def test_torchvision_download_failure_is_a_data_error(tmp_path, monkeypatch, capsys):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise RuntimeError("no network")

    monkeypatch.setattr(torchvision.datasets, "CelebA", offline)
    with pytest.raises(DataError) as exc:
        download.download_torchvision(tmp_path)
    message = one_line(exc)
    assert "source: folder" in message and "source: synthetic" in message
    # A copy downloaded elsewhere: the error names the folder the pipeline expects it in.
    assert f"into {tmp_path / 'celeba'}" in message and "list_attr_celeba.txt" in message
    assert main(["celeba-download", "--config", str(CONFIG), "--root", str(tmp_path / "tv")]) == 2
    assert capsys.readouterr().err.startswith("mmjsd: error: ")


def test_gdown_is_installed_for_the_paper_default():
    """data.celeba.source: torchvision (the paper default) downloads through gdown."""
    import gdown  # noqa: F401  (torchvision's Google Drive download imports it)

    pins = (CONFIG.parent / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("gdown==") for line in pins)


def test_cli_synthesize(tmp_path, capsys):
    config = yaml.safe_load(CONFIG.read_text())
    config["data"]["celeba"]["synthetic_count"] = 12
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "syn"
    assert main(["celeba-synthesize", "--config", str(tmp_path / "config.yaml"), "--out", str(out)]) == 0
    assert len(list((out / celeba.IMAGE_DIR).iterdir())) == 12 and celeba.is_synthetic(out)
    assert "synthetic" in capsys.readouterr().out
