"""The attribute classifiers' network (mmjsd.evaluation.classifiers trains and applies it).

One shared trunk per modality plus a linear layer whose outputs are split into per-label heads,
built from the models' pieces (networks.common.conv_stack: 4x4 stride-2 convolutions):
- image: Conv2d stack with 32-64-64-128 channels (64 -> 4; the dSprites image encoder's layout
  with wider layers), flattened, and a 128-unit hidden layer;
- text: the dSprites text encoder's Conv1d stack (its TEXT_CHANNELS, 64-128-128-256), max over
  positions, and the hidden layer.
Every channel count is multiplied by `width` and rounded, at least MIN_CHANNELS = 4 (the models'
networks use 8: the classifiers were trained with 4, and their saved weights keep that shape).
No public classifier exists for dSprites+text; these networks are ours.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mmjsd.networks.common import conv_stack, scaled
from mmjsd.networks.dsprites import TEXT_CHANNELS

IMG_CHANNELS = (32, 64, 64, 128)
HIDDEN = 128
MIN_CHANNELS = 4


class AttributeClassifier(nn.Module):
    """Shared trunk plus a linear layer whose outputs are split into per-label heads.

    `spec` holds everything needed to rebuild the network (saved beside the state_dict).
    """

    def __init__(self, spec: dict[str, Any]):
        super().__init__()
        self.spec = dict(spec)
        width = float(spec["width"])
        hidden = scaled(HIDDEN, width, MIN_CHANNELS)
        n_out = int(sum(spec["head_sizes"]))
        if spec["modality"] == "img":
            # 64 -> 32 -> 16 -> 8 -> 4; flattened, not pooled, so position (posX/posY) survives.
            chans = [int(spec["in_channels"])] + [scaled(c, width, MIN_CHANNELS) for c in IMG_CHANNELS]
            self.trunk = nn.Sequential(
                *conv_stack(2, chans),
                nn.Flatten(),
                nn.Linear(chans[-1] * 4 * 4, hidden), nn.ReLU(),
            )
        elif spec["modality"] == "text":
            # The dSprites text encoder's strided 1-D convs (receptive field ~46 characters: whole
            # dSprites phrases, whole CelebA attribute names), then max over positions because the
            # padding start is random. Twice the image net's channels: 1-D convs are cheap and
            # learn faster wider.
            chans = [int(spec["alphabet_size"])] + [scaled(c, width, MIN_CHANNELS) for c in TEXT_CHANNELS]
            self.trunk = nn.Sequential(
                *conv_stack(1, chans),
                nn.AdaptiveMaxPool1d(1), nn.Flatten(),
                nn.Linear(chans[-1], hidden), nn.ReLU(),
            )
        else:
            raise ValueError(f"unknown modality {spec['modality']!r}")
        self.out = nn.Linear(hidden, n_out)

    @property
    def kind(self) -> str:
        return self.spec["kind"]

    @property
    def label_names(self) -> list[str]:
        return list(self.spec["label_names"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.spec["modality"] == "text":
            x = F.one_hot(x.long(), int(self.spec["alphabet_size"])).transpose(1, 2).float()
        return self.out(self.trunk(x)).float()  # losses and scores in float32 under bf16 autocast too

    def split_heads(self, logits: torch.Tensor) -> list[torch.Tensor]:
        return list(torch.split(logits, list(self.spec["head_sizes"]), dim=1))

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.kind == "binary":
            return F.binary_cross_entropy_with_logits(logits, labels.float())
        heads = self.split_heads(logits)
        return sum(F.cross_entropy(h, labels[:, i]) for i, h in enumerate(heads)) / len(heads)

    @torch.no_grad()
    def predict_and_score(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(predicted labels int64 B x F, positive-class probabilities B x F or None).

        Probabilities are returned for binary attributes only (average precision needs them).
        """
        logits = self(x)
        if self.kind == "binary":
            return (logits > 0).long(), torch.sigmoid(logits)
        return torch.stack([h.argmax(dim=1) for h in self.split_heads(logits)], dim=1), None

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.predict_and_score(x)[0]
