"""Figure 1: grid shape, pixel size of the PNG, shared styles per column, text errors."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

from fakes_eval import RandomImageModel, celeba_like_split, small_config
from mmjsd.core import files, paths
from mmjsd.data.text import ALPHABET, PAD, PAD_INDEX, encode_at_seeded_starts
from mmjsd.errors import DataError
from mmjsd.reporting.figure import (
    draw_figure,
    figure_grid_shape,
    figure_pixel_size,
    figure_texts,
    generate_panel,
)

torch.set_num_threads(1)
TEXT_LENGTH = 256


@pytest.fixture
def config(tmp_path):
    config = small_config(tmp_path)
    config["eval"]["figure"] = {"seed": 0, "samples_per_row": 3, "texts": ["male, smiling", "eyeglasses"], "real_test_texts": 2}
    return config


@pytest.fixture(scope="module")
def test_split():
    return celeba_like_split(6, seed=0, text_length=TEXT_LENGTH)


def _tiny_real_models(config):
    """Randomly initialised models of the real classes (CelebA networks at width 1/16)."""
    from mmjsd.models import build_model, model_spec

    config["model"]["celeba"]["width"] = 0.0625
    models = {}
    for name in ("mmjsd", "mmpoe"):
        torch.manual_seed(0)
        models[name] = build_model(model_spec(config, name, "celeba", 3, TEXT_LENGTH, 71)).eval()
    return models


def test_grid_shape_follows_the_config(config):
    assert figure_grid_shape(config) == (4, 3)
    config["eval"]["figure"]["samples_per_row"] = 10
    assert figure_grid_shape(config) == (4, 10)


def test_png_size_matches_the_grid_and_rerun_is_identical(config, test_split):
    models = _tiny_real_models(config)
    png = draw_figure(config, models, test_split)
    rows, cols = figure_grid_shape(config)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.size == figure_pixel_size(rows, cols, n_panels=2)
    assert image.size[0] > 2 * cols * 64 and image.size[1] > rows * 64
    assert draw_figure(config, _tiny_real_models(config), test_split) == png


def test_cli_writes_the_png_atomically(config, test_split):
    from mmjsd.data.processed import save_split
    from mmjsd.reporting.figure import cli_figure
    from test_classifiers import made_here
    from mmjsd.models import expected_run, save_model

    config["datasets"] = ["celeba"]
    save_split(paths.processed(config, "celeba", "test"), {**test_split, "fingerprint": made_here(config, "celeba")})
    for name, model in _tiny_real_models(config).items():
        save_model(paths.run_file(paths.RUN_MODEL, config, "celeba", name, 0), model,
                   fingerprint=expected_run(config, "celeba", name, 0))
        # the panel caption's numbers come from the run's eval.json
        files.write_json(paths.run_file(paths.RUN_EVAL, config, "celeba", name, 0),
                         {"conditioning": {"gaps": {"Male": {"gap": 0.4}}}})
    assert cli_figure(None, config) == 0
    out = paths.fill(paths.FIGURE1, config)
    assert Image.open(out).size == figure_pixel_size(*figure_grid_shape(config), n_panels=2)
    assert [p.name for p in out.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_rows_share_column_styles_and_texts_are_padded(config, test_split):
    labels, encoded = figure_texts(config, test_split)
    assert labels[:2] == ["male, smiling", "eyeglasses"] and labels[2].startswith("[test] ")
    assert encoded.shape == (4, TEXT_LENGTH) and encoded.dtype == torch.uint8
    from mmjsd.data.text import decode, strip_padding

    assert strip_padding(decode(encoded[:2])) == ["male, smiling", "eyeglasses"]
    assert torch.equal(encoded[2:], test_split["text"][:2])       # real texts used exactly as stored
    model = RandomImageModel("mmjsd", TEXT_LENGTH)
    faces = generate_panel(model, encoded, cols=3, seed=0)
    assert faces.shape == (4, 3, 3, 64, 64)
    # the fake's output depends only on the generator: every row got the same draws per column
    assert torch.equal(faces[0], faces[1]) and not torch.equal(faces[0, 0], faces[0, 1])


def test_real_test_rows_take_turns_over_male_and_smiling():
    """Rows come in turn from (male, smiling), (male), (smiling), (neither), first unused row of each;
    a combination that runs out is skipped; labels say what each text says of the two."""
    from mmjsd.reporting.figure import balanced_test_rows

    male_smiling = torch.tensor([[1, 1], [0, 0], [0, 0], [1, 0], [0, 1], [1, 1], [0, 0], [1, 0]])
    split = {"text": encode_at_seeded_starts(["text"] * 8, TEXT_LENGTH, ALPHABET, seed=0), "alphabet": ALPHABET,
             "labels": torch.cat([torch.zeros(8, 1, dtype=torch.long), male_smiling], dim=1),
             "label_names": ["Eyeglasses", "Male", "Smiling"]}
    assert balanced_test_rows(split, 4) == [0, 3, 4, 1]
    assert balanced_test_rows(split, 8) == [0, 3, 4, 1, 5, 7, 2, 6]   # no second "smiling" row: skipped
    config = {"eval": {"figure": {"seed": 0, "texts": [], "real_test_texts": 4}}}
    labels, _ = figure_texts(config, split)
    assert labels == ["[test: male, smiling] text", "[test: male, not smiling] text",
                      "[test: not male, smiling] text", "[test: not male, not smiling] text"]


def test_title_says_when_a_row_cannot_vary():
    """With no image style every face of a row is the same: the title says so (the report reuses image_style_dim)."""
    from mmjsd.reporting.figure import figure_title

    config = {"scale": "demo", "eval": {"figure": {"seed": 0}}, "model": {"celeba": {"style_dim": {"img": 0, "text": 4}}}}
    assert "no image style at this scale, so a row's faces are equal" in figure_title(config, "synthetic")
    config["model"]["celeba"]["style_dim"] = 32
    assert "styles ~ N(0, I)" in figure_title(config, "synthetic")


def test_padding_start_is_seeded():
    a = encode_at_seeded_starts(["smiling"], TEXT_LENGTH, ALPHABET, seed=0)
    assert torch.equal(a, encode_at_seeded_starts(["smiling"], TEXT_LENGTH, ALPHABET, seed=0))
    starts = {int((encode_at_seeded_starts(["smiling"], TEXT_LENGTH, ALPHABET, seed=s)[0] != PAD_INDEX).nonzero()[0])
              for s in range(5)}
    assert len(starts) > 1


def test_character_outside_the_alphabet_is_a_data_error(config, test_split):
    config["eval"]["figure"]["texts"] = ["Male, smiling"]     # upper case is not in the alphabet
    with pytest.raises(DataError, match="not in the"):
        figure_texts(config, test_split)
    config["eval"]["figure"]["texts"] = ["x" * (TEXT_LENGTH + 1)]
    with pytest.raises(DataError, match="more than the text length"):
        figure_texts(config, test_split)


def test_alphabet_pad_index():
    """The padding the figure's strings get is the alphabet's '*' (whatever its position)."""
    assert PAD == "*" and ALPHABET[PAD_INDEX] == PAD and ALPHABET.index(PAD) == PAD_INDEX
    encoded = encode_at_seeded_starts(["male"], TEXT_LENGTH, ALPHABET, seed=0)[0]
    assert (encoded == PAD_INDEX).sum() == TEXT_LENGTH - len("male")


def test_long_title_stays_inside_the_figure():
    """The title is wrapped to the figure's width: no title pixel touches the left or right edge."""
    import numpy as np

    from mmjsd.reporting.figure import TITLE_PX, figure_title, render_figure

    config = {"scale": "demo", "eval": {"figure": {"seed": 0}}, "model": {"celeba": {"style_dim": 32}}}
    title = figure_title(config, "shared-subset") + " " + "a long note about the data source, " * 6
    faces = torch.zeros(10, 10, 3, 64, 64)
    png = render_figure({"mmJSD": faces, "mmPoE": faces}, ["male"] * 10, title)
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"))[:TITLE_PX]
    assert pixels.min() < 128, "the title was drawn"
    edges = np.concatenate([pixels[:, :4], pixels[:, -4:]], axis=1)
    assert edges.min() == 255, "title text runs past the figure's edge"
