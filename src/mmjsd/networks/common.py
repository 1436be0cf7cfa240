"""Pieces shared by the dSprites, CelebA and classifier networks, and the one `make_networks`."""

from __future__ import annotations

from types import ModuleType
from typing import Sequence

import torch.nn as nn
from torch import Tensor


def scaled(channels: int, width: float, minimum: int = 8) -> int:
    """Channel count times the width multiplier, rounded, at least `minimum` (8 for the models'
    networks; the attribute classifiers were made with 4)."""
    return max(minimum, int(round(channels * width)))


def conv_stack(dims: int, channels: Sequence[int]) -> list[nn.Module]:
    """[Conv(kernel 4, stride 2, padding 1), ReLU] for each consecutive pair of `channels`
    (Conv1d for dims 1, Conv2d for dims 2): every layer halves the length (64 -> 32 -> ...)."""
    conv = {1: nn.Conv1d, 2: nn.Conv2d}[dims]
    layers: list[nn.Module] = []
    for c_in, c_out in zip(channels[:-1], channels[1:]):
        layers += [conv(c_in, c_out, kernel_size=4, stride=2, padding=1), nn.ReLU()]
    return layers


class LatentHeads(nn.Module):
    """Linear heads for content mu/logvar and style mu/logvar; a part of size 0 has no heads and
    returns empty B x 0 tensors (an encoder of the style alone, e.g. UprightImageEncoder's)."""

    def __init__(self, in_features: int, content_dim: int, style_dim: int):
        super().__init__()
        self.content_dim, self.style_dim = content_dim, style_dim
        if content_dim > 0:
            self.content_mu = nn.Linear(in_features, content_dim)
            self.content_logvar = nn.Linear(in_features, content_dim)
        if style_dim > 0:
            self.style_mu = nn.Linear(in_features, style_dim)
            self.style_logvar = nn.Linear(in_features, style_dim)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        empty = h.new_zeros(h.shape[0], 0)
        c_mu, c_logvar = (self.content_mu(h), self.content_logvar(h)) if self.content_dim > 0 else (empty, empty)
        s_mu, s_logvar = (self.style_mu(h), self.style_logvar(h)) if self.style_dim > 0 else (empty, empty)
        return c_mu, c_logvar, s_mu, s_logvar


def make_networks(family: ModuleType, img_channels: int, text_len: int, alphabet_size: int, content_dim: int,
                  style_dims: dict[str, int], widths: dict[str, float],
                  text_decoder: str = "conv", image_decoder: str = "conv") -> tuple[nn.ModuleDict, nn.ModuleDict]:
    """(encoders, decoders), each a ModuleDict keyed by modality ('img', 'text'), from one
    dataset's network module `family` (its DATASET, ImageEncoder, TextEncoder, IMAGE_DECODERS,
    TEXT_DECODERS and DECODER_NOTE). `widths`: the channel multiplier of each modality's encoder and decoder.
    Built in a fixed order (image encoder, text encoder, image decoder, text decoder): the seeded
    initial weights depend on it."""
    if img_channels < 1:
        raise ValueError(f"img_channels must be positive, got {img_channels}")
    for kind, name, known in (("text_decoder", text_decoder, family.TEXT_DECODERS),
                              ("image_decoder", image_decoder, family.IMAGE_DECODERS)):
        if name not in known:
            raise ValueError(f"unknown {kind} {name!r} for the {family.DATASET} networks (known: {', '.join(known)})"
                             + (f"; {family.DECODER_NOTE}" if family.DECODER_NOTE else ""))
    encoders = nn.ModuleDict({
        "img": getattr(family, "IMAGE_ENCODERS", {}).get(image_decoder, family.ImageEncoder)(
            img_channels, content_dim, style_dims["img"], widths["img"]),
        "text": family.TextEncoder(text_len, alphabet_size, content_dim, style_dims["text"], widths["text"]),
    })
    decoders = nn.ModuleDict({
        "img": family.IMAGE_DECODERS[image_decoder](img_channels, content_dim, style_dims["img"], widths["img"]),
        "text": family.TEXT_DECODERS[text_decoder](text_len, alphabet_size, content_dim, style_dims["text"], widths["text"]),
    })
    return encoders, decoders
