"""Does the image style carry the sprite's rotation, or the content? (pose and upright image decoders)

    python benchmarks/diagnostics/dsprites_pose_rotation.py MODEL_OR_CHECKPOINT OUT.png

MODEL_OR_CHECKPOINT: a run's model.pt, or a paused checkpoint.pt (its "spec" and "model").
For each shape, the 40 orientations of one sprite (scale 1, centre of the image) are rendered by
the stand-in renderer and encoded by the image encoder. Printed per shape:
- the angle that the pose decoder's MLP gives to each image's style mean: its mean and spread
  over the 40 orientations (a style that turns the sprite spreads over the shape's period:
  square 90 degrees, ellipse 180, heart 360);
- "turns with the style": the template IoU between (a) the sprite decoded from the upright
  image's content with each rotated image's style mean and (b) the true rotated sprite, against
  (c) the same with the rotated image's own content. If the style carries the rotation, (a) is
  near (c); if the content carries it, (a) stays at the upright sprite's overlap.
The figure: rows per shape, the true sprites at 8 orientations, then (a), then (c).
Then Table 1b's probe (a logistic regression fitted on 256 rows, `evaluate.latent_accuracy`) on the
image content means of 2,256 seeded grid rows, scored on the other 2,000: once over all 40
orientations, once with the orientation held at one value. If the probe reads shape and scale
when the rotation is held fixed and not otherwise, the rotation held in the content is what
bends it.
"""

import math
import sys

import matplotlib
import numpy as np
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mmjsd.data.dsprites import ROW_STRIDES  # noqa: E402
from mmjsd.data.dsprites_render import render_rows  # noqa: E402
from mmjsd.data.processed import model_input  # noqa: E402
from mmjsd.evaluate import latent_accuracy  # noqa: E402
from mmjsd.models import build_model, load_model  # noqa: E402
from mmjsd.networks.dsprites import UPRIGHT_ANGLE_SCALE, PoseImageDecoder, UprightImageDecoder  # noqa: E402

SHAPES = ["square", "ellipse", "heart"]
SYMMETRY = {"square": 4, "ellipse": 2, "heart": 1}   # the sprite repeats after 2*pi / k


def grid_rows(shape, scale, orientation, pos_x, pos_y) -> np.ndarray:
    """Rows of the official factor grid for the given class indices (scalars or arrays)."""
    classes = np.stack(np.broadcast_arrays(0, shape, scale, orientation, pos_x, pos_y), axis=-1)
    return classes @ np.array(ROW_STRIDES)


def image_posterior(model, images: torch.Tensor):
    """The image posterior of renderer images (0/1 floats); stored splits hold uint8 0/255 (prepare)."""
    return model.encode_unimodal({"img": model_input("img", (images * 255).to(torch.uint8))})["img"]


def load(path: str):
    state = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(state, dict) and "spec" in state and "model" in state and "position" in state:
        model = build_model(state["spec"])
        model.load_state_dict(state["model"])
        return model.eval()
    return load_model(path).eval()


def iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a > 0.5, b > 0.5
    return (a & b).flatten(1).sum(1) / (a | b).flatten(1).sum(1).clamp_min(1)


@torch.no_grad()
def main(model_path: str, out: str) -> None:
    model = load(model_path)
    decoder = model.decoders["img"]
    if isinstance(decoder, UprightImageDecoder):
        angle_of = lambda style: UPRIGHT_ANGLE_SCALE * style[:, 0]   # noqa: E731
    elif isinstance(decoder, PoseImageDecoder) and decoder.rotate:
        angle_of = lambda style: decoder.pose(style)[:, 2]           # noqa: E731
    else:
        raise SystemExit("mmjsd: error: this model has no turning image decoder -- fix: pass a "
                         "model trained with image_decoder: pose or upright")
    style_dim = decoder.style_dim
    fig, axes = plt.subplots(9, 8, figsize=(8, 9.5))
    for s, shape in enumerate(SHAPES):
        rendered = render_rows(grid_rows(s, 5, np.arange(40), 16, 16))
        images = torch.from_numpy(rendered["imgs"]).float().unsqueeze(1)
        posterior = image_posterior(model, images)
        style, content = posterior.style_mu.float(), posterior.content_mu.float()
        angle = angle_of(style).float()
        upright_content = content[:1].expand_as(content)
        swapped = model.to_data("img", model.decode(upright_content, {"img": style})["img"])
        own = model.to_data("img", model.decode(content, {"img": style})["img"])
        iou_swapped, iou_own = iou(swapped, images), iou(own, images)
        iou_upright = iou(images[:1].expand_as(images), images)
        print(f"{shape:8s} pose angle over the 40 orientations: mean {math.degrees(float(angle.mean())):+.2f} deg, "
              f"sd {math.degrees(float(angle.std())):.3f} deg (the sprite turns {360 // SYMMETRY[shape]} deg "
              f"before it repeats) | IoU with the true sprite: "
              f"upright content + rotated style {float(iou_swapped.mean()):.3f}, own content + own style "
              f"{float(iou_own.mean()):.3f}, the upright sprite itself {float(iou_upright.mean()):.3f} "
              f"(style dims {style_dim}, style sd {posterior.style_logvar.float().mul(0.5).exp().mean(0).tolist()})")
        for col, o in enumerate(range(0, 40, 5)):
            for r, picture in enumerate((images, swapped, own)):
                axis = axes[3 * s + r, col]
                axis.imshow(picture[o, 0].numpy(), cmap="gray", vmin=0, vmax=1)
                axis.axis("off")
        axes[3 * s, 0].set_title(f"{shape}: true", fontsize=7, loc="left")
        axes[3 * s + 1, 0].set_title("upright content + its style", fontsize=7, loc="left")
        axes[3 * s + 2, 0].set_title("own content + own style", fontsize=7, loc="left")
    fig.tight_layout()
    fig.savefig(out, dpi=80)

    rng = np.random.default_rng(0)
    all_orientations = rng.integers(0, 3 * 6 * 40 * 32 * 32, 2256)
    shape, scale, pos_x, pos_y = (rng.integers(0, n, 2256) for n in (3, 6, 32, 32))
    draw = {"all orientations": all_orientations, "orientation 0 only": grid_rows(shape, scale, 0, pos_x, pos_y)}
    for name, rows in draw.items():
        rendered = render_rows(rows)   # sorted and unique: shuffle again so the fit rows are a sample
        order = rng.permutation(len(rendered["rows"]))
        images = torch.from_numpy(rendered["imgs"][order]).float().unsqueeze(1)
        classes = rendered["latents_classes"][order]
        means = image_posterior(model, images).content_mu.float().numpy()
        cells = []
        for factor, column in (("shape", 1), ("scale", 2)):
            score = latent_accuracy(means[:256], classes[:256, column], means[256:], classes[256:, column])
            cells.append(f"{factor} {score.accuracy:.3f}")
        print(f"image content probe, {name:18s} ({len(order)} rows, 256 to fit): " + ", ".join(cells))


if __name__ == "__main__":
    main(*sys.argv[1:3])
