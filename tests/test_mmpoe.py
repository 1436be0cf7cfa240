"""mmPoE (paper Eq. 17-19, MVAE-style as the authors trained it) on both datasets at small
widths: loss, gradients, one optimiser step, encode/generate for every subset, save/load."""

from __future__ import annotations

import pytest
import torch

import model_helpers as h

NAME = "mmpoe"


@pytest.mark.parametrize("dataset", h.DATASETS)
def test_loss_is_finite_and_reaches_every_parameter(dataset):
    h.check_loss_and_gradients(NAME, dataset)


@pytest.mark.parametrize("dataset", h.DATASETS)
def test_one_adam_step_lowers_the_loss(dataset):
    h.check_adam_step_lowers_loss(NAME, dataset)


@pytest.mark.parametrize("dataset", h.DATASETS)
def test_encode_and_generate_with_every_subset(dataset):
    h.check_encode_generate_subsets(NAME, dataset)


@pytest.mark.parametrize("dataset", h.DATASETS)
def test_save_load_gives_identical_outputs(dataset, tmp_path):
    h.check_save_load_roundtrip(NAME, dataset, tmp_path)


def test_joint_is_the_unweighted_product_with_the_prior():
    model = h.make_model(NAME, "dsprites").eval()
    batch = h.make_batch("dsprites", batch_size=3)
    enc = model.encode(batch)
    prec = 1.0 + sum(torch.exp(-enc[m].content_logvar) for m in model.modalities)
    mu = sum(enc[m].content_mu * torch.exp(-enc[m].content_logvar) for m in model.modalities) / prec
    torch.testing.assert_close(enc["joint"][1], -torch.log(prec))
    torch.testing.assert_close(enc["joint"][0], mu)
    single = model.encode({"img": batch["img"]})
    torch.testing.assert_close(single["joint"][1], -torch.log(1.0 + torch.exp(-enc["img"].content_logvar)))
    torch.testing.assert_close(model.generation_content(single), single["joint"][0])


def test_divergence_counts_the_joint_and_unimodal_kls():
    model = h.make_model(NAME, "dsprites").eval()
    batch = h.make_batch("dsprites")
    out = model.loss(batch)
    from mmjsd.objectives import gaussian_kl

    enc = model.encode(batch)
    expected = gaussian_kl(*enc["joint"]) + sum(gaussian_kl(enc[m].content_mu, enc[m].content_logvar) for m in model.modalities)
    torch.testing.assert_close(out["divergence"], expected.mean())
