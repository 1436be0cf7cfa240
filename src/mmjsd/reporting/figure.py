"""Figure 1: CelebA faces generated from text strings, one panel per model, side by side.

Rows: the strings of `eval.figure.texts`, then `eval.figure.real_test_texts` texts of real
test images (rows of the CelebA `test` split, conditioned on exactly as stored), as the authors'
conditional figures do. They are taken in turn from the combinations of Figure 1's attributes
(verdict.CAPTION_ATTRIBUTES: male and smiling, male, smiling, neither), the first unused row of
each in split order, so the eye can compare rows whose text says "male" with rows whose does not;
each row label starts with what its text says of those attributes.
Columns: `eval.figure.samples_per_row` faces per string. The content is the text posterior's
mean (the models' `generate`); the image style is drawn from N(0, I) by a generator reseeded
with `eval.figure.seed` for every row and model, so column j uses the same style draw in every
row and panel (rows differ by content only, as in the paper's Figure 1).
Configured strings are padded with '*' to the dataset's text length at a seeded random start
(mmjsd.data.text); a character outside the alphabet is a DataError.
The model drawn is the run with training seed `eval.figure.seed`. Under each panel's name: that
run's conditioning gaps from its eval.json (mmjsd.evaluation.evaluate: P(attribute) on faces from strings
naming it minus the others), so the figure carries its number.
Rendered with matplotlib's Agg backend at a fixed size and dpi (no tight bounding box), so
the pixel size follows from the grid alone (`figure_pixel_size`).
"""

from __future__ import annotations

import argparse
import io
import itertools
import textwrap

import numpy as np
import torch

from mmjsd.core import files, paths
from mmjsd.core.vocabulary import MODELS, SOURCE_DESCRIPTIONS
from mmjsd.data.processed import load_checked_split
from mmjsd.data.text import decode, encode_at_seeded_starts, strip_padding
from mmjsd.errors import DataError
from mmjsd.models import load_run_model
from mmjsd.models.base import per_modality
from mmjsd.reporting import verdict
from mmjsd.reporting.paper import MODEL_LABELS

PANEL_ORDER = MODELS              # the brief's order: mmJSD left, mmPoE right
DPI = 100
CELL_PX = 64                       # one generated face per 64 x 64 pixels, shown 1:1
LABEL_PX = 400                     # room for the row texts left of the first panel
GAP_PX = 24                        # between panels
TITLE_PX = 60
PANEL_TITLE_PX = 26
MARGIN_PX = 8
TITLE_PX_PER_CHAR = 8
LABEL_CHARS = 64                   # longer row texts are cut with '...'


def figure_grid_shape(config: dict) -> tuple[int, int]:
    """(rows, cols) of one model's panel: one row per text, samples_per_row faces per row."""
    figure = config["eval"]["figure"]
    return len(figure["texts"]) + int(figure["real_test_texts"]), int(figure["samples_per_row"])


def figure_pixel_size(rows: int, cols: int, n_panels: int) -> tuple[int, int]:
    """(width, height) in pixels of the PNG for a grid of rows x cols faces per panel."""
    width = LABEL_PX + n_panels * cols * CELL_PX + (n_panels - 1) * GAP_PX + MARGIN_PX
    height = TITLE_PX + PANEL_TITLE_PX + rows * CELL_PX + MARGIN_PX
    return width, height


def balanced_test_rows(test: dict, n: int) -> list[int]:
    """`n` row indices of `test`, taken in turn from each combination of the caption attributes
    (all present first, none last; the first unused row of each, in split order). A combination
    with no rows left is skipped; without those attributes, the first `n` rows."""
    names = list(test.get("label_names", []))
    attributes = [names.index(a) for a in verdict.CAPTION_ATTRIBUTES if a in names]
    if not attributes or "labels" not in test:
        return list(range(min(n, int(test["text"].shape[0]))))
    present = (test["labels"][:, attributes] > 0).numpy()
    combinations = list(itertools.product([True, False], repeat=len(attributes)))
    queues = {c: iter(np.flatnonzero((present == np.array(c)).all(axis=1)).tolist()) for c in combinations}
    rows: list[int] = []
    while len(rows) < n and queues:
        for combination in combinations:
            if combination in queues and len(rows) < n:
                row = next(queues[combination], None)
                if row is None:
                    del queues[combination]
                else:
                    rows.append(row)
    return rows


def said_attributes(test: dict, row: int) -> str:
    """'male, not smiling': what the text of `test` row `row` says of the caption attributes."""
    names = list(test.get("label_names", []))
    said = [("" if test["labels"][row, names.index(a)] > 0 else "not ") + a.replace("_", " ").lower()
            for a in verdict.CAPTION_ATTRIBUTES if a in names and "labels" in test]
    return ", ".join(said)


def figure_texts(config: dict, test: dict) -> tuple[list[str], torch.Tensor]:
    """(row labels, encoded rows uint8 R x L): configured strings, then real test texts."""
    figure = config["eval"]["figure"]
    configured = list(figure["texts"])
    length, alphabet = int(test["text"].shape[1]), test["alphabet"]
    encoded = [encode_at_seeded_starts(configured, length, alphabet, int(figure["seed"]))] if configured else []
    rows = balanced_test_rows(test, int(figure["real_test_texts"]))
    real = test["text"][rows]
    said = [said_attributes(test, row) for row in rows]
    labels = configured + [(f"[test: {s}] " if s else "[test] ") + text for s, text in zip(said, strip_padding(decode(real, alphabet)))]
    encoded.append(real.to(torch.uint8))
    return labels, torch.cat(encoded)


@torch.no_grad()
def generate_panel(model, encoded: torch.Tensor, cols: int, seed: int) -> torch.Tensor:
    """Faces rows x cols x C x 64 x 64 in [0, 1]; the style generator is reseeded per row."""
    model.eval()
    rows = []
    for row in encoded.long():
        generator = torch.Generator().manual_seed(seed)
        rows.append(model.generate({"text": row.unsqueeze(0).repeat(cols, 1)}, "img", generator=generator).float())
    return torch.stack(rows).clamp(0.0, 1.0)


def montage(faces: torch.Tensor) -> np.ndarray:
    """rows x cols x C x H x W -> (rows*H) x (cols*W) x 3 array in [0, 1]."""
    rows, cols, channels, height, width = faces.shape
    if channels == 1:
        faces = faces.repeat(1, 1, 3, 1, 1)
    return faces[:, :, :3].permute(0, 3, 1, 4, 2).reshape(rows * height, cols * width, 3).numpy()


def _short(text: str) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= LABEL_CHARS else text[:LABEL_CHARS - 3] + "..."


def render_figure(panels: dict[str, torch.Tensor], row_labels: list[str], title: str,
                  captions: dict[str, str] | None = None) -> bytes:
    """PNG bytes of the panels (name -> faces rows x cols x C x 64 x 64) with row texts at the left;
    `captions` (name -> text) go under the panel names."""
    import matplotlib   # here, not at the top: slow to import, and only the figure step draws

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    rows, cols = next(iter(panels.values())).shape[:2]
    width, height = figure_pixel_size(rows, cols, len(panels))
    # A quarter pixel of slack: matplotlib truncates size * dpi to whole pixels.
    figure = Figure(figsize=((width + 0.25) / DPI, (height + 0.25) / DPI), dpi=DPI)
    # Wrapped by hand: matplotlib's wrap=True lets a centred line run past the left edge.
    # Fontsize 9 at 100 dpi is 12.5 px per em; DejaVu Sans averages about 0.6 em per character
    # (7.5 px), so 8 px per character keeps every line inside the figure. The band holds three lines.
    wrapped = textwrap.fill(title, width=max(40, (width - 2 * MARGIN_PX) // TITLE_PX_PER_CHAR), max_lines=3, placeholder=" ...")
    figure.text(0.5, 1 - (TITLE_PX / 2) / height, wrapped, ha="center", va="center", fontsize=9)
    grid_top = TITLE_PX + PANEL_TITLE_PX
    grid_height = rows * CELL_PX
    for index, (name, faces) in enumerate(panels.items()):
        left = LABEL_PX + index * (cols * CELL_PX + GAP_PX)
        axes = figure.add_axes([left / width, 1 - (grid_top + grid_height) / height,
                                cols * CELL_PX / width, grid_height / height])
        axes.imshow(montage(faces), interpolation="nearest", aspect="auto", vmin=0.0, vmax=1.0)
        axes.set_axis_off()
        caption = (captions or {}).get(name)
        label = f"{name}: {caption}" if caption else name
        figure.text((left + cols * CELL_PX / 2) / width, 1 - (TITLE_PX + PANEL_TITLE_PX / 2) / height, label,
                    ha="center", va="center", fontsize=8 if caption else 9, fontweight="bold")
    for row, label in enumerate(row_labels):
        y = 1 - (grid_top + (row + 0.5) * CELL_PX) / height
        figure.text((LABEL_PX - 6) / width, y, _short(label), ha="right", va="center", fontsize=7, family="monospace")
    buffer = io.BytesIO()
    # Fixed metadata: no version string or date in the file, so equal inputs give equal bytes.
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


NO_IMAGE_STYLE = "no image style at this scale, so a row's faces are equal"   # title and report caption


def image_style_dim(config: dict) -> int:
    """The CelebA image style's size at this scale (0: nothing varies along a row)."""
    return per_modality(config["model"]["celeba"]["style_dim"], int)["img"]


def figure_title(config: dict, source: str) -> str:
    scale = config["scale"]
    scale_text = "paper scale" if scale == "paper" else f"{scale.upper()} SCALE (not the paper's training budget)"
    styles = "styles ~ N(0, I)" if image_style_dim(config) else NO_IMAGE_STYLE
    return (f"Figure 1 (CelebA): faces generated from text, {styles}. {scale_text}; "
            f"data: {source} ({SOURCE_DESCRIPTIONS.get(source, 'unknown source')}); model seed {config['eval']['figure']['seed']}")


def draw_figure(config: dict, models: dict[str, object], test: dict, evaluations: dict[str, dict] | None = None) -> bytes:
    """Figure 1 for already loaded models (name -> model) and their eval.json records; PNG bytes."""
    labels, encoded = figure_texts(config, test)
    rows, cols = figure_grid_shape(config)
    if len(labels) != rows:  # fewer real test texts than configured (a tiny test split)
        rows = len(labels)
    seed = int(config["eval"]["figure"]["seed"])
    panels = {MODEL_LABELS.get(name, name): generate_panel(model, encoded, cols, seed) for name, model in models.items()}
    gaps = {MODEL_LABELS.get(name, name): verdict.conditioning_caption(record) for name, record in (evaluations or {}).items()}
    captions = {name: f"P(attr) gap {text}" for name, text in gaps.items() if text}
    return render_figure(panels, labels, figure_title(config, test.get("source", "unknown")), captions)


FIGURE_THREADS = 1   # generation's float sums depend on the thread count: one, whichever tool runs it


def cli_figure(args: argparse.Namespace, config: dict) -> int:
    torch.set_num_threads(FIGURE_THREADS)   # byte-identical figure1.png under Snakemake and dvc repro
    if "celeba" not in config["datasets"]:
        raise DataError(f"Figure 1 needs CelebA, which scale {config['scale']!r} does not include",
                        "add celeba to `datasets` for this scale, or do not ask for the figure")
    seed = int(config["eval"]["figure"]["seed"])
    names = [m for m in PANEL_ORDER if m in config["models"]] + [m for m in config["models"] if m not in PANEL_ORDER]
    models = {name: load_run_model(config, "celeba", name, seed)[0] for name in names}
    evaluations = {name: files.read_json(paths.run_file(paths.RUN_EVAL, config, "celeba", name, seed),
                                         f"evaluate it: `mmjsd evaluate --scale {config['scale']} --dataset celeba "
                                         f"--model {name} --seed {seed}`") for name in names}
    test = load_checked_split(config, "celeba", "test", getattr(args, "config", "config.yaml"))
    png = draw_figure(config, models, test, evaluations)
    out = paths.fill(paths.FIGURE1, config)
    files.write_bytes(out, png)
    print(f"wrote {out}")
    return 0
