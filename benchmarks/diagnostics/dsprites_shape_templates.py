"""Shape of generated dSprites images without a classifier: the best-overlapping rendered sprite.

    python benchmarks/diagnostics/dsprites_shape_templates.py SPLIT.pt MODEL.pt [MODEL.pt ...]
    e.g. data/repro/processed/dsprites/test.pt results/repro/runs/dsprites/mmjsd/seed0/model.pt

Every sprite of the grid (3 shapes x 6 scales x 40 orientations, our renderer's own rasteriser)
is a template, moved so that its centroid sits at the image centre. A generated image (from a
seeded draw of 3,000 test texts) is thresholded at 0.5, moved the same way, and compared with
every template by intersection over union. Printed per model: the share of images whose
best template has the text's shape, and the mean margin IoU(best template of the text's shape)
- IoU(best template of another shape). The real test images of the same rows are scored first:
the measure's own ceiling. A disc, which is no shape of the grid, gets a margin near 0 whatever
it is called. (docs/FIDELITY.md, G3: the two image classifiers disagree on such discs.)
"""

import sys

import numpy as np
import torch

from mmjsd.data.dsprites_render import CANVAS, rasterise_sprites
from mmjsd.data.processed import model_input
from mmjsd.models import load_model

ROWS, SIZE = 3000, 64
SHAPES = ("square", "ellipse", "heart")


def centred(masks: torch.Tensor) -> torch.Tensor:
    """N x H x W binary masks, each rolled so that its centroid is at pixel (H/2, W/2)."""
    n, height, width = masks.shape
    mass = masks.flatten(1).sum(1).clamp(min=1)
    rows = (masks.sum(2) * torch.arange(height)).sum(1) / mass
    cols = (masks.sum(1) * torch.arange(width)).sum(1) / mass
    out = torch.empty_like(masks)
    for i in range(n):   # a roll per image: 3,000 cheap calls, not a per-pixel loop
        out[i] = torch.roll(masks[i], (int(round(height / 2 - rows[i].item())), int(round(width / 2 - cols[i].item()))), (0, 1))
    return out


def templates() -> tuple[torch.Tensor, np.ndarray]:
    """720 x (64*64) centred sprite masks and each one's shape index."""
    ids = np.arange(3 * 6 * 40)
    lo = (CANVAS - SIZE) // 2
    canvases = torch.from_numpy(rasterise_sprites(ids)[:, lo:lo + SIZE, lo:lo + SIZE].astype(np.float32))
    return centred(canvases).flatten(1), ids // 240


def score(images: torch.Tensor, shape: np.ndarray, bank: torch.Tensor, bank_shape: np.ndarray) -> str:
    masks = centred((images.float().reshape(-1, SIZE, SIZE) > 0.5).float()).flatten(1)
    inter = masks @ bank.T
    iou = inter / (masks.sum(1, keepdim=True) + bank.sum(1)[None] - inter).clamp(min=1)
    best = torch.stack([iou[:, bank_shape == s].max(1).values for s in range(3)], 1)      # N x 3
    own = best[torch.arange(len(shape)), torch.from_numpy(shape)]
    other = best.clone()
    other[torch.arange(len(shape)), torch.from_numpy(shape)] = -1
    right = best.argmax(1).numpy() == shape
    margin = (own - other.max(1).values).numpy()
    per_shape = ", ".join(f"{name} {right[shape == s].mean():.2f} ({margin[shape == s].mean():+.3f})" for s, name in enumerate(SHAPES))
    return f"best template has the shape {right.mean():.3f}, mean margin {margin.mean():+.3f}; by shape: {per_shape}"


@torch.no_grad()
def main(split_path: str, models: list[str]) -> None:
    split = torch.load(split_path, weights_only=False)
    rows = torch.sort(torch.randperm(split["labels"].shape[0], generator=torch.Generator().manual_seed(0))[:ROWS]).values
    shape = split["labels"][rows, list(split["label_names"]).index("shape")].numpy()
    bank, bank_shape = templates()
    print(f"real test images: {score(model_input('img', split['images'][rows]), shape, bank, bank_shape)}")
    for path in models:
        model = load_model(path).eval()
        images = model.generate({"text": model_input("text", split["text"][rows])}, "img", generator=torch.Generator().manual_seed(0))
        print(f"{path}: images from text: {score(images, shape, bank, bank_shape)}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
