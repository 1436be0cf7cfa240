"""The paper's Table 1 (dSprites), as data, to print beside the reproduced numbers.

Values copied from the paper (see the reference notes). Table 1a: accuracy of conditionally
generated samples; "img" = images generated from text, "text" = text generated from images.
Table 1b: accuracy of linear classifiers on the content means of each representation.
The paper labels the third row of 1b "mmJSD Joint"; by its position and values it is mmPoE's
joint representation, and it is stored as such here.
"""

from __future__ import annotations

from mmjsd.data.dsprites import LABEL_NAMES

DSPRITES_FACTORS = tuple(LABEL_NAMES)           # Table 1's columns: the dSprites label names
MODEL_ORDER = ("mmpoe", "mmjsd")               # the paper's row order
MODEL_LABELS = {"mmpoe": "mmPoE", "mmjsd": "mmJSD"}

# TABLE1A[model][factor][direction]
TABLE1A: dict[str, dict[str, dict[str, float]]] = {
    "mmpoe": {
        "shape": {"img": 0.95, "text": 0.34},
        "scale": {"img": 0.17, "text": 0.44},
        "orientation": {"img": 0.48, "text": 0.25},
        "posX": {"img": 0.33, "text": 0.97},
        "posY": {"img": 0.33, "text": 0.93},
    },
    "mmjsd": {
        "shape": {"img": 0.96, "text": 0.97},
        "scale": {"img": 0.92, "text": 0.89},
        "orientation": {"img": 0.50, "text": 0.26},
        "posX": {"img": 0.33, "text": 0.98},
        "posY": {"img": 0.33, "text": 0.99},
    },
}

# TABLE1B[model][representation][factor]
TABLE1B: dict[str, dict[str, dict[str, float]]] = {
    "mmpoe": {
        "img": {"shape": 0.38, "scale": 0.70, "orientation": 0.25, "posX": 0.991, "posY": 0.97},
        "text": {"shape": 0.34, "scale": 0.23, "orientation": 0.81, "posX": 0.34, "posY": 0.43},
        "joint": {"shape": 0.38, "scale": 0.68, "orientation": 0.79, "posX": 0.97, "posY": 0.96},
    },
    "mmjsd": {
        "img": {"shape": 1.0, "scale": 1.0, "orientation": 0.443, "posX": 0.998, "posY": 0.999},
        "text": {"shape": 1.0, "scale": 1.0, "orientation": 0.449, "posX": 1.0, "posY": 1.0},
        "joint": {"shape": 1.0, "scale": 1.0, "orientation": 0.447, "posX": 0.999, "posY": 0.999},
    },
}


def paper_value(table: str, model: str, modality: str, factor: str) -> float | None:
    """The paper's number for one cell of Table 1 ('1a' or '1b'), or None if it has none."""
    if table == "1a":
        return TABLE1A.get(model, {}).get(factor, {}).get(modality)
    if table == "1b":
        return TABLE1B.get(model, {}).get(modality, {}).get(factor)
    raise ValueError(f"unknown table {table!r} (expected '1a' or '1b')")
