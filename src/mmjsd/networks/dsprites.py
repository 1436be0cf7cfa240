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

Text placement (`text_decoder: offset`, our choice for the dSprites settings): the text is the
same few words at a random start inside the padding. A plain decoder must learn to write the
words at a position given by a continuous style code, and while it has not, it reconstructs the
text through the style and the content carries nothing across modalities (docs/FIDELITY.md,
E1-E3 against D1). OffsetTextDecoder factorises the two: the content alone decodes the string
from its first character (left-aligned, '*' after it); the style alone gives a distribution over
the start offset; the output is that string placed at the offset, marginalised over offsets per
character. So the style can hold the offset and nothing else, and whatever the text says must
pass through the content. `text_decoder: aligned` is the cheaper alternative: the plain decoder
writes the left-aligned string and the likelihood scores it against the text with its padding
start removed (the offset is not modelled at all). `text_decoder: conv` keeps the plain decoder.

Every channel count and hidden width is multiplied by `width` (rounded, at least 8).
Each encoder returns (content_mu, content_logvar, style_mu, style_logvar); with style_dim 0 the
style tensors are empty (B, 0). Each decoder takes z = concat(style, content).
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmjsd.data.text import PAD_INDEX
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


class OffsetTextDecoder(nn.Module):
    """The text written from its first character by the content, placed at an offset chosen by the style.

    log p(x_j = a | s, c) = log sum_o p(o | s) p_c(x_{j-o} = a), where p_c is the plain decoder's
    distribution of the left-aligned string (positions before its start are '*'). Returns these
    log-probabilities (B x L x A; they are normalised logits, so the categorical likelihood and
    the argmax of generation use them unchanged). The mixture is computed in float32, outside
    any autocast, as one batched matmul with a per-sample Toeplitz matrix of offset weights.
    """

    def __init__(self, text_len: int, alphabet_size: int, content_dim: int, style_dim: int, width: float = 1.0):
        super().__init__()
        self.style_dim, self.text_len, self.alphabet_size = style_dim, text_len, alphabet_size
        self.string = TextDecoder(text_len, alphabet_size, content_dim, 0, width)
        hidden = scaled(HIDDEN // 4, width)
        # With no style the offset distribution is a learnt constant (the marginal over starts).
        self.offset = (nn.Sequential(nn.Linear(style_dim, hidden), nn.ReLU(), nn.Linear(hidden, text_len))
                       if style_dim > 0 else nn.Linear(1, text_len))

    def forward(self, z: Tensor) -> Tensor:
        style, content = z[:, :self.style_dim], z[:, self.style_dim:]
        string_logits = self.string(content)                                        # B x L x A
        offset_logits = self.offset(style if self.style_dim > 0 else z.new_ones(z.shape[0], 1))
        with torch.autocast(device_type=z.device.type, enabled=False):
            string = torch.softmax(string_logits.float(), dim=-1)                  # B x L x A
            offsets = torch.softmax(offset_logits.float(), dim=-1)                  # B x L (start 0..L-1)
            batch, length, letters = string.shape
            # ext[:, t] = the string's character t - (L - 1): '*' before its start
            before = torch.zeros(batch, length - 1, letters, dtype=string.dtype, device=string.device)
            before[:, :, PAD_INDEX] = 1.0
            ext = torch.cat([before, string], dim=1)                                # B x (2L-1) x A
            # out[j] = sum_o p(o) ext[j - o + L - 1] = (T @ ext)[j] with the Toeplitz matrix
            # T[j, t] = p(L - 1 - (t - j)) for 0 <= t - j < L, else 0 (one batched matmul).
            flipped = torch.cat([offsets.flip(-1), offsets.new_zeros(batch, 1)], dim=1)
            probs = torch.bmm(flipped[:, self._toeplitz_index(length, z.device)], ext)
            return probs.clamp_min(1e-30).log()

    @staticmethod
    def _toeplitz_index(length: int, device: torch.device) -> Tensor:
        """L x (2L-1) indices t - j into the flipped offsets, `length` (a zero) outside the band."""
        diagonal = torch.arange(2 * length - 1, device=device).view(1, -1) - torch.arange(length, device=device).view(-1, 1)
        return torch.where((diagonal >= 0) & (diagonal < length), diagonal, torch.full_like(diagonal, length))


class PoseImageDecoder(nn.Module):
    """The sprite drawn by the content, moved (and, with `rotate`, turned) by the image style.

    The image counterpart of OffsetTextDecoder. The text names the position as one of three bins
    (about 11 of the 32 positions) and the orientation as one of four 90-degree bins, so a content
    sample from the text cannot say where in its bins the sprite sits. A plain decoder then
    draws the average over those poses, a blob without shape (docs/FIDELITY.md, S1-S8). Here
    the content draws the sprite (ImageDecoder with no style) and the style (any size) only sets
    a rigid transform of the canvas, a translation (tx, ty) and with `rotate` an angle, applied
    by resampling the logits. So the style can carry the pose and nothing else: shape and scale
    must pass through the content. The last layer starts at zero: the identity until it is learnt.
    """

    def __init__(self, img_channels: int, content_dim: int, style_dim: int, width: float = 1.0,
                 rotate: bool = False, shift_bound: float | None = None):
        super().__init__()
        self.style_dim, self.rotate, self.shift_bound = style_dim, rotate, shift_bound
        self.canvas = ImageDecoder(img_channels, content_dim, 0, width)
        if style_dim > 0:
            hidden = scaled(HIDDEN // 4, width)
            self.pose = nn.Sequential(nn.Linear(style_dim, hidden), nn.ReLU(), nn.Linear(hidden, 3 if rotate else 2))
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
            shift = pose[:, :2]                                                     # (x, y) in [-1, 1] units
            if self.shift_bound is not None:   # soft bound: the identity near zero, never past +-bound
                shift = self.shift_bound * torch.tanh(shift / self.shift_bound)
            angle = pose[:, 2] if self.rotate else torch.zeros_like(pose[:, 0])
            cos, sin = torch.cos(angle), torch.sin(angle)
            # theta maps output coordinates to input ones: turn about the centre, then shift.
            theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], dim=1),
                                 torch.stack([sin, cos, shift[:, 1]], dim=1)], dim=1)  # B x 2 x 3
            grid = F.affine_grid(theta, list(logits.shape), align_corners=False)
            # border: the canvas edge is background, so what moves in is background too
            return F.grid_sample(logits.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)


# The upright pair (`image_decoder: upright`): the turn goes through the image style by
# construction. In every pose-decoder model the angle that the decoder takes from the style is one
# constant: the content draws the sprite already turned, so a content that codes a turn of 90,
# 180 or 360 degrees by shape lies on rings (a linear probe cannot read shape from them), and a
# decoder fed the text's content, which names only the quarter turn, draws the average over the
# turns the text leaves open: a square becomes a disc (docs/FIDELITY.md, "the rotation is in
# the content"). Here the first image-style coordinate *is* the angle (UPRIGHT_ANGLE_SCALE * s_0).
# The encoder turns the image back by the angle of its style mean before the content sees it,
# about the sprite's centroid (so the content still sees where the sprite is). The decoder draws
# the content's sprite and turns it by the style's angle about the drawn sprite's centroid. The
# angle gets gradients through the crisp input image from the first step, and with the content
# fixed, the turn can only come from the style.
UPRIGHT_ANGLE_SCALE = math.pi / 2   # s_0 ~ N(0, 1): two prior standard deviations span a full turn
UPRIGHT_ANGLE_LOGVAR_INIT = -8.0    # the angle's starting log-variance (see UprightImageEncoder)


def centroid(weights: Tensor) -> Tensor:
    """B x 2 centroid (x, y) of B x 1 x H x W non-negative weights, in affine_grid's normalised
    coordinates (align_corners=False: pixel i's centre at (2i + 1) / size - 1); the centre where
    a picture is empty."""
    height, width = weights.shape[-2:]
    ys = (2 * torch.arange(height, device=weights.device, dtype=weights.dtype) + 1) / height - 1
    xs = (2 * torch.arange(width, device=weights.device, dtype=weights.dtype) + 1) / width - 1
    mass = weights.sum(dim=(1, 2, 3)).clamp_min(1e-6)
    x = (weights.sum(dim=(1, 2)) * xs).sum(dim=-1) / mass
    y = (weights.sum(dim=(1, 3)) * ys).sum(dim=-1) / mass
    return torch.stack([x, y], dim=1)


def turn(pictures: Tensor, angle: Tensor, centre: Tensor, shift: Tensor | None = None,
         padding_mode: str = "zeros") -> Tensor:
    """`pictures` (float B x C x H x W) turned by `angle` (B, radians) about `centre` (B x 2,
    normalised), then moved by `shift` (B x 2, normalised; none by default). turn(turn(x, a, c),
    -a, c) = x up to resampling."""
    cos, sin = torch.cos(angle), torch.sin(angle)
    # theta maps each output location p to the input location R(a)(p - c - shift) + c
    rotation = torch.stack([torch.stack([cos, -sin], dim=1), torch.stack([sin, cos], dim=1)], dim=1)  # B x 2 x 2
    moved = centre if shift is None else centre + shift
    offset = centre - torch.bmm(rotation, moved.unsqueeze(-1)).squeeze(-1)
    theta = torch.cat([rotation, offset.unsqueeze(-1)], dim=2)
    grid = F.affine_grid(theta, list(pictures.shape), align_corners=False)
    return F.grid_sample(pictures, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def _check_upright_style(style_dim: int) -> None:
    if style_dim < 1:
        raise ValueError("the upright image decoder needs an image style of at least 1 (its first coordinate "
                         "is the angle): set style_dim.img >= 1")


class UprightImageEncoder(nn.Module):
    """The image style (its first coordinate the angle) from the image; the content from the image
    turned back upright by the style mean's angle (see UPRIGHT_ANGLE_SCALE)."""

    def __init__(self, img_channels: int, content_dim: int, style_dim: int, width: float = 1.0):
        super().__init__()
        _check_upright_style(style_dim)
        self.pose = ImageEncoder(img_channels, 0, style_dim, width)
        # The angle's posterior starts at no turn and sharp (sd e^-4 = 0.02, 1.7 degrees): the decoder
        # turns by the *sampled* angle, and a prior-wide one turns every reconstruction at random,
        # so the canvas learns round sprites and the coordinate is never used (FIDELITY, X5p, X5b).
        with torch.no_grad():
            self.pose.heads.style_mu.weight[0].zero_()
            self.pose.heads.style_mu.bias[0] = 0.0
            self.pose.heads.style_logvar.bias[0] = UPRIGHT_ANGLE_LOGVAR_INIT
        self.content = ImageEncoder(img_channels, content_dim, 0, width)

    def forward(self, img: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        _, _, s_mu, s_logvar = self.pose(img)
        with torch.autocast(device_type=img.device.type, enabled=False):
            image = img.float()
            upright = turn(image, -UPRIGHT_ANGLE_SCALE * s_mu[:, 0].float(), centroid(image))
        c_mu, c_logvar, _, _ = self.content(upright.to(img.dtype))
        return c_mu, c_logvar, s_mu, s_logvar


class UprightImageDecoder(nn.Module):
    """The content's sprite, turned by the style's angle about its centroid and moved by the rest of
    the style (a learnt shift that starts at zero, as in PoseImageDecoder)."""

    def __init__(self, img_channels: int, content_dim: int, style_dim: int, width: float = 1.0):
        super().__init__()
        _check_upright_style(style_dim)
        self.style_dim = style_dim
        self.canvas = ImageDecoder(img_channels, content_dim, 0, width)
        if style_dim > 1:
            hidden = scaled(HIDDEN // 4, width)
            self.shift = nn.Sequential(nn.Linear(style_dim - 1, hidden), nn.ReLU(), nn.Linear(hidden, 2))
            nn.init.zeros_(self.shift[-1].weight)
            nn.init.zeros_(self.shift[-1].bias)

    def forward(self, z: Tensor) -> Tensor:
        style, content = z[:, :self.style_dim], z[:, self.style_dim:]
        logits = self.canvas(content)
        shift = self.shift(style[:, 1:]) if self.style_dim > 1 else None
        with torch.autocast(device_type=z.device.type, enabled=False):
            logits = logits.float()
            angle = UPRIGHT_ANGLE_SCALE * style[:, 0].float()
            # border: the canvas edge is background, so what moves in is background too
            return turn(logits, angle, centroid(torch.sigmoid(logits)),
                        None if shift is None else shift.float(), padding_mode="border")


class SplitImageEncoder(nn.Module):
    """The image style and the image content, each read by its own convolutional stack (the plain
    encoder shares one stack and one hidden layer between them). Experimental (`image_decoder:
    pose_split`): it separates one of the three changes that X5c made at once (FIDELITY, X6).
    With `style_reads_content` (`pose_split_read`) the style heads also read the content stack's
    hidden layer, detached: with a stack of its own the style collapsed to the prior (X6), while
    the content's features say where the sprite is from the first steps. Detached, so that the
    content stack is still trained by the content alone."""

    def __init__(self, img_channels: int, content_dim: int, style_dim: int, width: float = 1.0,
                 style_reads_content: bool = False):
        super().__init__()
        self.style_reads_content = style_reads_content
        self.pose = ImageEncoder(img_channels, 0, style_dim, width)
        self.content = ImageEncoder(img_channels, content_dim, 0, width)
        if style_reads_content:
            self.pose.heads = LatentHeads(2 * scaled(HIDDEN, width), 0, style_dim)

    def forward(self, img: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        content_hidden = self.content.hidden(img)
        c_mu, c_logvar, _, _ = self.content.heads(content_hidden)
        style_hidden = self.pose.hidden(img)
        if self.style_reads_content:
            style_hidden = torch.cat([style_hidden, content_hidden.detach()], dim=1)
        _, _, s_mu, s_logvar = self.pose.heads(style_hidden)
        return c_mu, c_logvar, s_mu, s_logvar


# Half the width of a position third: the sprite centres span pixels 16-47 (data/dsprites_render.py)
# and the text names them in thirds of about 10.7 pixels, so a shift of at most 5 pixels lets the
# style place the sprite inside its third but leaves the third itself to the content.
POSE_SHIFT_BOUND = 2 * 5 / 64          # 5 pixels in affine_grid's normalised units

# shift: the image style translates the sprite; pose: it translates and turns it.
# pose_split: pose, with the style and the content read by separate encoder stacks;
# pose_split_read: the style heads also read the content stack, detached;
# pose_split_read_bounded: and the shift is bounded to half a position third (POSE_SHIFT_BOUND).
# upright: the style's first coordinate is the angle, and the encoder turns the image upright for
# the content.
_pose_decoder = partial(PoseImageDecoder, rotate=True)
_reading_split_encoder = partial(SplitImageEncoder, style_reads_content=True)
IMAGE_DECODERS = {"conv": ImageDecoder, "shift": partial(PoseImageDecoder, rotate=False),
                  "pose": _pose_decoder, "pose_split": _pose_decoder, "pose_split_read": _pose_decoder,
                  "pose_split_read_bounded": partial(_pose_decoder, shift_bound=POSE_SHIFT_BOUND),
                  "upright": UprightImageDecoder}
# the image encoder that goes with a decoder, where it is not the plain one
IMAGE_ENCODERS = {"upright": UprightImageEncoder, "pose_split": SplitImageEncoder,
                  "pose_split_read": _reading_split_encoder, "pose_split_read_bounded": _reading_split_encoder}

# "aligned": the plain decoder, scored against the left-aligned text (models/base.py)
TEXT_DECODERS = {"conv": TextDecoder, "offset": OffsetTextDecoder, "aligned": TextDecoder}
DECODER_NOTE = ""
