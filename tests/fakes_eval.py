"""Small hand-made splits and a fake multimodal model for the evaluation-side tests.

The splits follow the processed-split contract of mmjsd.data.processed.load_split (uint8
images N x C x 64 x 64 in 0..255, uint8 text N x L, int64 labels N x F, alphabet, label_names,
source, ...). The fake model follows the models' interface (spec, encode, generate, sample)
and is an oracle: it looks conditioning inputs up in a table of known samples, so its
cross-modal generations are exact and its content means are one-hot labels.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch

from mmjsd.artifacts.steps import step_settings
from mmjsd.config import load_config
from mmjsd.core import paths
from mmjsd.core.files import sealed
from mmjsd.data.dsprites import LABEL_NAMES, LABEL_SIZES
from mmjsd.data.text import ALPHABET
from mmjsd.models import Posterior
from mmjsd.reporting.paper import TABLE1A, TABLE1B

REPO_ROOT = Path(__file__).resolve().parents[1]
DSPRITES_LABELS = list(LABEL_NAMES)
DSPRITES_SIZES = list(LABEL_SIZES)


def _encode_strings(strings: list[str], length: int, generator: torch.Generator) -> torch.Tensor:
    out = torch.full((len(strings), length), ALPHABET.index("*"), dtype=torch.uint8)
    for row, s in enumerate(strings):
        start = int(torch.randint(0, length - len(s) + 1, (1,), generator=generator))
        out[row, start:start + len(s)] = torch.tensor([ALPHABET.index(c) for c in s], dtype=torch.uint8)
    return out


def dsprites_like_split(n: int, seed: int, text_length: int = 32) -> dict:
    """Binary images whose block position/size/brightness pattern encode the five factors.

    Learnable by both classifiers: posX/posY place an 8x8..18x18 block, scale sets its size,
    shape and orientation mark a corner pixel pattern; the text spells the classes as words.
    """
    g = torch.Generator().manual_seed(seed)
    labels = torch.stack([torch.randint(0, k, (n,), generator=g) for k in DSPRITES_SIZES], dim=1)
    images = torch.zeros(n, 1, 64, 64, dtype=torch.uint8)
    for i in range(n):
        shape, scale, orient, x, y = (int(v) for v in labels[i])
        size = 8 + 2 * scale
        top, left = 4 + 20 * y, 4 + 20 * x
        images[i, 0, top:top + size, left:left + size] = 255
        images[i, 0, 0:4, 16 * shape:16 * shape + 8] = 255       # shape marker strip
        images[i, 0, 60:64, 16 * orient:16 * orient + 8] = 255    # orientation marker strip
        # the sample index in binary down the free last column: no two images are equal
        images[i, 0, 8:20, 63] = 255 * ((i >> torch.arange(12)) & 1).to(torch.uint8)
    words = [f"s{a} c{b} o{c} x{d} y{e}" for a, b, c, d, e in labels.tolist()]
    return {
        "images": images, "text": _encode_strings(words, text_length, g), "alphabet": ALPHABET,
        "labels": labels.long(), "label_names": list(DSPRITES_LABELS), "source": "synthetic",
        "seed": seed, "dataset": "dsprites", "notes": "hand-made test split",
    }


def celeba_like_split(n: int, seed: int, n_attributes: int = 4, text_length: int = 48) -> dict:
    """RGB images with one coloured patch per present attribute; text lists the attribute names."""
    g = torch.Generator().manual_seed(seed)
    labels = (torch.rand(n, n_attributes, generator=g) < 0.5).long()
    names = [f"attr{k}" for k in range(n_attributes)]
    images = torch.zeros(n, 3, 64, 64, dtype=torch.uint8)
    for k in range(n_attributes):
        present = labels[:, k].bool()
        images[present, k % 3, 8 * k:8 * k + 8, :] = 255
    words = [", ".join(names[k] for k in range(n_attributes) if labels[i, k]) for i in range(n)]
    return {
        "images": images, "text": _encode_strings(words, text_length, g), "alphabet": ALPHABET,
        "labels": labels, "label_names": names, "source": "synthetic",
        "seed": seed, "dataset": "celeba", "notes": "hand-made test split",
    }


class OracleModel(torch.nn.Module):
    """Fake MultimodalVAE: exact cross-modal generation by lookup, one-hot labels as content means."""

    def __init__(self, splits: list[dict], dataset: str = "dsprites", name: str = "mmjsd"):
        super().__init__()
        self.spec = {"model": name, "dataset": dataset, "settings": {}}
        self.images = torch.cat([s["images"] for s in splits])
        self.text = torch.cat([s["text"] for s in splits])
        self.labels = torch.cat([s["labels"] for s in splits])
        self.n_classes = [int(self.labels[:, i].max()) + 1 for i in range(self.labels.shape[1])]
        self.calls = []

    def _rows(self, key: str, value: torch.Tensor) -> torch.Tensor:
        """Row of each conditioning sample in the known table (first one if repeated)."""
        if not hasattr(self, "_index"):
            self._index = {}
            for name, table in (("img", self.images), ("text", self.text.long())):
                index = {}
                for row, sample in enumerate(table):
                    index.setdefault(sample.numpy().tobytes(), row)
                self._index[name] = index
        raw = (value * 255).round().to(torch.uint8) if key == "img" else value.long()
        return torch.tensor([self._index[key][sample.numpy().tobytes()] for sample in raw])

    def _content(self, rows: torch.Tensor) -> torch.Tensor:
        parts = [torch.nn.functional.one_hot(self.labels[rows, i], k).float() for i, k in enumerate(self.n_classes)]
        return torch.cat(parts, dim=1)

    def encode(self, batch: dict) -> dict:
        out, mus = {}, []
        for key, value in batch.items():
            mu = self._content(self._rows(key, value))
            zeros = torch.zeros_like(mu)
            out[key] = Posterior(mu, zeros, zeros[:, :2], zeros[:, :2])
            mus.append(mu)
        out["joint"] = (sum(mus) / len(mus), torch.zeros_like(mus[0]))
        return out

    def generate(self, cond_batch: dict, target: str, generator=None) -> torch.Tensor:
        self.calls.append((tuple(cond_batch), target))
        key, value = next(iter(cond_batch.items()))
        rows = self._rows(key, value)
        if target == "img":
            return self.images[rows].float() / 255.0
        return self.text[rows].long()


class ConstantModel(OracleModel):
    """Generates the same sample (the first known one) whatever it is conditioned on."""

    def generate(self, cond_batch: dict, target: str, generator=None) -> torch.Tensor:
        n = next(iter(cond_batch.values())).shape[0]
        if target == "img":
            return (self.images[:1].float() / 255.0).expand(n, -1, -1, -1).clone()
        return self.text[:1].long().expand(n, -1).clone()


class RandomImageModel(torch.nn.Module):
    """Fake with the generation interface only: seeded random images (for the figure)."""

    def __init__(self, name: str, text_length: int, channels: int = 3):
        super().__init__()
        self.spec = {"model": name, "dataset": "celeba", "settings": {}}
        self.text_length = text_length
        self.channels = channels
        self.seen = []

    def generate(self, cond_batch: dict, target: str, generator=None) -> torch.Tensor:
        text = cond_batch["text"]
        assert text.dtype == torch.int64 and text.shape[1] == self.text_length
        self.seen.append(text.clone())
        return torch.rand(text.shape[0], self.channels, 64, 64, generator=generator)


# ------------------------------------------------------------------ configs and hand-made outputs
def small_config(tmp_path: Path, **overrides) -> dict:
    """The repository's ci-scale config with data/results under tmp_path."""
    config = copy.deepcopy(load_config(REPO_ROOT / "config.yaml", "ci"))
    config["paths"] = {"data": str(tmp_path / "data"), "results": str(tmp_path / "results")}
    for key, value in overrides.items():
        config[key] = value
    return config


def fake_dsprites_eval(model: str, seed: int, offset: float) -> dict:
    """An eval.json whose values are the paper's plus `offset` (known means and stds)."""
    coherence = {f: {d: TABLE1A[model][f][d] + offset for d in ("img", "text")} for f in DSPRITES_LABELS}
    latent = {r: {f: TABLE1B[model][r][f] + offset for f in DSPRITES_LABELS} for r in ("img", "text", "joint")}
    return {
        "dataset": "dsprites", "model": model, "seed": seed, "scale": "ci", "data_source": "render",
        "data_notes": "procedural stand-in render", "coherence": coherence, "latent": latent, "latent_notes": {},
        "classifier_accuracy": {m: {f: 0.9 for f in DSPRITES_LABELS} for m in ("img", "text")},
        "inputs": {"model": f"runs/dsprites/{model}/seed{seed}/model.pt",
                   "classifier_metrics": {"img": "classifiers/dsprites/img.json", "text": "classifiers/dsprites/text.json"}},
        "provenance": {"git_commit": "abc123", "packages": {"torch": "2.14.1"}},
    }


def fake_celeba_eval(model: str, seed: int, offset: float) -> dict:
    names = ["Male", "Smiling", "Eyeglasses"]
    return {
        "dataset": "celeba", "model": model, "seed": seed, "scale": "ci", "data_source": "synthetic",
        "data_notes": "synthetic faces", "coherence": {n: {"img": 0.7 + offset, "text": 0.8 + offset} for n in names},
        "coherence_average_precision": {n: {"img": 0.5 + offset, "text": (None if n == "Eyeglasses" else 0.6 + offset)} for n in names},
        "latent": {r: {n: 0.75 + offset for n in names} for r in ("img", "text", "joint")}, "latent_notes": {},
        "classifier_accuracy": {m: {n: 0.85 for n in names} for m in ("img", "text")},
        "inputs": {"model": f"runs/celeba/{model}/seed{seed}/model.pt", "classifier_metrics": {}},
        "provenance": {"git_commit": "abc123", "packages": {"torch": "2.14.1"}},
    }


def write_fake_evaluations(config: dict, offsets: dict[int, float]) -> None:
    """eval.json for every dataset x model x seed of `config`, value = paper + offsets[seed]."""
    makers = {"dsprites": fake_dsprites_eval, "celeba": fake_celeba_eval}
    for dataset in config["datasets"]:
        for model in config["models"]:
            for seed in config["seeds"]:
                path = paths.run_file(paths.RUN_EVAL, config, dataset, model, seed)
                path.parent.mkdir(parents=True, exist_ok=True)
                record = makers[dataset](model, seed, offsets[seed])
                record["scale"] = config["scale"]
                record["fingerprint"] = {"settings": step_settings(config, "evaluate", dataset)}   # what aggregate checks
                path.write_text(json.dumps(sealed(record)))   # as evaluate writes it
