"""mmJSD: the multimodal JS-divergence objective with a dynamic prior (paper Eq. 16).

    L(X) = sum_m rec_weight_m * E_{q(c|X)}[-log p(x_m | s_m, c)]
           + beta * ( beta_style * sum_m beta_style_m * KL(q(s_m|x_m) || N(0,I))
                      + beta_content * JS_pi^{M+1}({q(c|x_m)}_m, N(0,I)) )

* q(c|X) = mixture of the unimodal posteriors (prior weight 0). As in the authors' code one
  content sample per data point, with the batch split deterministically between the components
  (first floor(B/2) rows from q_img, the rest from q_text for equal weights; objectives.
  mixture_assignment); that single c feeds every decoder (self- and cross-reconstruction).
* Each decoder also gets its modality's own style sample s_m ~ q(s_m|x_m).
* JS term: objectives.multimodal_jsd (Eq. 3 / Lemma 4) with the dynamic prior of Eq. 8 (weighted
  PoE of N(0,I) and the unimodal posteriors, weights `jsd_weights` = [prior, img, text]).
All terms are per-sample sums averaged over the batch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mmjsd.models import objectives as obj
from mmjsd.models.base import MultimodalVAE, Posterior


class MMJSD(MultimodalVAE):
    name = "mmjsd"

    def _modality_weights(self, present: list[str]) -> list[float]:
        return [self.jsd_weights[1 + self.modalities.index(m)] for m in present]

    def joint_posterior(self, posteriors: dict[str, Posterior]) -> tuple[Tensor, Tensor]:
        """The dynamic prior of Eq. 8 for the present modalities.

        Weighted PoE of {N(0,I)} and the present q(c|x_m), with jsd_weights restricted to the
        prior and the present modalities and renormalised to sum to 1.
        """
        present = list(posteriors)
        w = torch.tensor([self.jsd_weights[0], *self._modality_weights(present)], dtype=torch.float32)
        mus = torch.stack([posteriors[m].content_mu.float() for m in present])
        logvars = torch.stack([posteriors[m].content_logvar.float() for m in present])
        all_mu, all_logvar = obj.with_prior_expert(mus, logvars)
        return obj.weighted_poe(all_mu, all_logvar, (w / w.sum()).to(mus.device))

    def generation_content(self, encoded: dict) -> Tensor:
        """Mean of mmJSD's joint posterior q(c|X): the mixture of the present unimodal posteriors.

        With one conditioning modality this is that modality's posterior mean, i.e. the
        distribution the decoders are trained to decode from (Eq. 16) and the one the authors
        condition on (they take a sample; we take the mean for evaluation). With both modalities
        it is the jsd_weights-weighted average of the unimodal means (prior weight 0).
        """
        present = [m for m in self.modalities if m in encoded]
        w = torch.tensor(self._modality_weights(present), dtype=torch.float32)
        w = (w / w.sum()).to(encoded[present[0]].content_mu.device)
        mus = torch.stack([encoded[m].content_mu.float() for m in present])
        return (w.view(-1, 1, 1) * mus).sum(dim=0)

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        self.check_batch(batch)
        post = self.encode_unimodal(batch)
        mods = self.modalities
        mus = torch.stack([post[m].content_mu.float() for m in mods])          # M x B x D
        logvars = torch.stack([post[m].content_logvar.float() for m in mods])

        # one content sample per data point from the mixture (prior weight 0), authors' split
        batch_size = mus.shape[1]
        component = obj.mixture_assignment(batch_size, self._modality_weights(list(mods)), device=mus.device)
        rows = torch.arange(batch_size, device=mus.device)
        content = obj.reparameterize(mus[component, rows], logvars[component, rows])

        styles = self.sample_styles(post)
        outputs = self.decode(content, styles)
        rec = {m: -self.log_likelihood(m, outputs[m], batch[m]) for m in mods}
        kl_style = self.style_kls(post)
        js = obj.multimodal_jsd(mus, logvars, self.jsd_weights)

        rec_total = sum(self.rec_weight[m] * rec[m] for m in mods)
        style_total = sum(self.beta_style_modality[m] * kl_style[m] for m in mods)
        per_sample = rec_total + self.beta * (self.beta_style * style_total + self.beta_content * js)
        return self._terms(
            per_sample.mean(),
            rec_img=rec["img"], rec_text=rec["text"],
            kl_style_img=kl_style["img"], kl_style_text=kl_style["text"],
            divergence=js,
        )
