"""Networks for dSprites + text (our choice: the paper publishes none for this experiment).

Image (1 x 64 x 64, binary): the convolutional encoder/decoder that is standard for dSprites
since beta-VAE (Higgins et al. 2017; Burgess et al. 2018): four 4x4 stride-2 convolutions with
32-32-64-64 channels (64 -> 32 -> 16 -> 8 -> 4), a 256-unit hidden layer and linear Gaussian
heads; the decoder mirrors it with transposed convolutions and outputs Bernoulli logits.
Text (L characters, one-hot over the alphabet, L = 64 in the paper): the same recipe in 1-D,
four Conv1d(k4, s2, p1) layers with 64-128-128-256 channels (64 -> 32 -> 16 -> 8 -> 4), a
256-unit hidden layer and the heads; the decoder mirrors it and outputs per-character logits.
Why: the shapes are tiny and binary, the factors (shape, scale, orientation, position) are
global, and this family is known to represent them well; the text strings are short and carry
the same five factors at a random offset inside '*' padding, which the flatten + linear layer
after the convolutions can locate. No batch norm or dropout: nothing to switch between train
and eval, and the model stays cheap on a CPU.

Text placement (`text_decoder: aligned`, our choice for the dSprites settings): the text is the
same few words at a random start inside the padding. A plain decoder must learn to write the
words at a position given by a continuous style code, and while it has not, it reconstructs the
text through the style and the content carries nothing across modalities (docs/FIDELITY.md, "Why mmJSD first carried nothing across
modalities").
With `aligned` the plain decoder writes the left-aligned string and the likelihood scores it
against the text with its padding start removed (models/base.py), so whatever the text says must
pass through the content. `text_decoder: conv` keeps the plain decoder of the padded text.

Every channel count and hidden width is multiplied by `width` (rounded, at least 8).
Each encoder returns (content_mu, content_logvar, style_mu, style_logvar); with style_dim 0 the
style tensors are empty (B, 0). Each decoder takes z = concat(style, content).
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmjsd.networks.common import LatentHeads, conv_stack, scaled

DATASET = "dsprites"

IMG_CHANNELS = (32, 32, 64, 64)
TEXT_CHANNELS = (64, 128, 128, 256)
HIDDEN = 256


class ImageEncoder(nn.Module):
    def __init__(self, img_channels: int, content_dim: int, style_dim: int, width: float = 1.0):
        super().__init__()
        chans = [img_channels] + [scaled(c, width) for c in IMG_CHANNELS]
        self.conv = nn.Sequential(*conv_stack(2, chans))  # 64 -> 4
        hidden = scaled(HIDDEN, width)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(chans[-1] * 4 * 4, hidden), nn.ReLU())
        self.heads = LatentHeads(hidden, content_dim, style_dim)

    def hidden(self, img: Tensor) -> Tensor:
        """The hidden layer that the latent heads read."""
        return self.fc(self.conv(img))

    def forward(self, img: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return self.heads(self.hidden(img))


class ImageDecoder(nn.Module):
    def __init__(self, img_channels: int, content_dim: int, style_dim: int, width: float = 1.0):
        super().__init__()
        chans = [scaled(c, width) for c in reversed(IMG_CHANNELS)] + [img_channels]
        hidden = scaled(HIDDEN, width)
        self.start_channels = chans[0]
        self.fc = nn.Sequential(
            nn.Linear(style_dim + content_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, chans[0] * 4 * 4), nn.ReLU(),
        )
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(chans[:-1], chans[1:])):
            layers.append(nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1))
            if i < len(chans) - 2:
                layers.append(nn.ReLU())
        self.deconv = nn.Sequential(*layers)  # 4 -> 64

    def forward(self, z: Tensor) -> Tensor:
        h = self.fc(z).view(z.shape[0], self.start_channels, 4, 4)
        return self.deconv(h)  # logits (Bernoulli) or locations (Laplace)


class TextEncoder(nn.Module):
    def __init__(self, text_len: int, alphabet_size: int, content_dim: int, style_dim: int, width: float = 1.0):
        super().__init__()
        if text_len % 16 != 0:
            raise ValueError(f"the dSprites text network needs a length divisible by 16, got {text_len}")
        self.alphabet_size = alphabet_size
        chans = [alphabet_size] + [scaled(c, width) for c in TEXT_CHANNELS]
        self.conv = nn.Sequential(*conv_stack(1, chans))  # L -> L / 16
        hidden = scaled(HIDDEN, width)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(chans[-1] * (text_len // 16), hidden), nn.ReLU())
        self.heads = LatentHeads(hidden, content_dim, style_dim)

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        x = F.one_hot(tokens, self.alphabet_size).to(self.fc[1].weight.dtype).transpose(1, 2)  # B x A x L
        return self.heads(self.fc(self.conv(x)))


class TextDecoder(nn.Module):
    def __init__(self, text_len: int, alphabet_size: int, content_dim: int, style_dim: int, width: float = 1.0):
        super().__init__()
        if text_len % 16 != 0:
            raise ValueError(f"the dSprites text network needs a length divisible by 16, got {text_len}")
        chans = [scaled(c, width) for c in reversed(TEXT_CHANNELS)] + [alphabet_size]
        hidden = scaled(HIDDEN, width)
        self.start = (chans[0], text_len // 16)
        self.fc = nn.Sequential(
            nn.Linear(style_dim + content_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, chans[0] * (text_len // 16)), nn.ReLU(),
        )
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(chans[:-1], chans[1:])):
            layers.append(nn.ConvTranspose1d(c_in, c_out, kernel_size=4, stride=2, padding=1))
            if i < len(chans) - 2:
                layers.append(nn.ReLU())
        self.deconv = nn.Sequential(*layers)  # L / 16 -> L

    def forward(self, z: Tensor) -> Tensor:
        h = self.fc(z).view(z.shape[0], *self.start)
        return self.deconv(h).transpose(1, 2)  # B x L x A logits


# conv: the plain decoder of concat(style, content). Variants tried and not chosen (the pose decoder)
# live in experiments/ and register here only when a config lists them under `extensions:` (mmjsd.core.extensions).
IMAGE_DECODERS = {"conv": ImageDecoder}

# "aligned": the plain decoder, scored against the left-aligned text (models/base.py)
TEXT_DECODERS = {"conv": TextDecoder, "aligned": TextDecoder}
DECODER_NOTE = ""
