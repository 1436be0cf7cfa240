"""Pieces shared by the dSprites and CelebA networks."""

from __future__ import annotations

import torch.nn as nn
from torch import Tensor


def scaled(channels: int, width: float) -> int:
    """Channel count times the width multiplier, rounded, at least 8."""
    return max(8, int(round(channels * width)))


class LatentHeads(nn.Module):
    """Linear heads for content mu/logvar and (when style_dim > 0) style mu/logvar."""

    def __init__(self, in_features: int, content_dim: int, style_dim: int):
        super().__init__()
        self.style_dim = style_dim
        self.content_mu = nn.Linear(in_features, content_dim)
        self.content_logvar = nn.Linear(in_features, content_dim)
        if style_dim > 0:
            self.style_mu = nn.Linear(in_features, style_dim)
            self.style_logvar = nn.Linear(in_features, style_dim)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        if self.style_dim > 0:
            s_mu, s_logvar = self.style_mu(h), self.style_logvar(h)
        else:
            s_mu = s_logvar = h.new_zeros(h.shape[0], 0)
        return self.content_mu(h), self.content_logvar(h), s_mu, s_logvar
