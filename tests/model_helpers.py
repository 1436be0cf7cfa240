"""Shared helpers for tests/test_mmjsd.py and tests/test_mmpoe.py (imported explicitly).

Small models (dSprites width 0.25, CelebA width 0.0625) and tiny random batches of the right
shapes, so each model file runs in seconds on one CPU core.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import pytest
import torch

from mmjsd.config import load_config
from mmjsd.errors import DataError
from mmjsd.models import MultimodalVAE, build_model, load_model, model_spec, save_model

REPO_ROOT = Path(__file__).resolve().parents[1]
ALPHABET_SIZE = 71
# dataset -> (img_channels, text_len, test width)
SHAPES = {"dsprites": (1, 64, 0.25), "celeba": (3, 256, 0.0625)}
DATASETS = tuple(SHAPES)
SUBSETS = [("img",), ("text",), ("img", "text")]
LOSS_KEYS = {"loss", "rec_img", "rec_text", "kl_style_img", "kl_style_text", "divergence"}


@functools.lru_cache(maxsize=1)
def config() -> dict:
    return load_config(REPO_ROOT / "config.yaml")


def make_model(name: str, dataset: str, seed: int = 0, **overrides) -> MultimodalVAE:
    cfg = copy.deepcopy(config())
    channels, text_len, width = SHAPES[dataset]
    cfg["model"][dataset]["width"] = width
    # Factorised latents of different sizes per modality in every test, whatever the config chooses.
    cfg["model"][dataset]["style_dim"] = {"img": 4, "text": 3}
    cfg["model"][dataset].update(overrides)
    torch.manual_seed(seed)
    return build_model(model_spec(cfg, name, dataset, channels, text_len, ALPHABET_SIZE))


def make_batch(dataset: str, batch_size: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    channels, text_len, _ = SHAPES[dataset]
    g = torch.Generator().manual_seed(seed)
    img = torch.rand(batch_size, channels, 64, 64, generator=g)
    if dataset == "dsprites":
        img = img.round()
    text = torch.randint(0, ALPHABET_SIZE, (batch_size, text_len), generator=g)
    return {"img": img, "text": text}


# ------------------------------------------------------------------ shared checks
def check_loss_and_gradients(name: str, dataset: str) -> None:
    model = make_model(name, dataset)
    out = model.loss(make_batch(dataset, batch_size=5))  # odd batch: uneven mixture split
    assert set(out) == LOSS_KEYS
    for key, value in out.items():
        assert value.dim() == 0 and torch.isfinite(value), key
        assert value.requires_grad == (key == "loss"), key
    out["loss"].backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"no gradient for {pname}"
        assert torch.isfinite(p.grad).all(), f"non-finite gradient for {pname}"
    assert sum(p.grad.abs().sum() for p in model.parameters()) > 0


def check_adam_step_lowers_loss(name: str, dataset: str) -> None:
    model = make_model(name, dataset)
    batch = make_batch(dataset, batch_size=4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    torch.manual_seed(123)  # same dropout masks and reparameterisation noise for both evaluations
    before = model.loss(batch)["loss"]
    opt.zero_grad()
    before.backward()
    opt.step()
    torch.manual_seed(123)
    after = model.loss(batch)["loss"]
    assert after.item() < before.item()


def check_encode_generate_subsets(name: str, dataset: str) -> None:
    model = make_model(name, dataset).eval()
    batch = make_batch(dataset, batch_size=3)
    channels, text_len, _ = SHAPES[dataset]
    for subset in SUBSETS:
        cond = {m: batch[m] for m in subset}
        enc = model.encode(cond)
        assert set(enc) == set(subset) | {"joint"}
        for m in subset:
            assert enc[m].content_mu.shape == (3, model.content_dim)
            assert enc[m].style_mu.shape == (3, model.style_dims[m])
        mu, logvar = enc["joint"]
        assert mu.shape == logvar.shape == (3, model.content_dim)
        for target in model.modalities:
            gen = model.generate(cond, target, generator=torch.Generator().manual_seed(1))
            again = model.generate(cond, target, generator=torch.Generator().manual_seed(1))
            torch.testing.assert_close(gen, again)
            if target == "img":
                assert gen.shape == (3, channels, 64, 64) and gen.dtype == torch.float32
                assert gen.min() >= 0 and gen.max() <= 1
            else:
                assert gen.shape == (3, text_len) and gen.dtype == torch.int64
                assert gen.min() >= 0 and gen.max() < ALPHABET_SIZE
    samples = model.sample(2, generator=torch.Generator().manual_seed(0))
    assert samples["img"].shape == (2, channels, 64, 64)
    assert samples["text"].shape == (2, text_len)
    raw = model.decode(torch.zeros(2, model.content_dim), {"text": torch.zeros(2, model.style_dims["text"])})
    assert set(raw) == {"text"} and raw["text"].shape == (2, text_len, ALPHABET_SIZE)


def check_save_load_roundtrip(name: str, dataset: str, tmp_path: Path) -> None:
    model = make_model(name, dataset)
    model.loss(make_batch(dataset))  # move batch-norm running statistics off their defaults
    model.eval()
    path = tmp_path / "model.pt"
    save_model(path, model)
    loaded = load_model(path)
    assert type(loaded) is type(model) and loaded.spec == model.spec
    loaded.eval()
    batch = make_batch(dataset, batch_size=3, seed=1)
    for a, b in zip(model.encode(batch)["joint"], loaded.encode(batch)["joint"]):
        assert torch.equal(a, b)
    for target in model.modalities:
        assert torch.equal(model.generate(batch, target, torch.Generator().manual_seed(2)),
                           loaded.generate(batch, target, torch.Generator().manual_seed(2)))
    save_model(tmp_path / "again.pt", loaded)
    assert (tmp_path / "again.pt").read_bytes() == path.read_bytes()


def check_load_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_model(tmp_path / "missing.pt")
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="cannot be read"):
        load_model(bad)
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(DataError, match="does not hold a model"):
        load_model(tmp_path / "other.pt")

