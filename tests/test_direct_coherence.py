"""Classifier-free dSprites coherence: text fields read back, pixel measures of real renders."""

import numpy as np
import torch

from mmjsd.data import dsprites, dsprites_render, text
from mmjsd.evaluation import direct_coherence as direct


def padded(strings, starts):
    return text.encode([("*" * s + x).ljust(64, "*") for x, s in zip(strings, starts)], length=64)


def test_field_matches_reads_each_field_whatever_the_offset():
    truth = padded(["square, zero point five, upright, upper right", "heart, one point zero, left, mid mid"], [2, 9])
    generated = padded(["square, zero point six, upright, upper right", "heart, one point zero, left, lower mid"], [11, 0])
    matches = direct.field_matches(generated, truth, text.ALPHABET)
    # fields in text order: shape, scale, orientation, posY, posX
    assert matches.tolist() == [[True, False, True, True, True], [True, True, True, False, True]]


def test_malformed_generated_text_matches_nothing():
    truth = padded(["square, zero point five, upright, upper right"], [0])
    for bad in ["square zero point five upright upper right", "", "square, zero point five, upright, upperright"]:
        assert not direct.field_matches(padded([bad], [3]), truth, text.ALPHABET).any()


def test_true_texts_of_the_renderer_match_themselves():
    rendered = dsprites_render.render(subset=300, seed=1)
    codes = dsprites.factor_text_indices(rendered["latents_classes"], torch.Generator().manual_seed(0))
    again = dsprites.factor_text_indices(rendered["latents_classes"], torch.Generator().manual_seed(5))
    matches = direct.field_matches(again, codes, text.ALPHABET)   # other offsets, same content
    assert matches.all()


def test_pixel_measures_recover_scale_and_position_of_real_renders():
    rendered = dsprites_render.render(subset=600, seed=2)
    labels = dsprites.factor_labels(rendered["latents_classes"])
    images = torch.from_numpy(rendered["imgs"]).float().unsqueeze(1)
    summary = direct.summarise(np.zeros((600, 5), dtype=bool), direct.pixel_statistics(images), labels,
                               dsprites.LABEL_NAMES)
    rho = summary["image_pixel_spearman"]
    assert rho["scale~area"] > 0.8 and rho["posX~centroid_x"] > 0.9 and rho["posY~centroid_y"] > 0.9
    # a shuffled assignment carries nothing
    shuffled = direct.summarise(np.zeros((600, 5), dtype=bool), direct.pixel_statistics(images[torch.randperm(600)]),
                                labels, dsprites.LABEL_NAMES)["image_pixel_spearman"]
    assert all(abs(v) < 0.2 for v in shuffled.values())


def test_blank_generations_have_no_correlation():
    labels = np.array([[0, k % 6, 0, k % 3, k % 3] for k in range(12)])
    summary = direct.summarise(np.zeros((12, 5), dtype=bool), direct.pixel_statistics(torch.zeros(12, 1, 64, 64)),
                               labels, dsprites.LABEL_NAMES)
    assert summary["image_pixel_spearman"] == {"scale~area": None, "posX~centroid_x": None, "posY~centroid_y": None}
    assert summary["text_field_match"]["all_fields"] == 0.0


def test_every_real_render_matches_its_own_shape_template_with_a_margin():
    rendered = dsprites_render.render(subset=900, seed=3)
    labels = dsprites.factor_labels(rendered["latents_classes"])
    overlaps = direct.shape_overlaps(torch.from_numpy(rendered["imgs"]).float().unsqueeze(1))
    summary = direct.shape_summary(overlaps, labels[:, 0])
    assert summary["match"] == 1.0
    assert all(margin > 0.15 for margin in summary["margin_by_shape"].values())
    # the same images against shuffled shapes: about a third match, and the margin is negative
    shuffled = direct.shape_summary(overlaps, labels[np.random.default_rng(0).permutation(900), 0])
    assert 0.2 < shuffled["match"] < 0.5 and shuffled["margin"] < 0


def test_template_measure_does_not_depend_on_where_the_sprite_is():
    rendered = dsprites_render.render(subset=300, seed=4)
    images = torch.from_numpy(rendered["imgs"]).float().unsqueeze(1)
    moved = torch.roll(images, shifts=(3, -5), dims=(2, 3))          # the sprites stay inside the 64 x 64 frame
    inside = (images[:, :, :3].sum((1, 2, 3)) == 0) & (images[:, :, :, :5].sum((1, 2, 3)) == 0) \
        & (images[:, :, -3:].sum((1, 2, 3)) == 0)
    assert inside.sum() > 100
    assert np.allclose(direct.shape_overlaps(moved[inside]), direct.shape_overlaps(images[inside]))


def test_a_disc_has_no_shape_margin_and_a_blank_image_matches_nothing():
    rows, cols = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    disc = (((rows - 20) ** 2 + (cols - 40) ** 2) < 64).float()[None, None]
    overlaps = direct.shape_overlaps(torch.cat([disc, disc, disc]))
    summary = direct.shape_summary(overlaps, np.array([0, 1, 2]))
    assert abs(summary["margin_by_shape"]["square"]) < 0.05 and summary["margin_by_shape"]["ellipse"] < 0
    blank = direct.shape_summary(direct.shape_overlaps(torch.zeros(3, 1, 64, 64)), np.array([0, 1, 2]))
    assert blank["match"] == 0.0 and blank["margin"] == 0.0


def test_summarise_reports_the_template_measure_when_given_overlaps():
    rendered = dsprites_render.render(subset=60, seed=5)
    labels = dsprites.factor_labels(rendered["latents_classes"])
    images = torch.from_numpy(rendered["imgs"]).float().unsqueeze(1)
    summary = direct.summarise(np.zeros((60, 5), dtype=bool), direct.pixel_statistics(images), labels,
                               dsprites.LABEL_NAMES, direct.shape_overlaps(images))
    assert summary["image_shape_template"]["match"] == 1.0
    assert set(summary["image_shape_template"]["margin_by_shape"]) == {"square", "ellipse", "heart"}
    assert "image_shape_template" not in direct.summarise(np.zeros((60, 5), dtype=bool), direct.pixel_statistics(images),
                                                           labels, dsprites.LABEL_NAMES)
