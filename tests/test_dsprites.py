"""dSprites: grid, procedural render, text and labels, npz files, download failures, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mmjsd.cli import main
from mmjsd.data import dsprites, dsprites_render
from mmjsd.data.text import PAD, strip_padding
from mmjsd.errors import DataError

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "config.yaml")


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and " -- fix: " in message
    return message


def row(shape=0, scale=0, orientation=0, posx=0, posy=0) -> int:
    return int(np.dot([0, shape, scale, orientation, posx, posy], dsprites.ROW_STRIDES))


def centroid(img: np.ndarray) -> tuple[float, float]:
    r, c = np.nonzero(img)
    return r.mean(), c.mean()


# --- grid ----------------------------------------------------------------------------------
def test_factor_grid_matches_the_official_one():
    assert dsprites.FACTOR_SIZES == (1, 3, 6, 40, 32, 32)
    assert np.prod(dsprites.FACTOR_SIZES) == dsprites.N_ROWS == 737280
    np.testing.assert_allclose(dsprites.SCALES, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert dsprites.ORIENTATIONS[0] == 0 and dsprites.ORIENTATIONS[-1] == pytest.approx(2 * np.pi)
    assert len(dsprites.ORIENTATIONS) == 40 and len(dsprites.POSITIONS) == 32
    assert dsprites.POSITIONS[0] == 0 and dsprites.POSITIONS[-1] == 1


def test_row_order_and_latents():
    rows = np.array([0, 1, 32, 1024, 40960, 245760, dsprites.N_ROWS - 1])
    classes, values = dsprites.latents_of_rows(rows)
    assert (classes @ np.array(dsprites.ROW_STRIDES) == rows).all()
    assert classes[-1].tolist() == [0, 2, 5, 39, 31, 31]
    assert values[-1].tolist() == pytest.approx([1.0, 3.0, 1.0, 2 * np.pi, 1.0, 1.0])
    assert classes[2].tolist() == [0, 0, 0, 0, 1, 0] and classes[1].tolist() == [0, 0, 0, 0, 0, 1]


def test_render_subset_format_and_seeded_rows():
    a = dsprites_render.render(60, seed=1)
    assert a["imgs"].shape == (60, 64, 64) and a["imgs"].dtype == np.uint8
    assert set(np.unique(a["imgs"])) <= {0, 1}
    assert a["latents_classes"].dtype == np.int64 and a["latents_values"].dtype == np.float64
    assert (np.diff(a["rows"]) > 0).all()                       # sorted, no repeats: grid order kept
    assert (a["latents_classes"] @ np.array(dsprites.ROW_STRIDES) == a["rows"]).all()
    assert np.array_equal(dsprites_render.render(60, seed=1)["imgs"], a["imgs"])
    assert not np.array_equal(dsprites.subset_rows(60, 2), a["rows"])


def test_sprite_moves_one_pixel_per_position_step():
    right = dsprites_render.render_rows([row(0, 5, 0, x, 15) for x in range(32)])
    cols = [centroid(img)[1] for img in right["imgs"]]
    assert np.allclose(np.diff(cols), 1.0)
    down = dsprites_render.render_rows([row(2, 3, 7, 15, y) for y in range(32)])
    rows_ = [centroid(img)[0] for img in down["imgs"]]
    assert np.allclose(np.diff(rows_), 1.0)                     # posY increasing = lower in the image
    assert dsprites.posy_points_down(down["imgs"], down["latents_classes"]) is True


def test_every_sprite_stays_inside_the_frame_at_the_corners():
    rows = [row(s, 5, o, x, y) for s in range(3) for o in range(40) for x in (0, 31) for y in (0, 31)]
    imgs = dsprites_render.render_rows(rows)["imgs"]
    assert (imgs.reshape(len(rows), -1).sum(1) > 0).all()
    border = np.concatenate([imgs[:, 0], imgs[:, -1], imgs[:, :, 0], imgs[:, :, -1]], axis=1)
    assert border.sum() == 0


def test_area_grows_with_scale_and_shapes_differ():
    for shape in range(3):
        imgs = dsprites_render.render_rows([row(shape, s, 3, 16, 16) for s in range(6)])["imgs"]
        areas = imgs.reshape(6, -1).sum(1)
        assert (np.diff(areas) > 0).all()
        assert areas[-1] / areas[0] == pytest.approx(4.0, rel=0.15)   # area ~ scale^2
    three = dsprites_render.render_rows([row(s, 4, 0, 16, 16) for s in range(3)])["imgs"]
    for i in range(3):
        for j in range(i + 1, 3):
            assert (three[i] != three[j]).sum() > 20


def test_orientation_turns_the_heart_upside_down():
    upright, flipped = dsprites_render.render_rows([row(2, 5, 0, 16, 16), row(2, 5, 20, 16, 16)])["imgs"]
    # upright: wide lobes above the centre row, the narrow tip below; orientation class 20 (~pi)
    # turns it over
    centre = 16 + 16
    assert upright[centre - 6].sum() > 2 * upright[centre + 10].sum()
    assert flipped[centre + 6].sum() > 2 * flipped[centre - 10].sum()
    # counter-clockwise: a quarter turn (class 10) puts the lobes on the left
    quarter = dsprites_render.render_rows([row(2, 5, 10, 16, 16)])["imgs"][0]
    assert quarter[:, centre - 6].sum() > 2 * quarter[:, centre + 10].sum()


# --- labels and text -----------------------------------------------------------------------
def test_labels_bins():
    classes = np.array([[0, 0, 0, o, x, y] for o, x, y in
                        [(0, 0, 0), (9, 10, 10), (10, 11, 11), (19, 20, 20), (20, 21, 21), (39, 31, 31)]])
    labels = dsprites.factor_labels(classes)
    assert labels.dtype == np.int64 and labels.shape == (6, 5)
    assert labels[:, 2].tolist() == [0, 0, 1, 1, 2, 3]
    assert labels[:, 3].tolist() == [0, 0, 1, 1, 2, 2] == labels[:, 4].tolist()
    assert dsprites.LABEL_NAMES == ["shape", "scale", "orientation", "posX", "posY"]


def test_exact_texts_for_known_factors():
    # the paper's Figure 2 example: square, scale 0.8, orientation quarter 1, top third, middle third
    assert dsprites.describe(np.array([[0, 3, 1, 1, 0]])) == ["square, zero point eight, left, upper mid"]
    classes = np.array([[0, 2, 0, 25, 31, 31],      # ellipse 0.5, upside down, lower right
                        [0, 1, 5, 39, 0, 15],       # heart 1.0, right, mid left
                        [0, 0, 2, 12, 15, 0]])      # square 0.7, left, upper mid
    texts = dsprites.factor_texts(classes, torch.Generator().manual_seed(0))
    assert strip_padding(texts) == ["heart, zero point five, upside down, lower right",
                                    "ellipse, one point zero, right, mid left",
                                    "square, zero point seven, left, upper mid"]
    assert all(len(t) == 64 and t.replace(s, "") == PAD * (64 - len(s)) for t, s in zip(texts, strip_padding(texts)))
    assert max(map(len, dsprites._templates(dsprites.POSY_WORDS))) <= 64


def test_text_padding_is_seeded():
    classes = dsprites_render.render(400, seed=0)["latents_classes"]
    a = dsprites.factor_text_indices(classes, torch.Generator().manual_seed(5))
    b = dsprites.factor_text_indices(classes, torch.Generator().manual_seed(5))
    c = dsprites.factor_text_indices(classes, torch.Generator().manual_seed(6))
    assert a.dtype == torch.uint8 and a.shape == (400, 64)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert strip_padding(dsprites.factor_texts(classes[:5], torch.Generator().manual_seed(5))) == \
        dsprites.describe(dsprites.factor_labels(classes[:5]))


# --- npz files ----------------------------------------------------------------------------
def test_render_npz_roundtrip(tmp_path):
    arrays = dsprites_render.render(40, seed=0)
    path = dsprites_render.save_render_npz(tmp_path / "r.npz", arrays)
    loaded = dsprites.load_npz(path)
    assert loaded["source"] == "render"
    for key in dsprites.KEYS:
        assert np.array_equal(loaded[key], arrays[key])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.npz"]


def test_official_style_npz_is_labelled_official(tmp_path):
    arrays = dsprites_render.render(10, seed=0)
    metadata = np.array({"description": "dSprites"}, dtype=object)   # pickled, like the real file
    np.savez(tmp_path / "o.npz", imgs=arrays["imgs"], latents_values=arrays["latents_values"],
             latents_classes=arrays["latents_classes"], metadata=metadata)
    assert dsprites.load_npz(tmp_path / "o.npz")["source"] == "official"


def test_bad_npz_files_are_data_errors(tmp_path):
    with pytest.raises(DataError) as exc:
        dsprites.load_npz(tmp_path / "absent.npz")
    assert "dsprites-render" in one_line(exc)
    good = dsprites_render.save_render_npz(tmp_path / "good.npz", dsprites_render.render(30, seed=0))
    blob = good.read_bytes()
    (tmp_path / "truncated.npz").write_bytes(blob[: len(blob) // 2])
    (tmp_path / "garbage.npz").write_bytes(b"not a zip at all")
    np.savez(tmp_path / "nokeys.npz", imgs=np.zeros((2, 64, 64), np.uint8))
    np.savez(tmp_path / "shape.npz", imgs=np.zeros((2, 32, 32), np.uint8),
             latents_values=np.zeros((2, 6)), latents_classes=np.zeros((2, 6), np.int64))
    for name in ("truncated", "garbage", "nokeys", "shape"):
        with pytest.raises(DataError) as exc:
            dsprites.load_npz(tmp_path / f"{name}.npz")
        one_line(exc)


# --- command line ---------------------------------------------------------------------------
def test_cli_render_ci(tmp_path, capsys):
    out = tmp_path / "render.npz"
    assert main(["dsprites-render", "--config", CONFIG, "--scale", "ci", "--out", str(out)]) == 0
    loaded = dsprites.load_npz(out)
    assert loaded["source"] == "render" and len(loaded["imgs"]) == 3000
    assert "render" in capsys.readouterr().out
