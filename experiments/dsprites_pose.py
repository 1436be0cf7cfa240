"""Experiment: the dSprites pose image decoder (not chosen; docs/FIDELITY.md, decision V1).

Load it through a config (mmjsd.core.extensions): `extensions: [experiments/dsprites_pose.py]`, then set
model.dsprites.image_decoder: pose and an image style (e.g. style_dim {img: 3, text: 0}).
On the validation split it lowered mmJSD's mean Table 1a cell from 0.674 +- 0.033 to
0.559 +- 0.026 (2 seeds): its images drawn from text put the sprite anywhere.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmjsd.core import extensions
from mmjsd.networks import dsprites
from mmjsd.networks.common import scaled

POSE_COORDINATE_BOUND = 1e3   # |shift| beyond this moves the sprite a thousand canvases away


class PoseImageDecoder(nn.Module):
    """The sprite drawn by the content, turned and moved by the image style.

    The text names the position as one of three bins (about 11 of the 32 positions) and the
    orientation as one of four 90-degree bins, so a content sample from the text cannot say where
    in its bins the sprite sits. A plain decoder then draws the average over those poses, a blob
    without shape (docs/FIDELITY.md, "Why images drawn from text have no shape"). Here the content draws the sprite (ImageDecoder with no
    style) and the style (any size) only sets a rigid transform of the canvas, an angle and a
    translation (tx, ty), applied by resampling the logits. So the style can carry the pose and
    nothing else: shape and scale must pass through the content. The last layer starts at zero:
    the identity until it is learnt.
    """

    def __init__(self, img_channels: int, content_dim: int, style_dim: int, width: float = 1.0):
        super().__init__()
        self.style_dim = style_dim
        self.canvas = dsprites.ImageDecoder(img_channels, content_dim, 0, width)
        if style_dim > 0:
            hidden = scaled(dsprites.HIDDEN // 4, width)
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


def register() -> None:
    extensions.register_image_decoder(dsprites, "pose", PoseImageDecoder)
