"""Divergences, products of experts and likelihoods of the mmJSD paper.

Equation numbers refer to Sutter, Daunhawer & Vogt, "Multimodal Generative Learning Utilizing
Jensen-Shannon-Divergence" (NeurIPS 2020):

* Eq. 3 / Lemma 4: the multimodal JS divergence JS_pi^{M+1}({q_j}, N(0,I)) =
  sum_k pi_k KL(q_k || f({q_k})) where f is the *dynamic prior*.
* Eq. 8: the dynamic prior f as a weighted product of experts (weighted geometric mean) of
  Gaussians. The paper prints Sigma_f = (sum_k pi_k Sigma_k)^-1; the correct form, and the one the
  authors' code uses, is the precision-weighted one: Sigma_f^-1 = sum_k pi_k Sigma_k^-1,
  mu_f = Sigma_f sum_k pi_k Sigma_k^-1 mu_k.
* Eq. 16: the mmJSD objective (models/mmjsd.py); Eq. 17-19: the PoE baseline (models/mmpoe.py).

Shapes: a set of K diagonal Gaussians is a pair of tensors (K, B, D); per-sample quantities are
(B,) (summed over the last dimension / over pixels / over characters). Everything is vectorised
over experts and batch and is finite in float32 for log-variances in [-20, 10].
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "gaussian_kl",
    "weighted_poe",
    "product_of_experts",
    "multimodal_jsd",
    "reparameterize",
    "mixture_assignment",
    "bernoulli_log_prob",
    "laplace_log_prob",
    "categorical_log_prob",
]


def _as_weights(weights: Tensor | Sequence[float], like: Tensor) -> Tensor:
    return torch.as_tensor(weights, dtype=like.dtype, device=like.device)


def gaussian_kl(mu_q: Tensor, logvar_q: Tensor, mu_p: Tensor | float = 0.0, logvar_p: Tensor | float = 0.0) -> Tensor:
    """KL(q || p) of diagonal Gaussians, summed over the last dimension (broadcasting).

    KL = 1/2 sum_d [ logvar_p - logvar_q + (exp(logvar_q) + (mu_q - mu_p)^2) / exp(logvar_p) - 1 ].
    With the defaults p = N(0, I). Written with exp(logvar_q - logvar_p) so that logvar in
    [-20, 10] stays finite in float32.
    """
    mu_p = torch.as_tensor(mu_p, dtype=mu_q.dtype, device=mu_q.device)
    logvar_p = torch.as_tensor(logvar_p, dtype=mu_q.dtype, device=mu_q.device)
    kl = 0.5 * (logvar_p - logvar_q + torch.exp(logvar_q - logvar_p) + (mu_q - mu_p).pow(2) * torch.exp(-logvar_p) - 1.0)
    return kl.sum(dim=-1)


def weighted_poe(mus: Tensor, logvars: Tensor, weights: Tensor | Sequence[float]) -> tuple[Tensor, Tensor]:
    """Weighted product of K diagonal Gaussians (the dynamic prior of Eq. 8).

    mus, logvars: (K, B, D); weights: (K,). Returns (mu, logvar) of shape (B, D) with
        precision = sum_k w_k / var_k,   mu = sum_k (w_k / var_k) mu_k / precision.
    With weights summing to 1 this is the weighted geometric mean of the K densities (the
    paper's Eq. 8 with its covariance typo corrected). With all weights 1 it is the ordinary
    product of experts (see `product_of_experts`). Computed in log space:
    log precision = logsumexp_k(log w_k - logvar_k), and the mean uses the normalised
    coefficients softmax_k(log w_k - logvar_k), so extreme variances neither overflow nor
    divide by zero. A zero weight removes its expert.
    """
    w = _as_weights(weights, mus)
    log_coef = torch.log(w).view(-1, *([1] * (mus.dim() - 1))) - logvars  # (K, B, D)
    log_precision = torch.logsumexp(log_coef, dim=0)
    coef = torch.softmax(log_coef, dim=0)
    mu = (coef * mus).sum(dim=0)
    return mu, -log_precision


def product_of_experts(mus: Tensor, logvars: Tensor) -> tuple[Tensor, Tensor]:
    """Unweighted product of experts (MVAE / the paper's PoE baseline, Eq. 17-19): all weights 1."""
    return weighted_poe(mus, logvars, torch.ones(mus.shape[0], dtype=mus.dtype, device=mus.device))


def with_prior_expert(mus: Tensor, logvars: Tensor) -> tuple[Tensor, Tensor]:
    """Prepend the standard-normal expert N(0, I) to (M, B, D) stacks -> (M+1, B, D)."""
    zeros = torch.zeros_like(mus[:1])
    return torch.cat([zeros, mus], dim=0), torch.cat([zeros, logvars], dim=0)


def multimodal_jsd(mus: Tensor, logvars: Tensor, weights: Tensor | Sequence[float]) -> Tensor:
    """Multimodal Jensen-Shannon divergence of Eq. 3 with the dynamic prior (Lemma 4, Eq. 8).

    mus, logvars: (M, B, D) unimodal content posteriors q_1..q_M; weights: (M+1,) = pi with
    pi_0 for the prior q_0 = N(0, I). Returns (B,):
        JS = sum_{k=0..M} pi_k KL(q_k || p_f),   p_f = weighted_poe({N(0,I), q_1..q_M}, pi).
    Gradients flow through p_f as in the authors' implementation.
    """
    all_mu, all_logvar = with_prior_expert(mus, logvars)
    w = _as_weights(weights, mus)
    if w.shape != (all_mu.shape[0],):
        raise ValueError(f"multimodal_jsd needs {all_mu.shape[0]} weights (prior first), got shape {tuple(w.shape)}")
    pf_mu, pf_logvar = weighted_poe(all_mu, all_logvar, w)
    kls = gaussian_kl(all_mu, all_logvar, pf_mu.unsqueeze(0), pf_logvar.unsqueeze(0))  # (M+1, B)
    return (w.unsqueeze(1) * kls).sum(dim=0)


def reparameterize(mu: Tensor, logvar: Tensor) -> Tensor:
    """z = mu + exp(logvar / 2) * eps with eps from the global RNG (torch.randn_like)."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def mixture_assignment(batch_size: int, weights: Tensor | Sequence[float], device: torch.device | None = None) -> Tensor:
    """Which mixture component each of `batch_size` data points draws its content sample from.

    The authors' deterministic stratified split of the batch (their mixture_component_selection):
    component k gets the next floor(B * w_k) rows, the last component gets the remainder. With
    weights (0.5, 0.5) the first floor(B/2) rows come from component 0 (q_img) and the rest from
    component 1 (q_text); works for odd B. Returns int64 (B,) component indices.
    """
    w = torch.as_tensor(weights, dtype=torch.float64)
    w = w / w.sum()
    counts = torch.floor(batch_size * w).to(torch.int64)
    ends = torch.cumsum(counts, dim=0)[:-1]  # the last component ends at B
    rows = torch.arange(batch_size, dtype=torch.int64)
    return torch.bucketize(rows, ends, right=True).to(device)


# --------------------------------------------------------------------------- likelihoods
def bernoulli_log_prob(logits: Tensor, target: Tensor) -> Tensor:
    """log Bernoulli(target | sigmoid(logits)) summed per sample -> (B,). Targets in [0, 1]."""
    ll = -F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return ll.flatten(1).sum(dim=1)


def laplace_log_prob(loc: Tensor, target: Tensor, scale: float) -> Tensor:
    """log Laplace(target | loc, scale) with a fixed scale, summed per sample -> (B,).

    The decoder outputs the location (no output activation), as in the authors' CelebA model.
    """
    ll = -torch.abs(target - loc) / scale - math.log(2.0 * scale)
    return ll.flatten(1).sum(dim=1)


def categorical_log_prob(logits: Tensor, tokens: Tensor) -> Tensor:
    """log Categorical(tokens | softmax(logits)) summed over characters -> (B,).

    logits: (B, L, A) over the alphabet; tokens: int64 (B, L). Uses proper logits, not the
    authors' OneHotCategorical(probs=log_softmax(...)) (log-probabilities passed as
    probabilities; see docs/MODELS.md).
    """
    log_p = torch.log_softmax(logits, dim=-1)
    return log_p.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).sum(dim=1)
