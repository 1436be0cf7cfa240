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
* Images generated from text, shape: each generated image, thresholded at 0.5 and moved so that
  its centroid is at the centre, is compared by intersection over union with every sprite of the
  grid (3 shapes x 6 scales x 40 orientations, drawn by our renderer's rasteriser and centred the
  same way). Reported: the share whose best template has the text's shape, and the margin
  IoU(best template of the text's shape) - IoU(best of another shape), overall and per shape. A
  disc, which is no shape of the grid, has a margin near 0 whatever it is called; real renders
  match 1.0 with a margin of about +0.24 (docs/evidence/fidelity-log.md, G3: two image classifiers put such
  discs in different classes).

Everything is accumulated per batch (a few numbers per sample), so the full test split costs no
memory beyond its batches.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from mmjsd.data import text as textmod
from mmjsd.data.dsprites import SHAPE_WORDS, TEXT_FIELDS
from mmjsd.data.dsprites_render import CANVAS, rasterise_sprites

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


def _planes(images: torch.Tensor) -> torch.Tensor:
    """N x H x W float: generated images (N x C x H x W, or already N x H x W) with channels summed."""
    return images.float().sum(dim=1) if images.dim() == 4 else images.float()


def pixel_statistics(images: torch.Tensor) -> np.ndarray:
    """float N x 3: (area, centroid_x, centroid_y) of generated images (probabilities, N x 1 x H x W).

    A blank image (no mass) gets the image centre as its centroid.
    """
    probs = _planes(images)
    height, width = probs.shape[-2:]
    area = (probs > 0.5).flatten(1).sum(1).double()
    mass = probs.flatten(1).sum(1).double()
    cols = torch.arange(width, dtype=torch.float64, device=probs.device)
    rows = torch.arange(height, dtype=torch.float64, device=probs.device)
    safe = mass.clamp_min(1e-9)
    cx = torch.where(mass > 0, (probs.double().sum(1) * cols).sum(1) / safe, torch.full_like(mass, (width - 1) / 2))
    cy = torch.where(mass > 0, (probs.double().sum(2) * rows).sum(1) / safe, torch.full_like(mass, (height - 1) / 2))
    return torch.stack([area, cx, cy], dim=1).cpu().numpy()


def centred_masks(images: torch.Tensor) -> torch.Tensor:
    """N x (H*W) float masks (probability > 0.5; channels summed), each moved cyclically by whole
    pixels so that its centroid sits at pixel (H/2, W/2). A blank image stays blank."""
    masks = (_planes(images) > 0.5).float().cpu()
    n, height, width = masks.shape
    mass = masks.flatten(1).sum(1).clamp_min(1.0)
    row = (masks.sum(2) * torch.arange(height)).sum(1) / mass
    col = (masks.sum(1) * torch.arange(width)).sum(1) / mass
    shift_r = torch.round(height / 2 - row).long()
    shift_c = torch.round(width / 2 - col).long()
    # moved[n, r, c] = masks[n, r - shift_r[n], c - shift_c[n]] (indices mod H, W): two gathers
    source_r = (torch.arange(height)[None, :] - shift_r[:, None]) % height                  # N x H
    source_c = (torch.arange(width)[None, :] - shift_c[:, None]) % width                    # N x W
    moved = masks.gather(1, source_r[:, :, None].expand(n, height, width))
    moved = moved.gather(2, source_c[:, None, :].expand(n, height, width))
    return moved.flatten(1)


@lru_cache(maxsize=2)
def shape_templates(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(720 x size*size centred masks of every sprite of the grid, the shape index of each)."""
    sprite_ids = np.arange(len(SHAPE_WORDS) * 6 * 40)          # shape * 240 + scale * 40 + orientation
    lo = (CANVAS - size) // 2
    canvases = torch.from_numpy(rasterise_sprites(sprite_ids)[:, lo:lo + size, lo:lo + size].astype(np.float32))
    return centred_masks(canvases), torch.from_numpy(sprite_ids // 240)


def shape_overlaps(images: torch.Tensor) -> np.ndarray:
    """float N x 3: per generated image (N x 1 x H x W probabilities), the best intersection over
    union with any template of each shape (SHAPE_WORDS order)."""
    masks = centred_masks(images)
    templates, template_shape = shape_templates(int(images.shape[-1]))
    inter = masks @ templates.T
    iou = inter / (masks.sum(1, keepdim=True) + templates.sum(1)[None, :] - inter).clamp_min(1.0)
    return torch.stack([iou[:, template_shape == k].max(1).values for k in range(len(SHAPE_WORDS))], 1).numpy()


def shape_summary(overlaps: np.ndarray, shape: np.ndarray) -> dict:
    """The best template's shape against the text's, and the margin, overall and per shape."""
    rows = np.arange(len(shape))
    others = overlaps.copy()
    others[rows, shape] = -np.inf
    margin = overlaps[rows, shape] - others.max(axis=1)
    match = (overlaps.argmax(axis=1) == shape) & (overlaps.max(axis=1) > 0)    # a blank image matches nothing
    by_shape = {word: (float(margin[shape == k].mean()) if (shape == k).any() else None)
                for k, word in enumerate(SHAPE_WORDS)}
    return {"match": float(match.mean()), "margin": float(margin.mean()), "margin_by_shape": by_shape}


def summarise(matches: np.ndarray, pixels: np.ndarray, labels: np.ndarray, label_names: list[str],
              overlaps: np.ndarray | None = None) -> dict:
    """The eval.json block: per-field text match rates, pixel rank correlations and, given the
    images' shape overlaps, the template shape measure."""
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
    summary = {"text_field_match": text, "image_pixel_spearman": image}
    if overlaps is not None:
        summary["image_shape_template"] = shape_summary(overlaps, labels[:, label_names.index("shape")])
    return summary
