"""dSprites coherence without a classifier: read the generated text, measure the generated pixels.

Table 1a scores generations with trained classifiers, so every cell is bounded by a classifier.
These measures need none, so a reader can check the cells against them:

* Text generated from images: the string between the padding is split into its fields
  ("shape, scale, orientation, posY posX") and each field is compared with the same field of
  the conditioning image's true text. Per-field exact-match rate, plus the rate of whole
  strings that match exactly.
* Images generated from text: per generated image, the sprite area (pixels with probability
  > 0.5) and the centroid (column, row) of the probability mass. Reported as Spearman rank
  correlations with the conditioning text's scale, posX and posY classes. posY's sign follows
  the data's convention (rendered stand-in: posY increasing = lower in the image, so the row
  centroid correlates positively).

Everything is accumulated per batch (a few numbers per sample), so the full test split costs no
memory beyond its batches.
"""

from __future__ import annotations

import numpy as np
import torch

from mmjsd.data import text as textmod
from mmjsd.data.dsprites import TEXT_FIELDS
PIXEL_MEASURES = {"scale": "area", "posX": "centroid_x", "posY": "centroid_y"}


def text_fields(strings: list[str]) -> list[tuple[str, ...] | None]:
    """'square, zero point five, upright, upper right' -> its 5 fields; None when malformed."""
    fields = []
    for s in strings:
        parts = textmod.strip_padding(s).split(", ")
        position = parts[-1].rsplit(" ", 1) if len(parts) == 4 else []
        fields.append((*parts[:3], *position) if len(position) == 2 else None)
    return fields


def field_matches(generated: torch.Tensor, true_text: torch.Tensor, alphabet: str) -> np.ndarray:
    """bool N x 5 (TEXT_FIELDS order): field k of the generated string equals the true one."""
    got = text_fields(textmod.decode(generated.cpu(), alphabet))
    want = text_fields(textmod.decode(true_text.cpu(), alphabet))
    out = np.zeros((len(got), len(TEXT_FIELDS)), dtype=bool)
    for row, (g, w) in enumerate(zip(got, want)):
        if g is not None and w is not None:
            out[row] = [a == b for a, b in zip(g, w)]
    return out


def pixel_statistics(images: torch.Tensor) -> np.ndarray:
    """float N x 3: (area, centroid_x, centroid_y) of generated images (probabilities, N x 1 x H x W).

    A blank image (no mass) gets the image centre as its centroid.
    """
    probs = images.float().sum(dim=1) if images.dim() == 4 else images.float()   # N x H x W (channels summed)
    height, width = probs.shape[-2:]
    area = (probs > 0.5).flatten(1).sum(1).double()
    mass = probs.flatten(1).sum(1).double()
    cols = torch.arange(width, dtype=torch.float64, device=probs.device)
    rows = torch.arange(height, dtype=torch.float64, device=probs.device)
    safe = mass.clamp_min(1e-9)
    cx = torch.where(mass > 0, (probs.double().sum(1) * cols).sum(1) / safe, torch.full_like(mass, (width - 1) / 2))
    cy = torch.where(mass > 0, (probs.double().sum(2) * rows).sum(1) / safe, torch.full_like(mass, (height - 1) / 2))
    return torch.stack([area, cx, cy], dim=1).cpu().numpy()


def summarise(matches: np.ndarray, pixels: np.ndarray, labels: np.ndarray, label_names: list[str]) -> dict:
    """The eval.json block: per-field text match rates and pixel rank correlations."""
    from scipy.stats import spearmanr   # here, not at the top: slow to import, and only dSprites runs need it

    text = {name: float(matches[:, k].mean()) for k, name in enumerate(TEXT_FIELDS)}
    text["all_fields"] = float(matches.all(axis=1).mean())
    image = {}
    for column, (factor, measure) in enumerate(PIXEL_MEASURES.items()):
        truth = labels[:, label_names.index(factor)]
        values = pixels[:, column]
        constant = np.ptp(values) == 0 or np.ptp(truth) == 0
        rho = None if constant else float(spearmanr(values, truth).statistic)
        image[f"{factor}~{measure}"] = rho
    return {"text_field_match": text, "image_pixel_spearman": image}
