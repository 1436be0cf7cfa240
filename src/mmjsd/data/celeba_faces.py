"""The synthetic CelebA stand-in (source "synthetic"): procedural faces in CelebA's on-disk layout.

`synthesize_folder` writes `count` faces as img_align_celeba/000001.jpg.. (178 x 218 JPEG) with
list_attr_celeba.txt and list_eval_partition.txt in the official formats, so the pipeline runs
with no real data; mmjsd.data.celeba reads the folder like any CelebA copy. Attributes are drawn
with per-sex frequencies measured on the official attribute file (`sample_attributes`). The
drawing (`render_faces`, one small function per layer) shows Male (squarer jaw, short vs long
hair, beard/moustache/sideburns), Smiling (mouth curve), Mouth_Slightly_Open, Eyeglasses, hair
colour (Black/Blond/Brown/Gray), Bald, Bangs, Wavy_Hair, Wearing_Hat, Wearing_Lipstick,
Heavy_Makeup, Pale_Skin, Rosy_Cheeks, Wearing_Earrings, Wearing_Necklace, Wearing_Necktie,
Narrow_Eyes, Bushy_Eyebrows, Chubby, Big_Lips, Blurry; the other attributes are labels only.
Every output made from it is labelled "synthetic": it tests the plumbing, not the paper's claims.

Each layer paints with one vectorised pass over all pixels of the batch (no per-pixel Python);
the random draws happen in a fixed order (geometry, colours, hat, stubble, noise), so a seed
gives the same faces.
"""

from __future__ import annotations

import argparse
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mmjsd.data.celeba import (
    A,
    ATTR_FILE,
    ATTRIBUTE_NAMES,
    IMAGE_DIR,
    PARTITION_FILE,
    RAW_HEIGHT,
    RAW_WIDTH,
    SYNTHETIC_MARKER,
    quiet,
    torchvision_io,
)
from mmjsd.core.files import atomic_folder
from mmjsd.errors import DataError


# --------------------------------------------------------------------------------------------
# Attributes
# --------------------------------------------------------------------------------------------

P_MALE = 0.417
P_GIVEN_MALE = np.array([
    0.266, 0.053, 0.279, 0.348, 0.054, 0.082, 0.156, 0.420, 0.298, 0.021, 0.057, 0.151, 0.244, 0.121,
    0.098, 0.124, 0.150, 0.086, 0.003, 0.308, 1.000, 0.425, 0.100, 0.120, 0.606, 0.220, 0.024, 0.162,
    0.117, 0.003, 0.135, 0.400, 0.242, 0.141, 0.016, 0.081, 0.006, 0.018, 0.174, 0.633])
P_GIVEN_FEMALE = np.array([
    0.000, 0.420, 0.679, 0.102, 0.000, 0.201, 0.301, 0.102, 0.197, 0.239, 0.046, 0.244, 0.069, 0.012,
    0.010, 0.023, 0.000, 0.011, 0.661, 0.560, 0.000, 0.526, 0.000, 0.111, 0.999, 0.330, 0.056, 0.360,
    0.053, 0.111, 0.000, 0.541, 0.184, 0.447, 0.313, 0.025, 0.806, 0.198, 0.000, 0.874])
HAIR_COLOURS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
HAIR_RGB = np.array([[28, 24, 24], [228, 198, 120], [110, 68, 38], [170, 170, 172],
                     [150, 72, 38]], dtype=np.float32)          # last: no labelled colour (auburn)


def sample_attributes(count: int, rng: np.random.Generator) -> np.ndarray:
    """bool count x 40 attributes with CelebA's per-sex frequencies and its exclusions
    (one hair colour at most, no hair colour when bald, beard only for men, ...)."""
    male = rng.random(count) < P_MALE
    p = np.where(male[:, None], P_GIVEN_MALE, P_GIVEN_FEMALE)
    attrs = rng.random((count, 40)) < p
    attrs[:, A["Male"]] = male
    # hair colour: one category (or none) per face, with the per-sex shares
    shares = np.where(male[:, None], P_GIVEN_MALE[[A[h] for h in HAIR_COLOURS]],
                      P_GIVEN_FEMALE[[A[h] for h in HAIR_COLOURS]])
    cumulative = np.cumsum(shares, axis=1)
    colour = (rng.random(count)[:, None] >= cumulative).sum(axis=1)          # 0..3, 4 = none
    bald = attrs[:, A["Bald"]]
    colour[bald] = 4
    for k, name in enumerate(HAIR_COLOURS):
        attrs[:, A[name]] = colour == k
    for name in ("Bangs", "Wavy_Hair", "Straight_Hair", "Receding_Hairline"):
        attrs[bald, A[name]] = False
    attrs[attrs[:, A["Wavy_Hair"]], A["Straight_Hair"]] = False
    # facial hair: men only; no goatee/moustache/sideburns without a beard
    no_beard = attrs[:, A["No_Beard"]] | ~male
    attrs[:, A["No_Beard"]] = no_beard
    beard_share = 1.0 - P_GIVEN_MALE[A["No_Beard"]]
    for name in ("Goatee", "Mustache", "Sideburns"):
        attrs[:, A[name]] = ~no_beard & (rng.random(count) < min(1.0, P_GIVEN_MALE[A[name]] / beard_share))
    attrs[~male, A["5_o_Clock_Shadow"]] = False
    # the mouth is open mostly when smiling (0.76 vs 0.22 in CelebA)
    smiling = attrs[:, A["Smiling"]]
    attrs[:, A["Mouth_Slightly_Open"]] = rng.random(count) < np.where(smiling, 0.76, 0.22)
    return attrs


# --------------------------------------------------------------------------------------------
# Drawing: a canvas, the per-face geometry and colours, one function per layer
# --------------------------------------------------------------------------------------------

@dataclass
class Canvas:
    """float32 B x H x W x 3 pixels being painted."""

    img: np.ndarray

    def paint(self, mask: np.ndarray, colour: np.ndarray, alpha: float = 1.0) -> None:
        """Set (or blend with weight alpha) the pixels under `mask` (broadcastable to
        B x H x W) to `colour` (B x 3 per image, or 3): work only on the masked pixels."""
        b = self.img.shape[0]
        where = np.nonzero(np.broadcast_to(mask, (b, RAW_HEIGHT, RAW_WIDTH)))
        if len(where[0]) == 0:
            return
        col = np.broadcast_to(np.asarray(colour, dtype=np.float32).reshape(-1, 3), (b, 3))[where[0]]
        self.img[where] = col if alpha == 1.0 else self.img[where] * (1 - alpha) + col * alpha


@dataclass
class Faces:
    """Per-face geometry (B x 1 x 1, broadcasting against the pixel grid X, Y) and colours (B x 3)."""

    attrs: np.ndarray            # bool B x 40
    X: np.ndarray                # pixel-centre columns, 1 x 1 x W
    Y: np.ndarray                # pixel-centre rows, 1 x H x 1
    cx: np.ndarray               # face centre
    cy: np.ndarray
    fa: np.ndarray               # half width
    fb: np.ndarray               # half height
    skin: np.ndarray | None = None
    hair: np.ndarray | None = None

    @property
    def b(self) -> int:
        return len(self.attrs)

    @property
    def dx(self) -> np.ndarray:
        return self.X - self.cx

    @property
    def dy(self) -> np.ndarray:
        return self.Y - self.cy

    def has(self, name: str) -> np.ndarray:
        return self.attrs[:, A[name]][:, None, None]


def face_geometry(attrs: np.ndarray, rng: np.random.Generator) -> Faces:
    b = len(attrs)

    def param(values) -> np.ndarray:
        return np.asarray(values, dtype=np.float32).reshape(b, 1, 1)

    Y = np.arange(RAW_HEIGHT, dtype=np.float32)[None, :, None] + 0.5
    X = np.arange(RAW_WIDTH, dtype=np.float32)[None, None, :] + 0.5
    cx = param(89 + rng.normal(0, 2.0, b))
    cy = param(124 + rng.normal(0, 2.0, b))
    fa = param(35 + rng.normal(0, 1.2, b) + 3 * attrs[:, A["Male"]] + 4 * attrs[:, A["Chubby"]])
    fb = param(47 + rng.normal(0, 1.2, b))
    return Faces(attrs, X, Y, cx, cy, fa, fb)


def background(f: Faces, rng: np.random.Generator) -> Canvas:
    """A random muted colour with a vertical light gradient."""
    bg = rng.uniform(60, 220, (f.b, 3)).astype(np.float32)
    img = np.broadcast_to(bg[:, None, None, :], (f.b, RAW_HEIGHT, RAW_WIDTH, 3)) * (1.05 - 0.25 * f.Y[..., None] / RAW_HEIGHT)
    return Canvas(np.ascontiguousarray(img, dtype=np.float32))


def choose_colours(f: Faces, rng: np.random.Generator) -> np.ndarray:
    """Sets the skin and hair colours of `f`; returns the clothes' colours."""
    b, attrs = f.b, f.attrs
    tone = rng.uniform(0, 0.55, (b, 1))
    skin = np.array([238, 200, 172], np.float32) * (1 - tone) + np.array([120, 80, 58], np.float32) * tone
    f.skin = np.where(attrs[:, [A["Pale_Skin"]]], np.array([250, 228, 214], np.float32), skin).astype(np.float32)
    colour = np.full(b, 4)
    for k, name in enumerate(HAIR_COLOURS):
        colour[attrs[:, A[name]]] = k
    f.hair = (HAIR_RGB[colour] * rng.uniform(0.9, 1.1, (b, 1))).clip(0, 255).astype(np.float32)
    return rng.uniform(20, 230, (b, 3)).astype(np.float32)


def paint_body(canvas: Canvas, f: Faces, cloth: np.ndarray) -> None:
    """Torso, long hair behind the head (women), short hair (men), neck, ears."""
    dx, dy, Y, fa, fb, cy = f.dx, f.dy, f.Y, f.fa, f.fb, f.cy
    male, bald = f.has("Male"), f.has("Bald")
    canvas.paint(((dx / 80) ** 2 + ((Y - 242) / 62) ** 2) <= 1, cloth)
    wave = np.where(f.has("Wavy_Hair"), 4 * np.sin(Y / 5.0), 0)
    long_hair = ~male & ~bald & (((np.abs(dx) - wave) / (fa + 17)) ** 2 + ((dy - 12) / (fb + 40)) ** 2 <= 1) & (Y < cy + fb + 38)
    canvas.paint(long_hair, f.hair)
    short_hair = male & ~bald & ((dx / (fa + 5)) ** 2 + ((dy + 8) / (fb + 7)) ** 2 <= 1) & (dy < 0)
    canvas.paint(short_hair, f.hair)
    canvas.paint((np.abs(dx) < fa * 0.45) & (dy > 0) & (Y < cy + fb + 32), f.skin * 0.88)
    canvas.paint((((np.abs(dx) - fa) / 5) ** 2 + (dy / 9) ** 2) <= 1, f.skin * 0.95)


def paint_face(canvas: Canvas, f: Faces) -> np.ndarray:
    """The face (squarer jaw for men: a super-ellipse exponent on the lower half) and the hair
    over the forehead (lower hairline with bangs, higher when receding; none when bald) and
    sideburns. Returns the face mask."""
    dx, dy, Y, fa, fb, cy = f.dx, f.dy, f.Y, f.fa, f.fb, f.cy
    p = np.where(f.has("Male") & (dy > 0), 2.8, 2.0)
    face = (np.abs(dx) / fa) ** p + (np.abs(dy) / fb) ** p <= 1
    canvas.paint(face, f.skin)
    hairline = cy - fb * np.where(f.has("Bangs"), 0.2, np.where(f.has("Receding_Hairline"), 0.62, 0.45))
    canvas.paint(~f.has("Bald") & ((dx / (fa + 3)) ** 2 + ((dy + 5) / (fb + 6)) ** 2 <= 1) & (Y < hairline), f.hair)
    canvas.paint(f.has("Sideburns") & face & (np.abs(dx) > fa - 7) & (np.abs(dy + 5) < 14), f.hair)
    return face


def paint_hat(canvas: Canvas, f: Faces, rng: np.random.Generator) -> None:
    """Crown and brim (the colour is drawn for every face, worn or not)."""
    dx, Y, fa, fb, cy, hat = f.dx, f.Y, f.fa, f.fb, f.cy, f.has("Wearing_Hat")
    hat_colour = rng.uniform(10, 240, (f.b, 3)).astype(np.float32)
    canvas.paint(hat & (np.abs(dx) < fa + 6) & (Y > cy - fb - 16) & (Y < cy - fb * 0.5), hat_colour)
    canvas.paint(hat & (np.abs(dx) < fa + 16) & (np.abs(Y - (cy - fb * 0.5)) < 3), hat_colour * 0.8)


def paint_eyes(canvas: Canvas, f: Faces) -> None:
    """Eyes, brows, make-up, cheeks, glasses and earrings, one side at a time."""
    X, Y, cx, cy, fa, dx = f.X, f.Y, f.cx, f.cy, f.fa, f.dx
    ey = cy - 6
    glasses = f.has("Eyeglasses")
    dark = np.array([25, 25, 30], np.float32)
    for side in (-1.0, 1.0):
        ex = cx + side * 15
        ddx, ddy = X - ex, Y - ey
        canvas.paint(f.has("Heavy_Makeup") & ((ddx / 9) ** 2 + ((ddy + 3) / 6) ** 2 <= 1), np.array([120, 70, 110], np.float32), 0.6)
        eye_h = np.where(f.has("Narrow_Eyes"), 1.8, 3.3)
        canvas.paint((ddx / 7) ** 2 + (ddy / eye_h) ** 2 <= 1, np.array([245, 245, 245], np.float32))
        canvas.paint(ddx ** 2 + ddy ** 2 <= np.minimum(2.7, eye_h) ** 2, np.array([40, 30, 25], np.float32))
        brow_t = np.where(f.has("Bushy_Eyebrows"), 2.4, 1.2)
        canvas.paint((np.abs(ddx) < 8) & (np.abs(ddy + 9 + 0.04 * ddx ** 2) < brow_t), f.hair * 0.7)
        canvas.paint(f.has("Rosy_Cheeks") & ((ddx ** 2 + (ddy - 17) ** 2) <= 36), np.array([230, 90, 100], np.float32), 0.45)
        ring = np.sqrt((ddx / 11) ** 2 + (ddy / 8.5) ** 2)
        canvas.paint(glasses & (ring <= 0.86), np.array([200, 220, 235], np.float32), 0.25)
        canvas.paint(glasses & (ring > 0.86) & (ring <= 1.1), dark)
        canvas.paint(glasses & (np.abs(ddy + 1) < 1.2) & (side * ddx > 10.5) & (np.abs(dx) < fa), dark)
        canvas.paint(f.has("Wearing_Earrings") & (((X - (cx + side * (fa + 1))) ** 2 + (Y - (cy + 14)) ** 2) <= 7),
                     np.array([240, 200, 60], np.float32))
    canvas.paint(glasses & (np.abs(Y - ey) < 1.2) & (np.abs(dx) < 4.5), dark)


def paint_nose(canvas: Canvas, f: Faces) -> None:
    dx, dy = f.dx, f.dy
    canvas.paint((np.abs(dx) < 1.3) & (dy > -2) & (dy < 12), f.skin * 0.8)
    canvas.paint((np.abs(dx) < 5) & (np.abs(dy - 12) < 1.3), f.skin * 0.75)


def paint_facial_hair(canvas: Canvas, f: Faces, face: np.ndarray, rng: np.random.Generator) -> None:
    """Beard, goatee, stubble (random pixels) and moustache, under the mouth layer."""
    dx, dy, Y, my = f.dx, f.dy, f.Y, f.cy + 26
    beard = ~f.has("No_Beard") & face & (dy > 12)
    canvas.paint(beard & ~f.has("Goatee"), f.hair * 0.9, 0.85)
    canvas.paint(f.has("Goatee") & face & (np.abs(dx) < 11) & (Y > my + 2), f.hair * 0.9)
    canvas.paint(f.has("5_o_Clock_Shadow") & face & (dy > 14) & (rng.random((f.b, RAW_HEIGHT, RAW_WIDTH)) < 0.35),
                 f.hair * 0.6, 0.5)
    canvas.paint(f.has("Mustache") & (np.abs(dx) < 14) & (Y > my - 7) & (Y < my - 2.5), f.hair * 0.8)


def paint_mouth(canvas: Canvas, f: Faces) -> None:
    """A smile bends the corners up; an open mouth shows a dark gap (teeth if smiling)."""
    dx, Y, my = f.dx, f.Y, f.cy + 26
    smiling = f.has("Smiling")
    half_w = np.where(smiling, 14.0, 11.5)
    bend = np.where(smiling, 6.0, 0.0)
    curve = my + bend * (0.5 - (dx / half_w) ** 2)          # smiling: centre 3 px down, corners 3 px up
    inside = np.abs(dx) < half_w
    open_gap = f.has("Mouth_Slightly_Open") & inside & (Y > curve) & (Y < curve + 5.5 * (1 - (dx / half_w) ** 2))
    canvas.paint(open_gap, np.array([70, 20, 25], np.float32))
    canvas.paint(open_gap & smiling & (Y < curve + 2.2), np.array([240, 240, 235], np.float32))
    lips = np.where(f.has("Wearing_Lipstick"), 1.0, 0.0)
    lip_colour = (np.array([195, 35, 60], np.float32) * lips[:, 0, 0, None] + f.skin * 0.62 * (1 - lips[:, 0, 0, None]))
    lip_t = np.where(f.has("Big_Lips"), 2.6, 1.6)
    canvas.paint(inside & (np.abs(Y - curve) < lip_t), lip_colour)


def paint_neckwear(canvas: Canvas, f: Faces) -> None:
    """Necklace and tie."""
    dx, Y, cy, fb = f.dx, f.Y, f.cy, f.fb
    canvas.paint(f.has("Wearing_Necklace") & (np.abs(Y - (cy + fb + 24 + 0.015 * dx ** 2)) < 1.5) & (np.abs(dx) < 26),
                 np.array([235, 205, 80], np.float32))
    canvas.paint(f.has("Wearing_Necktie") & (np.abs(dx) < 4 + (Y - cy - fb - 30) * 0.12) & (Y > cy + fb + 30),
                 np.array([150, 20, 30], np.float32))


def finish(canvas: Canvas, f: Faces, rng: np.random.Generator) -> np.ndarray:
    """Blur the Blurry faces, add sensor noise, round to uint8 B x H x W x 3."""
    out = torch.from_numpy(canvas.img).permute(0, 3, 1, 2)
    blurry = torch.from_numpy(f.attrs[:, A["Blurry"]])
    if blurry.any():
        soft = torch.nn.functional.avg_pool2d(out[blurry], 5, stride=1, padding=2, count_include_pad=False)
        out[blurry] = soft
    out = out.permute(0, 2, 3, 1).numpy() + rng.normal(0, 3.0, (f.b, RAW_HEIGHT, RAW_WIDTH, 3)).astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def render_faces(attrs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 B x 218 x 178 x 3 faces for bool B x 40 attributes, layer by layer."""
    f = face_geometry(np.asarray(attrs, dtype=bool), rng)
    canvas = background(f, rng)
    cloth = choose_colours(f, rng)
    paint_body(canvas, f, cloth)
    face = paint_face(canvas, f)
    paint_hat(canvas, f, rng)
    paint_eyes(canvas, f)
    paint_nose(canvas, f)
    paint_facial_hair(canvas, f, face, rng)
    paint_mouth(canvas, f)
    paint_neckwear(canvas, f)
    return finish(canvas, f, rng)


# --------------------------------------------------------------------------------------------
# The folder
# --------------------------------------------------------------------------------------------

def _attribute_file(names: list[str], attrs: np.ndarray) -> str:
    """list_attr_celeba.txt in the official format (CRLF, '%2d' values, trailing space on line 2)."""
    signs = np.where(attrs, " 1", "-1")
    rows = [name + " " + " ".join(row) for name, row in zip(names, signs.tolist())]
    return "\r\n".join([str(len(names)), " ".join(ATTRIBUTE_NAMES) + " ", *rows]) + "\r\n"


def _encode_jpegs(faces: np.ndarray, quality: int = 92) -> list[bytes]:
    """B x H x W x 3 uint8 -> JPEG bytes (torchvision's batched encoder, else PIL)."""
    codec = torchvision_io()
    if codec is None:  # pragma: no cover
        blobs = []
        for face in faces:
            buffer = io.BytesIO()
            Image.fromarray(face).save(buffer, format="JPEG", quality=quality)
            blobs.append(buffer.getvalue())
        return blobs
    chw = torch.from_numpy(faces).permute(0, 3, 1, 2).contiguous()
    return [data.numpy().tobytes() for data in quiet(codec[2], list(chw), quality=quality)]


def synthesize_folder(out: str | Path, count: int, seed: int, batch: int = 64) -> Path:
    """Write `count` synthetic faces in CelebA's on-disk layout to `out`, atomically.

    Files: img_align_celeba/000001.jpg.. (178 x 218 JPEG), list_attr_celeba.txt,
    list_eval_partition.txt (the first 90% partition 0 = train, the last 10% partition 1 =
    valid, ordered like the official file; no partition 2), README.md and the SYNTHETIC
    marker. Everything is written to a temporary folder next to `out` and renamed into place
    at the end (files.atomic_folder).
    """
    out = Path(out)
    if count < 1:
        raise DataError(f"synthetic_count must be positive, got {count}", "set data.celeba.synthetic_count >= 8")
    rng = np.random.default_rng(seed)
    attrs = sample_attributes(count, rng)
    names = [f"{i:06d}.jpg" for i in range(1, count + 1)]
    # train first, then 'valid' (the split the authors evaluate on); no test partition (2),
    # which the pipeline never uses, so no synthetic face is wasted
    n_valid = max(2, round(count * 0.1))
    partition = np.r_[np.zeros(count - n_valid, int), np.ones(n_valid, int)]
    with atomic_folder(out) as tmp:
        (tmp / IMAGE_DIR).mkdir()
        for lo in range(0, count, batch):
            faces = render_faces(attrs[lo:lo + batch], rng)
            for name, data in zip(names[lo:lo + batch], _encode_jpegs(faces)):
                (tmp / IMAGE_DIR / name).write_bytes(data)
        (tmp / ATTR_FILE).write_bytes(_attribute_file(names, attrs).encode("ascii"))
        (tmp / PARTITION_FILE).write_bytes("".join(f"{n} {p}\r\n" for n, p in zip(names, partition)).encode("ascii"))
        (tmp / SYNTHETIC_MARKER).write_text(f"mmjsd synthetic CelebA stand-in: count={count} seed={seed}\n")
        (tmp / "README.md").write_text(
            "# Synthetic CelebA stand-in (NOT real data)\n\n"
            f"{count} procedural faces written by `mmjsd celeba-synthesize` (seed {seed}) in the layout of\n"
            "torchvision's CelebA folder. Attributes are sampled with CelebA's per-sex frequencies; the\n"
            "drawing shows sex, smile, open mouth, glasses, hair colour, baldness, hat, make-up and more.\n"
            "Every result computed from this folder is labelled 'synthetic' and says nothing about the paper.\n")
    return out


def cli_synthesize(args: argparse.Namespace, config: dict) -> int:
    settings = config["data"]["celeba"]
    folder = synthesize_folder(args.out, settings["synthetic_count"], settings["seed"])
    print(f"celeba-synthesize: {folder}: {settings['synthetic_count']} synthetic faces (seed {settings['seed']}), "
          f"labelled 'synthetic' (a stand-in, not CelebA)")
    return 0
