"""Divergences, products of experts and likelihoods (mmjsd.models.objectives) against closed forms,
torch.distributions and Monte Carlo."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Categorical, Laplace, Normal, kl_divergence

from mmjsd.models import objectives as obj


def _gaussians(k: int, b: int, d: int, seed: int = 0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    mus = torch.randn(k, b, d, generator=g, dtype=dtype)
    logvars = torch.randn(k, b, d, generator=g, dtype=dtype)
    return mus, logvars


def _normal(mu, logvar):
    return Normal(mu, torch.exp(0.5 * logvar))


# ---------------------------------------------------------------- gaussian_kl
def test_gaussian_kl_matches_torch_distributions():
    (mu_q, mu_p), (lv_q, lv_p) = _gaussians(2, 7, 5)
    expected = kl_divergence(_normal(mu_q, lv_q), _normal(mu_p, lv_p)).sum(-1)
    torch.testing.assert_close(obj.gaussian_kl(mu_q, lv_q, mu_p, lv_p), expected)


def test_gaussian_kl_default_is_standard_normal_and_zero_at_itself():
    (mu,), (lv,) = _gaussians(1, 4, 3)
    expected = kl_divergence(_normal(mu, lv), Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(-1)
    torch.testing.assert_close(obj.gaussian_kl(mu, lv), expected)
    torch.testing.assert_close(obj.gaussian_kl(mu, lv, mu, lv), torch.zeros(4, dtype=mu.dtype))


# ---------------------------------------------------------------- weighted_poe
def test_weighted_poe_matches_closed_form():
    mus, lvs = _gaussians(3, 6, 4, seed=1)
    w = torch.tensor([0.2, 0.5, 0.3], dtype=mus.dtype)
    precision = (w.view(-1, 1, 1) / lvs.exp()).sum(0)
    mu_expected = (w.view(-1, 1, 1) * mus / lvs.exp()).sum(0) / precision
    mu, lv = obj.weighted_poe(mus, lvs, w)
    torch.testing.assert_close(mu, mu_expected)
    torch.testing.assert_close(lv, -torch.log(precision))


def test_weighted_poe_equal_experts_give_the_same_gaussian():
    mus, lvs = _gaussians(1, 5, 3, seed=2)
    mu, lv = obj.weighted_poe(mus.expand(4, -1, -1), lvs.expand(4, -1, -1), [0.1, 0.2, 0.3, 0.4])
    torch.testing.assert_close(mu, mus[0])
    torch.testing.assert_close(lv, lvs[0])


def test_weighted_poe_single_expert_with_weight_one():
    mus, lvs = _gaussians(1, 5, 3, seed=3)
    mu, lv = obj.weighted_poe(mus, lvs, [1.0])
    torch.testing.assert_close(mu, mus[0])
    torch.testing.assert_close(lv, lvs[0])
    # a zero weight removes its expert
    mus2, lvs2 = _gaussians(2, 5, 3, seed=4)
    mu, lv = obj.weighted_poe(mus2, lvs2, [0.0, 1.0])
    torch.testing.assert_close(mu, mus2[1])
    torch.testing.assert_close(lv, lvs2[1])


def test_weighted_poe_uniform_weights_is_precision_average():
    mus, lvs = _gaussians(3, 4, 2, seed=5)
    mu, lv = obj.weighted_poe(mus, lvs, [1 / 3] * 3)
    prec = (1.0 / lvs.exp()).mean(0)
    torch.testing.assert_close(lv, -torch.log(prec))
    torch.testing.assert_close(mu, (mus / lvs.exp()).mean(0) / prec)
    # unweighted product of experts: precisions add
    mu_p, lv_p = obj.product_of_experts(mus, lvs)
    torch.testing.assert_close(lv_p, -torch.log(3 * prec))
    torch.testing.assert_close(mu_p, mu)


# ---------------------------------------------------------------- multimodal_jsd
def test_jsd_is_zero_when_all_posteriors_are_standard_normal():
    z = torch.zeros(2, 3, 4)
    torch.testing.assert_close(obj.multimodal_jsd(z, z, [0.3, 0.35, 0.35]), torch.zeros(3))


def test_jsd_is_non_negative_and_positive_on_random_inputs():
    mus, lvs = _gaussians(2, 50, 6, seed=6, dtype=torch.float32)
    js = obj.multimodal_jsd(mus, lvs, [0.3, 0.35, 0.35])
    assert js.shape == (50,)
    assert (js > 0).all()


def test_jsd_matches_its_definition_and_monte_carlo():
    mus, lvs = _gaussians(2, 3, 2, seed=7)
    mus, lvs = 0.7 * mus, 0.7 * lvs
    w = torch.tensor([0.2, 0.5, 0.3], dtype=mus.dtype)
    js = obj.multimodal_jsd(mus, lvs, w)

    all_mu = torch.cat([torch.zeros_like(mus[:1]), mus])
    all_lv = torch.cat([torch.zeros_like(lvs[:1]), lvs])
    pf = _normal(*obj.weighted_poe(all_mu, all_lv, w))
    qs = _normal(all_mu, all_lv)
    exact = (w.view(-1, 1) * kl_divergence(qs, Normal(pf.loc.unsqueeze(0), pf.scale.unsqueeze(0))).sum(-1)).sum(0)
    torch.testing.assert_close(js, exact)

    g = torch.Generator().manual_seed(0)
    n = 200_000
    eps = torch.randn(n, *all_mu.shape, generator=g, dtype=mus.dtype)
    z = all_mu + eps * torch.exp(0.5 * all_lv)                       # n x K x B x D from q_k
    log_ratio = (qs.log_prob(z) - pf.log_prob(z.unsqueeze(0)).squeeze(0)).sum(-1)  # n x K x B
    mc = (w.view(-1, 1) * log_ratio.mean(0)).sum(0)
    se = (w.view(-1, 1) ** 2 * log_ratio.var(0) / n).sum(0).sqrt()
    assert torch.all((mc - js).abs() < 5 * se + 1e-3), (mc, js, se)


@pytest.mark.parametrize("value", [-20.0, 10.0])
def test_float32_stability_at_extreme_logvars(value):
    mus, _ = _gaussians(2, 4, 8, seed=8, dtype=torch.float32)
    lvs = torch.full_like(mus, value)
    lvs[1] = -value / 2  # mix extremes with moderate values
    mus.requires_grad_(True)
    lvs.requires_grad_(True)
    js = obj.multimodal_jsd(mus, lvs, [0.3, 0.35, 0.35])
    mu, lv = obj.weighted_poe(mus, lvs, [0.5, 0.5])
    kl = obj.gaussian_kl(mus[0], lvs[0], mus[1], lvs[1])
    for t in (js, mu, lv, kl):
        assert torch.isfinite(t).all()
    (js.sum() + kl.sum() + mu.sum() + lv.sum()).backward()
    assert torch.isfinite(mus.grad).all() and torch.isfinite(lvs.grad).all()


# ---------------------------------------------------------------- batch split, likelihoods
@pytest.mark.parametrize("batch_size", [1, 6, 7])
def test_mixture_assignment_splits_first_half_img_second_half_text(batch_size):
    comp = obj.mixture_assignment(batch_size, [0.35, 0.35])
    half = batch_size // 2
    assert comp.tolist() == [0] * half + [1] * (batch_size - half)


def test_likelihoods_match_torch_distributions():
    g = torch.Generator().manual_seed(9)
    logits = torch.randn(3, 1, 4, 4, generator=g)
    x = torch.rand(3, 1, 4, 4, generator=g).round()
    torch.testing.assert_close(obj.bernoulli_log_prob(logits, x), Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1))
    loc = torch.randn(3, 3, 4, 4, generator=g)
    y = torch.rand(3, 3, 4, 4, generator=g)
    torch.testing.assert_close(obj.laplace_log_prob(loc, y, 0.75), Laplace(loc, 0.75).log_prob(y).flatten(1).sum(1))
    text_logits = torch.randn(3, 5, 7, generator=g)
    tokens = torch.randint(0, 7, (3, 5), generator=g)
    torch.testing.assert_close(obj.categorical_log_prob(text_logits, tokens), Categorical(logits=text_logits).log_prob(tokens).sum(1))
    assert math.isfinite(obj.categorical_log_prob(text_logits * 1e4, tokens).sum().item())
