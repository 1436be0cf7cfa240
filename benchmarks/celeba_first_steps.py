"""The first training steps of a CelebA model on real rows: does it stay finite and sane?

    python benchmarks/celeba_first_steps.py --steps 50 --batch 64 --model mmjsd [--scale paper]
    python benchmarks/celeba_first_steps.py ... --override train.celeba.warmup_steps=0   # the old behaviour

Reads the first --rows images of a CelebA folder (default: ../shared/data/celeba) with the
pipeline's own reader and text generator, builds the model of the chosen scale (paper: the
authors' networks, 70.3 M parameters) and trains it with the trainer's optimiser and
learning-rate schedule (mmjsd.training.optim). Prints one line per step:
loss, the largest |log-variance| of any posterior and the image style KL; the last line says
whether every step was finite. docs/evidence/fidelity-log.md, "CelebA at paper width: the first
steps", shows its output before and after the fix.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]

from mmjsd.config import load_config
from mmjsd.data import celeba
from mmjsd.models import build_model, model_spec
from mmjsd.training import precision
from mmjsd.training.optim import make_optimizer, set_learning_rate


def set_path(config: dict, dotted: str, value) -> None:
    keys = dotted.split(".")
    for key in keys[:-1]:
        config = config[key]
    config[keys[-1]] = value


def real_rows(root: Path, rows: int) -> dict[str, torch.Tensor]:
    folder = celeba.read_folder(root, max_images=rows)
    text = celeba.attribute_text_indices(folder.attributes, torch.Generator().manual_seed(0))
    return {"img": folder.images.float() / 255.0, "text": text.long()}


def first_steps(config: dict, model_name: str, data: dict, steps: int, batch: int, seed: int = 0,
                precision_name: str = "fp32", log=print) -> list[dict]:
    """Train `steps` steps from the seed's initialisation; one dict per step (before its update)."""
    torch.manual_seed(seed)
    spec = model_spec(config, model_name, "celeba", img_channels=3, text_len=data["text"].shape[1], alphabet_size=71)
    model = build_model(spec).train()
    optimizer = make_optimizer(model, config, "celeba")
    n = data["text"].shape[0]
    records = []
    for step in range(steps):
        set_learning_rate(optimizer, config, "celeba", step)
        idx = torch.arange(step * batch, (step + 1) * batch) % n
        batch_data = {m: v[idx] for m, v in data.items()}
        with precision.autocast("cpu", precision_name):
            posteriors = model.encode_unimodal(batch_data)
            terms = model.loss(batch_data)
        max_logvar = max(float(t.detach().abs().max()) for p in posteriors.values()
                         for t in (p.content_logvar, p.style_logvar) if t.numel())
        record = {"step": step, "lr": optimizer.param_groups[0]["lr"], "loss": float(terms["loss"].detach()),
                  "max_abs_logvar": max_logvar, "kl_style_img": float(terms["kl_style_img"].detach())}
        records.append(record)
        log(f"step {step:3d}  lr {record['lr']:.2e}  loss {record['loss']:.4g}  max|logvar| {max_logvar:.3g}  "
            f"KL style img {record['kl_style_img']:.4g}")
        if not math.isfinite(record["loss"]):
            break
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="paper")
    parser.add_argument("--model", default="mmjsd", choices=["mmjsd", "mmpoe"])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rows", type=int, default=640)
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "data" / "celeba"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--override", action="append", default=[], metavar="KEY=YAML",
                        help="change one config value, e.g. train.celeba.warmup_steps=0")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(REPO / "config.yaml", args.scale)
    for item in args.override:
        key, _, value = item.partition("=")
        set_path(config, key, yaml.safe_load(value))
    print(f"# scale={args.scale} model={args.model} width={config['model']['celeba']['width']} "
          f"lr={config['train']['celeba']['lr']} warmup_steps={config['train']['celeba'].get('warmup_steps')} "
          f"batch={args.batch} precision={args.precision} overrides={args.override}")
    data = real_rows(Path(args.root), args.rows)
    started = time.perf_counter()
    records = first_steps(config, args.model, data, args.steps, args.batch, precision_name=args.precision)
    finite = all(math.isfinite(r["loss"]) for r in records) and len(records) == args.steps
    worst = max(r["max_abs_logvar"] for r in records)
    print(f"# {len(records)} steps in {time.perf_counter() - started:.0f} s; all finite: {finite}; "
          f"largest |logvar| {worst:.3g}; last loss {records[-1]['loss']:.4g}")


if __name__ == "__main__":
    main()
