"""mmPoE: the product-of-experts baseline (paper Eq. 17-19), in the form the authors trained.

Joint posterior: the unweighted product of experts of {N(0,I), q(c|x_img), q(c|x_text)}.
Implemented loss (MVAE-style, the authors' implementation; reference notes):

    L(X) = ELBO_joint + sum_j ELBO_j
    ELBO_joint = sum_m rec_weight_m * -log p(x_m | s_m, c),  c ~ PoE(N(0,I), q_img, q_text)
                 + beta * ( beta_content * KL(PoE || N(0,I))
                            + beta_style * sum_m beta_style_m * KL(q(s_m|x_m) || N(0,I)) )
    ELBO_j     = rec_weight_j * -log p(x_j | s_j, c_j),  c_j ~ PoE(N(0,I), q_j)
                 + beta * ( beta_content * KL(q_j || N(0,I))
                            + beta_style * beta_style_j * KL(q(s_j|x_j) || N(0,I)) )

(Eq. 17 as printed keeps only the unimodal reconstructions plus the unimodal and joint KLs; we
implement the authors' form above.) The same reconstruction weights as mmJSD are used, not the
authors' 0.5/0.5 for their CelebA PoE run, so the comparison is fair. Each encoder runs once per
batch and its posteriors serve all three ELBOs (the authors ran three forward passes; the
objective is the same up to dropout masks); every ELBO draws its own content and style samples.
Reported terms: rec_* and kl_style_* of the joint ELBO; divergence = KL(PoE || N(0,I)) +
sum_j KL(q_j || N(0,I)) (unweighted).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mmjsd.models import objectives as obj
from mmjsd.models.base import MultimodalVAE, Posterior


class MMPoE(MultimodalVAE):
    name = "mmpoe"

    def joint_posterior(self, posteriors: dict[str, Posterior]) -> tuple[Tensor, Tensor]:
        """Unweighted PoE of N(0,I) and the present unimodal content posteriors."""
        mus = torch.stack([p.content_mu.float() for p in posteriors.values()])
        logvars = torch.stack([p.content_logvar.float() for p in posteriors.values()])
        return obj.product_of_experts(*obj.with_prior_expert(mus, logvars))

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        self.check_batch(batch)
        post = self.encode_unimodal(batch)
        mods = self.modalities
        kl_style = self.style_kls(post)

        # ELBO of the joint: reconstruct every modality from c ~ PoE(N(0,I), q_img, q_text)
        joint_mu, joint_logvar = self.joint_posterior(post)
        content = obj.reparameterize(joint_mu, joint_logvar)
        outputs = self.decode(content, self.sample_styles(post))
        rec = {m: -self.log_likelihood(m, outputs[m], batch[m]) for m in mods}
        kl_joint = obj.gaussian_kl(joint_mu, joint_logvar)
        elbo = (sum(self.rec_weight[m] * rec[m] for m in mods)
                + self.beta * (self.beta_content * kl_joint
                               + self.beta_style * sum(self.beta_style_modality[m] * kl_style[m] for m in mods)))
        divergence = kl_joint

        # ELBO of each modality alone: c_j ~ PoE(N(0,I), q_j), reconstruct x_j, KL(q_j || N(0,I))
        for m in mods:
            alone = {m: post[m]}
            mu_j, logvar_j = self.joint_posterior(alone)
            content_j = obj.reparameterize(mu_j, logvar_j)
            out_j = self.decode(content_j, self.sample_styles(alone))[m]
            rec_j = -self.log_likelihood(m, out_j, batch[m])
            kl_j = obj.gaussian_kl(post[m].content_mu.float(), post[m].content_logvar.float())
            elbo = elbo + self.rec_weight[m] * rec_j + self.beta * (
                self.beta_content * kl_j + self.beta_style * self.beta_style_modality[m] * kl_style[m])
            divergence = divergence + kl_j

        return self._terms(
            elbo.mean(),
            rec_img=rec["img"], rec_text=rec["text"],
            kl_style_img=kl_style["img"], kl_style_text=kl_style["text"],
            divergence=divergence,
        )
