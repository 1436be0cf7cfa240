"""mmPoE (paper Eq. 17-19, MVAE-style as the authors trained it) on both datasets at small
widths: loss, gradients, one optimiser step, encode/generate for every subset, save/load."""

from __future__ import annotations

import pytest
import torch

import model_helpers as h
from mmjsd.models import objectives as obj

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
    enc = model.encode(batch)
    expected = obj.gaussian_kl(*enc["joint"]) + sum(obj.gaussian_kl(enc[m].content_mu, enc[m].content_logvar)
                                                    for m in model.modalities)
    torch.testing.assert_close(out["divergence"], expected.mean())


@pytest.mark.parametrize("dataset", h.DATASETS)
def test_loss_is_the_sum_of_the_joint_and_the_two_unimodal_elbos(dataset, monkeypatch):
    """L = ELBO(joint) + ELBO(img) + ELBO(text), each rebuilt here from the model's public pieces.

    Sampling is replaced by the mean (z = mu), so each ELBO is one deterministic number:
    reconstruction from c = mean of PoE(N(0,I), the subset's experts) and the style means, plus
    the weighted style KLs and the content KL: of the PoE for the joint ELBO, of q_j itself for a
    unimodal one (the module docstring's form)."""
    monkeypatch.setattr(obj, "reparameterize", lambda mu, logvar: mu)
    model = h.make_model(NAME, dataset).eval()
    batch = h.make_batch(dataset)
    posteriors = model.encode_unimodal(batch)

    def elbo(subset: tuple[str, ...]) -> torch.Tensor:
        experts = {m: posteriors[m] for m in subset}
        mu, logvar = model.joint_posterior(experts)
        outputs = model.decode(mu, {m: experts[m].style_mu for m in subset})
        rec = sum(model.rec_weight[m] * -model.log_likelihood(m, outputs[m], batch[m]) for m in subset)
        kl_style = sum(model.beta_style_modality[m] * obj.gaussian_kl(experts[m].style_mu.float(), experts[m].style_logvar.float())
                       for m in subset)
        content = experts[subset[0]] if len(subset) == 1 else None
        kl_content = (obj.gaussian_kl(mu, logvar) if content is None
                      else obj.gaussian_kl(content.content_mu.float(), content.content_logvar.float()))
        return rec + model.beta * (model.beta_content * kl_content + model.beta_style * kl_style)

    expected = elbo(("img", "text")) + elbo(("img",)) + elbo(("text",))
    torch.testing.assert_close(model.loss(batch)["loss"].detach(), expected.mean().detach(), rtol=1e-5, atol=1e-3)
