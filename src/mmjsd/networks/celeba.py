"""The authors' residual networks for CelebA + text (64x64 RGB, 256 characters).

Written from the facts in the reference notes (layer types, kernel sizes, strides, paddings,
channel counts, bias flags, residual scaling a = 2.0, b = 0.3); at width 1.0 the mmJSD model has
the authors' 70.3 M parameters (docs/MODELS.md lists the counts). Every channel count is
multiplied by `width` (rounded, at least 8): width 0.125 is the CPU demo model.

Residual block (down): BN, ReLU, 1x1 conv, Dropout(0.5), BN, ReLU, conv (k, s, p), Dropout(0.5);
shortcut conv (k, s, p) + BN; output 2.0 * shortcut(x) + 0.3 * residual(x). The 2-D blocks use
bias-free convolutions and channel dropout (Dropout2d) in the residual branch; the 1-D text
blocks use biased convolutions and element dropout; the shortcut convolutions have biases.
The transposed blocks of the decoders are the same with transposed convolutions.

Image encoder  3x64x64 -> Conv(3->128, k3 s2 p1, no bias) 32x32 -> 256@16 -> 384@8 -> 512@4
               -> 640@1 (k4 s2, the last block without padding) -> linear heads 640 -> 32.
Image decoder  Linear(style+content -> 640) as 640x1x1 -> 512@4 (k4 s1 p0) -> 384@8 -> 256@16
               -> 128@32 (k4 s2 p1) -> ConvTranspose(128->3, k3 s2 p1 op1) 3x64x64 locations.
Text encoder   one-hot A x 256 -> Conv1d(A->128, k4 s2 p1) @128 -> 256@64 -> 384@32 -> 512@16
               -> 640@8 -> 640@4 (k4 s2 p1) -> 640@1 (k4 s2 p0) -> linear heads.
Text decoder   Linear -> 640@1 -> 640@4 (k4 s1 p0) -> 640@8 -> 512@16 -> 384@32 -> 256@64
               -> 128@128 -> ConvTranspose1d(128->A, k4 s2 p1) @256 -> logits B x 256 x A
               (the authors end in log-softmax; we return logits, which the categorical
               likelihood normalises).
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmjsd.networks.common import LatentHeads, scaled

DATASET = "celeba"

TEXT_LEN = 256
IMG_SIZE = 64
A_SHORTCUT, B_RESIDUAL = 2.0, 0.3


class ResBlock(nn.Module):
    """Pre-activation residual block: out = 2.0 * shortcut(x) + 0.3 * branch(x).

    dim: 1 (text) or 2 (image); transposed: up-sampling block of the decoders.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int,
                 dim: int, transposed: bool = False):
        super().__init__()
        if dim == 2:
            Conv = nn.ConvTranspose2d if transposed else nn.Conv2d
            BN, Drop, bias = nn.BatchNorm2d, nn.Dropout2d, False
        else:
            Conv = nn.ConvTranspose1d if transposed else nn.Conv1d
            BN, Drop, bias = nn.BatchNorm1d, nn.Dropout, True
        self.branch = nn.Sequential(
            BN(c_in), nn.ReLU(),
            Conv(c_in, c_in, kernel_size=1, stride=1, padding=0, bias=bias), Drop(0.5),
            BN(c_in), nn.ReLU(),
            Conv(c_in, c_out, kernel_size=kernel, stride=stride, padding=padding, bias=bias), Drop(0.5),
        )
        self.shortcut = nn.Sequential(Conv(c_in, c_out, kernel_size=kernel, stride=stride, padding=padding), BN(c_out))

    def forward(self, x: Tensor) -> Tensor:
        return A_SHORTCUT * self.shortcut(x) + B_RESIDUAL * self.branch(x)


class ImageEncoder(nn.Module):
    def __init__(self, img_channels: int, content_dim: int, style_dim: int, width: float = 1.0):
        super().__init__()
        c = [scaled(n, width) for n in (128, 256, 384, 512, 640)]
        self.features = nn.Sequential(
            nn.Conv2d(img_channels, c[0], kernel_size=3, stride=2, padding=1, bias=False),  # 32
            ResBlock(c[0], c[1], 4, 2, 1, dim=2),  # 16
            ResBlock(c[1], c[2], 4, 2, 1, dim=2),  # 8
            ResBlock(c[2], c[3], 4, 2, 1, dim=2),  # 4
            ResBlock(c[3], c[4], 4, 2, 0, dim=2),  # 1
            nn.Flatten(),
        )
        self.heads = LatentHeads(c[4], content_dim, style_dim)

    def forward(self, img: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return self.heads(self.features(img))


class ImageDecoder(nn.Module):
    def __init__(self, img_channels: int, content_dim: int, style_dim: int, width: float = 1.0):
        super().__init__()
        c = [scaled(n, width) for n in (640, 512, 384, 256, 128)]
        self.fc = nn.Linear(style_dim + content_dim, c[0])
        self.generator = nn.Sequential(
            ResBlock(c[0], c[1], 4, 1, 0, dim=2, transposed=True),  # 4
            ResBlock(c[1], c[2], 4, 2, 1, dim=2, transposed=True),  # 8
            ResBlock(c[2], c[3], 4, 2, 1, dim=2, transposed=True),  # 16
            ResBlock(c[3], c[4], 4, 2, 1, dim=2, transposed=True),  # 32
            nn.ConvTranspose2d(c[4], img_channels, kernel_size=3, stride=2, padding=1, output_padding=1),  # 64
        )

    def forward(self, z: Tensor) -> Tensor:
        h = self.fc(z)
        return self.generator(h.view(h.shape[0], h.shape[1], 1, 1))


class TextEncoder(nn.Module):
    def __init__(self, text_len: int, alphabet_size: int, content_dim: int, style_dim: int, width: float = 1.0):
        super().__init__()
        if text_len != TEXT_LEN:
            raise ValueError(f"the CelebA text network is built for {TEXT_LEN} characters, got {text_len}")
        self.alphabet_size = alphabet_size
        c = [scaled(n, width) for n in (128, 256, 384, 512, 640)]
        self.features = nn.Sequential(
            nn.Conv1d(alphabet_size, c[0], kernel_size=4, stride=2, padding=1),  # 128
            ResBlock(c[0], c[1], 4, 2, 1, dim=1),  # 64
            ResBlock(c[1], c[2], 4, 2, 1, dim=1),  # 32
            ResBlock(c[2], c[3], 4, 2, 1, dim=1),  # 16
            ResBlock(c[3], c[4], 4, 2, 1, dim=1),  # 8
            ResBlock(c[4], c[4], 4, 2, 1, dim=1),  # 4
            ResBlock(c[4], c[4], 4, 2, 0, dim=1),  # 1
            nn.Flatten(),
        )
        self.heads = LatentHeads(c[4], content_dim, style_dim)

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        x = F.one_hot(tokens, self.alphabet_size).to(self.features[0].weight.dtype).transpose(1, 2)
        return self.heads(self.features(x))


class TextDecoder(nn.Module):
    def __init__(self, text_len: int, alphabet_size: int, content_dim: int, style_dim: int, width: float = 1.0):
        super().__init__()
        if text_len != TEXT_LEN:
            raise ValueError(f"the CelebA text network is built for {TEXT_LEN} characters, got {text_len}")
        c = [scaled(n, width) for n in (640, 512, 384, 256, 128)]
        self.fc = nn.Linear(style_dim + content_dim, c[0])
        self.generator = nn.Sequential(
            ResBlock(c[0], c[0], 4, 1, 0, dim=1, transposed=True),  # 4
            ResBlock(c[0], c[0], 4, 2, 1, dim=1, transposed=True),  # 8
            ResBlock(c[0], c[1], 4, 2, 1, dim=1, transposed=True),  # 16
            ResBlock(c[1], c[2], 4, 2, 1, dim=1, transposed=True),  # 32
            ResBlock(c[2], c[3], 4, 2, 1, dim=1, transposed=True),  # 64
            ResBlock(c[3], c[4], 4, 2, 1, dim=1, transposed=True),  # 128
            nn.ConvTranspose1d(c[4], alphabet_size, kernel_size=4, stride=2, padding=1),  # 256
        )

    def forward(self, z: Tensor) -> Tensor:
        h = self.fc(z).unsqueeze(-1)
        return self.generator(h).transpose(1, 2)  # B x L x A logits


# "aligned" changes only the text likelihood (models/base.py), not the authors' decoder.
TEXT_DECODERS = {"conv": TextDecoder, "aligned": TextDecoder}
IMAGE_DECODERS = {"conv": ImageDecoder}
DECODER_NOTE = "the CelebA networks are the authors'; the other decoders are dSprites only"
