"""MultimodalVAE: what mmJSD and mmPoE share (encoders, decoders, likelihoods, generation).

A model is built from a *spec* (models/__init__.py: model_spec), a plain dict that is saved with
the weights, so a checkpoint alone rebuilds its model:
    {"model": "mmjsd" | "mmpoe", "dataset": "dsprites" | "celeba",
     "settings": config["model"][dataset], "img_channels", "text_len", "alphabet_size"}

Latents: one shared content latent c (content_dim) and one style latent s_m per modality
(`style_dim`: one size for both modalities or {img: n, text: m}; a size may be 0), the
factorised representation of the paper's appendix (Eq. 10-12). Decoder m takes concat(s_m, c).
Subclasses implement `loss` and
`joint_posterior` (how the present modalities are fused).

Batches: {"img": float32 B x C x 64 x 64 in [0, 1], "text": int64 B x L}.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import torch
import torch.nn as nn
from torch import Tensor

from mmjsd.core.vocabulary import MODALITIES
from mmjsd.data.text import align_left
from mmjsd.models import objectives as obj
from mmjsd.networks import celeba as celeba_networks
from mmjsd.networks import dsprites as dsprites_networks
from mmjsd.networks.common import make_networks

NETWORKS = {"dsprites": dsprites_networks, "celeba": celeba_networks}


def per_modality(value, kind: type) -> dict:
    """A setting given once for both modalities or as {img, text} -> {modality: kind(value)}
    (`style_dim`: sizes, `width`: channel multipliers)."""
    if isinstance(value, dict):
        return {m: kind(value[m]) for m in MODALITIES}
    return {m: kind(value) for m in MODALITIES}


class Posterior(NamedTuple):
    """Unimodal posterior parameters, each B x dim (style tensors are B x 0 when the style size is 0)."""

    content_mu: Tensor
    content_logvar: Tensor
    style_mu: Tensor
    style_logvar: Tensor


class MultimodalVAE(nn.Module):
    modalities = MODALITIES
    name = "base"

    def __init__(self, spec: dict):
        super().__init__()
        self.spec = copy.deepcopy(spec)
        s = self.spec["settings"]
        self.content_dim = int(s["content_dim"])
        self.style_dims = per_modality(s["style_dim"], int)
        self.image_likelihood = s["image_likelihood"]
        self.laplace_scale = float(s.get("laplace_scale", 1.0))
        self.rec_weight = {m: float(s["rec_weight"][m]) for m in MODALITIES}
        self.beta = float(s["beta"])
        self.beta_style = float(s["beta_style"])
        self.beta_style_modality = {m: float(s["beta_style_modality"][m]) for m in MODALITIES}
        self.beta_content = float(s["beta_content"])
        self.jsd_weights = [float(w) for w in s["jsd_weights"]]  # prior, img, text
        # text_decoder "aligned": the text likelihood ignores where the padding puts the words
        self.text_aligned = s.get("text_decoder", "conv") == "aligned"
        # logvar_bound L: every log-variance head's output goes through L * tanh(x / L), so no
        # posterior can reach a variance above e^L (docs/MODELS.md, deviation 12). None: unbounded.
        bound = s.get("logvar_bound")
        self.logvar_bound = None if bound is None else float(bound)
        self.encoders, self.decoders = make_networks(
            NETWORKS[self.spec["dataset"]], img_channels=int(self.spec["img_channels"]), text_len=int(self.spec["text_len"]),
            alphabet_size=int(self.spec["alphabet_size"]), content_dim=self.content_dim,
            style_dims=self.style_dims, widths=per_modality(s["width"], float), text_decoder=s.get("text_decoder", "conv"),
            image_decoder=s.get("image_decoder", "conv"),
        )

    # ------------------------------------------------------------------ inference
    def encode_unimodal(self, batch: dict[str, Tensor]) -> dict[str, Posterior]:
        present = [m for m in self.modalities if m in batch and batch[m] is not None]
        if not present:
            raise ValueError(f"batch holds none of the modalities {self.modalities}")
        return {m: self._bounded(Posterior(*self.encoders[m](batch[m]))) for m in present}

    def _bounded(self, posterior: Posterior) -> Posterior:
        if self.logvar_bound is None:
            return posterior
        bound = self.logvar_bound
        return posterior._replace(content_logvar=bound * torch.tanh(posterior.content_logvar / bound),
                                  style_logvar=bound * torch.tanh(posterior.style_logvar / bound))

    def joint_posterior(self, posteriors: dict[str, Posterior]) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def encode(self, batch: dict[str, Tensor]) -> dict:
        """Posteriors of the present modalities plus "joint": (mu, logvar) of the fused content.

        Missing modalities are absent from the result. See the subclass for the fusion.
        """
        posteriors = self.encode_unimodal(batch)
        out: dict = dict(posteriors)
        out["joint"] = self.joint_posterior(posteriors)
        return out

    # ------------------------------------------------------------------ generation
    def decode(self, content: Tensor, styles: dict[str, Tensor]) -> dict[str, Tensor]:
        """Raw decoder outputs for every modality named in `styles`.

        img: B x C x 64 x 64 logits (Bernoulli) or locations (Laplace); text: B x L x A logits.
        With a style size of 0 pass empty B x 0 style tensors (or None).
        """
        out = {}
        for m in self.modalities:
            if m not in styles:
                continue
            style = styles[m] if styles[m] is not None else content.new_zeros(content.shape[0], 0)
            out[m] = self.decoders[m](torch.cat([style.to(content.dtype), content], dim=-1))
        return out

    def log_likelihood(self, modality: str, output: Tensor, target: Tensor) -> Tensor:
        """log p(x_m | z) summed per sample -> (B,), computed in float32."""
        output = output.float()
        if modality == "text":
            return obj.categorical_log_prob(output, align_left(target) if self.text_aligned else target)
        if self.image_likelihood == "bernoulli":
            return obj.bernoulli_log_prob(output, target.float())
        return obj.laplace_log_prob(output, target.float(), self.laplace_scale)

    def to_data(self, modality: str, output: Tensor) -> Tensor:
        """Decoder output -> data space: image probabilities / clamped locations in [0, 1], text argmax."""
        if modality == "text":
            return output.argmax(dim=-1)
        if self.image_likelihood == "bernoulli":
            return torch.sigmoid(output.float())
        return output.float().clamp(0.0, 1.0)

    def _normal(self, shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
        """N(0, I) draws from `generator` (on its own device, then moved) or the global RNG."""
        gen_device = generator.device if generator is not None else device
        return torch.randn(shape, generator=generator, device=gen_device).to(device)

    def generation_content(self, encoded: dict) -> Tensor:
        """The content code used to generate from a conditioning set: the joint posterior's mean."""
        return encoded["joint"][0]

    @torch.no_grad()
    def generate(self, cond: dict[str, Tensor], target: str, generator: torch.Generator | None = None) -> Tensor:
        """Cross-modal (or self-) generation of `target` from the modalities in `cond`.

        content = the *mean* of the conditioning set's joint posterior (deterministic, as used for
        evaluation; see `generation_content`), style of the target ~ N(0, I) drawn from
        `generator`. img -> float B x C x 64 x 64 in [0, 1]; text -> int64 B x L (argmax).
        Set model.eval() first for evaluation (batch norm and dropout).
        """
        if target not in self.modalities:
            raise ValueError(f"unknown target modality {target!r}")
        content = self.generation_content(self.encode(cond))
        style = self._normal((content.shape[0], self.style_dims[target]), generator, content.device).to(content.dtype)
        return self.to_data(target, self.decode(content, {target: style})[target])

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Unconditional samples: c ~ N(0, I), s_m ~ N(0, I); outputs in data space (see generate)."""
        device = next(self.parameters()).device
        content = self._normal((n, self.content_dim), generator, device)
        styles = {m: self._normal((n, self.style_dims[m]), generator, device) for m in self.modalities}
        raw = self.decode(content, styles)
        return {m: self.to_data(m, raw[m]) for m in self.modalities}

    # ------------------------------------------------------------------ training
    def style_kls(self, posteriors: dict[str, Posterior]) -> dict[str, Tensor]:
        """KL(q(s_m | x_m) || N(0, I)) per sample -> {m: (B,)} (zeros when the style size is 0)."""
        return {m: obj.gaussian_kl(p.style_mu.float(), p.style_logvar.float()) for m, p in posteriors.items()}

    def sample_styles(self, posteriors: dict[str, Posterior]) -> dict[str, Tensor]:
        return {m: obj.reparameterize(p.style_mu, p.style_logvar) for m, p in posteriors.items()}

    def check_batch(self, batch: dict[str, Tensor]) -> None:
        missing = [m for m in self.modalities if batch.get(m) is None]
        if missing:
            raise ValueError(f"the training loss needs every modality; missing {missing}")

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        raise NotImplementedError

    @staticmethod
    def _terms(loss: Tensor, **terms: Tensor) -> dict[str, Tensor]:
        out = {"loss": loss}
        out.update({k: v.detach().mean() for k, v in terms.items()})
        return out

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
