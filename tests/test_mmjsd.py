"""mmJSD (paper Eq. 16) on both datasets at small widths: loss, gradients, one optimiser step,
encode/generate for every subset of modalities, save/load, and the model's own algebra."""

from __future__ import annotations

import pytest
import torch

import model_helpers as h
from mmjsd.models import objectives as obj

NAME = "mmjsd"


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


def test_load_errors_are_data_errors(tmp_path):
    h.check_load_errors(tmp_path)


def test_loss_is_the_weighted_sum_of_its_terms_and_uses_the_jsd():
    model = h.make_model(NAME, "celeba").eval()
    batch = h.make_batch("celeba", batch_size=4)
    out = model.loss(batch)
    expected = (model.rec_weight["img"] * out["rec_img"] + model.rec_weight["text"] * out["rec_text"]
                + model.beta * (model.beta_style * (model.beta_style_modality["img"] * out["kl_style_img"]
                                                    + model.beta_style_modality["text"] * out["kl_style_text"])
                                + model.beta_content * out["divergence"]))
    torch.testing.assert_close(out["loss"].detach(), expected, rtol=1e-5, atol=1e-2)
    enc = model.encode(batch)
    mus = torch.stack([enc[m].content_mu for m in model.modalities])
    logvars = torch.stack([enc[m].content_logvar for m in model.modalities])
    torch.testing.assert_close(out["divergence"], obj.multimodal_jsd(mus, logvars, [0.3, 0.35, 0.35]).mean())


def test_joint_is_the_dynamic_prior_renormalised_over_present_modalities():
    model = h.make_model(NAME, "celeba").eval()
    batch = h.make_batch("celeba", batch_size=3)
    enc = model.encode({"text": batch["text"]})
    q = enc["text"]
    zeros = torch.zeros_like(q.content_mu)
    mu, logvar = obj.weighted_poe(torch.stack([zeros, q.content_mu]), torch.stack([zeros, q.content_logvar]),
                                  [0.3 / 0.65, 0.35 / 0.65])
    torch.testing.assert_close(enc["joint"][0], mu)
    torch.testing.assert_close(enc["joint"][1], logvar)
    # generation conditions on the mean of the mixture: one modality -> its own posterior mean
    torch.testing.assert_close(model.generation_content(enc), q.content_mu)
    both = model.encode(batch)
    torch.testing.assert_close(model.generation_content(both), 0.5 * (both["img"].content_mu + both["text"].content_mu))


def test_no_style_latent():
    model = h.make_model(NAME, "dsprites", style_dim=0)
    out = model.loss(h.make_batch("dsprites"))
    assert out["kl_style_img"] == 0 and torch.isfinite(out["loss"])
    out["loss"].backward()
    model.eval()
    assert model.generate({"text": h.make_batch("dsprites")["text"]}, "img").shape == (4, 1, 64, 64)


def test_model_files_with_one_style_size_still_load(tmp_path):
    """Files written before per-modality style sizes hold one integer `style_dim` for both."""
    from mmjsd.models import load_model, save_model

    model = h.make_model(NAME, "dsprites", style_dim=2)
    assert model.style_dims == {"img": 2, "text": 2}
    save_model(tmp_path / "model.pt", model)
    again = load_model(tmp_path / "model.pt")
    assert again.style_dims == {"img": 2, "text": 2}
    for key, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[key])


def test_logvar_bound_is_a_soft_bound_and_off_means_the_raw_heads():
    """`logvar_bound: L` maps every log-variance head through L * tanh(x / L) (docs/MODELS.md,
    deviation 12); without it the heads' raw outputs are the log-variances."""
    batch = h.make_batch("celeba")
    raw = h.make_model(NAME, "celeba", logvar_bound=None)
    bounded = h.make_model(NAME, "celeba", logvar_bound=0.5)
    bounded.load_state_dict(raw.state_dict())
    raw.eval(), bounded.eval()
    for m, posterior in raw.encode_unimodal(batch).items():
        soft = bounded.encode_unimodal(batch)[m]
        assert posterior.content_logvar.abs().max() > 0.5      # the bound is active in this check
        for raw_value, soft_value in ((posterior.content_logvar, soft.content_logvar),
                                      (posterior.style_logvar, soft.style_logvar)):
            assert soft_value.abs().max() < 0.5
            assert torch.allclose(soft_value, 0.5 * torch.tanh(raw_value / 0.5))
        assert torch.equal(posterior.content_mu, soft.content_mu)


def test_per_modality_width():
    """`width: {img, text}` sizes each modality's networks on its own; one number sizes both."""
    both = h.make_model(NAME, "celeba", width=0.0625)
    split = h.make_model(NAME, "celeba", width={"img": 0.0625, "text": 0.125})
    count = lambda module: sum(p.numel() for p in module.parameters())   # noqa: E731
    for part in ("encoders", "decoders"):
        assert count(getattr(split, part)["img"]) == count(getattr(both, part)["img"])
        assert count(getattr(split, part)["text"]) > count(getattr(both, part)["text"])
    assert torch.isfinite(split.loss(h.make_batch("celeba"))["loss"])
