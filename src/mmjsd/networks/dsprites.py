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
text through the style and the content carries nothing across modalities (docs/FIDELITY.md).
With `aligned` the plain decoder writes the left-aligned string and the likelihood scores it
against the text with its padding start removed (models/base.py), so whatever the text says must
pass through the content. `text_decoder: conv` keeps the plain decoder of the padded text.

Every channel count and hidden width is multiplied by `width` (rounded, at least 8).
Each encoder returns (content_mu, content_logvar, style_mu, style_logvar); with style_dim 0 the
style tensors are empty (B, 0). Each decoder takes z = concat(style, content).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmjsd.networks.common import LatentHeads, conv_stack, scaled

DATASET = "dsprites"

IMG_CHANNELS = (32, 32, 64, 64)
TEXT_CHANNELS = (64, 128, 128, 256)
HIDDEN = 256
POSE_COORDINATE_BOUND = 1e3   # |shift| beyond this moves the sprite a thousand canvases away


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


class PoseImageDecoder(nn.Module):
    """The sprite drawn by the content, turned and moved by the image style.

    The text names the position as one of three bins (about 11 of the 32 positions) and the
    orientation as one of four 90-degree bins, so a content sample from the text cannot say where
    in its bins the sprite sits. A plain decoder then draws the average over those poses, a blob
    without shape (docs/FIDELITY.md). Here the content draws the sprite (ImageDecoder with no
    style) and the style (any size) only sets a rigid transform of the canvas, an angle and a
    translation (tx, ty), applied by resampling the logits. So the style can carry the pose and
    nothing else: shape and scale must pass through the content. The last layer starts at zero:
    the identity until it is learnt.
    """

    def __init__(self, img_channels: int, content_dim: int, style_dim: int, width: float = 1.0):
        super().__init__()
        self.style_dim = style_dim
        self.canvas = ImageDecoder(img_channels, content_dim, 0, width)
        if style_dim > 0:
            hidden = scaled(HIDDEN // 4, width)
            self.pose = nn.Sequential(nn.Linear(style_dim, hidden), nn.ReLU(), nn.Linear(hidden, 3))
            nn.init.zeros_(self.pose[-1].weight)
            nn.init.zeros_(self.pose[-1].bias)

    def forward(self, z: Tensor) -> Tensor:
        style, content = z[:, :self.style_dim], z[:, self.style_dim:]
        logits = self.canvas(content)
        if self.style_dim == 0:
            return logits
        pose = self.pose(style)
        with torch.autocast(device_type=z.device.type, enabled=False):
            pose = pose.float()
            shift, angle = pose[:, :2], pose[:, 2]                                  # (x, y) in [-1, 1] units; radians
            cos, sin = torch.cos(angle), torch.sin(angle)
            # theta maps output coordinates to input ones: turn about the centre, then shift.
            theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], dim=1),
                                 torch.stack([sin, cos, shift[:, 1]], dim=1)], dim=1)  # B x 2 x 3
            # A diverging run can hand grid_sample non-finite or huge coordinates, and its backward
            # then reads outside the canvas (a segmentation fault, not an error). Bounded, finite
            # coordinates fail as a NaN loss instead; for every sane pose this is the identity.
            theta = torch.nan_to_num(theta, nan=0.0).clamp(-POSE_COORDINATE_BOUND, POSE_COORDINATE_BOUND)
            grid = F.affine_grid(theta, list(logits.shape), align_corners=False)
            # border: the canvas edge is background, so what moves in is background too
            return F.grid_sample(logits.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)


# conv: the plain decoder; pose: the content draws the sprite and the image style turns and moves it.
IMAGE_DECODERS = {"conv": ImageDecoder, "pose": PoseImageDecoder}

# "aligned": the plain decoder, scored against the left-aligned text (models/base.py)
TEXT_DECODERS = {"conv": TextDecoder, "aligned": TextDecoder}
DECODER_NOTE = ""
