"""Training-step throughput and peak memory of mmJSD / mmPoE on dSprites and CelebA.

One step = forward, loss, backward and an Adam update on random inputs of the right shapes
(data loading excluded), as in the reference notes' cost figure. For every model x dataset x
scale (the widths of config.yaml's paper scale and of its demo overlay, or --width) and every
device (CPU, plus CUDA when available) it prints samples/s and peak memory:
  CPU : peak resident set size of a fresh process (ru_maxrss) and its increase over the RSS
        just before the first step (weights, activations, gradients, Adam state);
  CUDA: torch.cuda.max_memory_allocated during the timed steps (bf16 autocast when the
        config's precision.cuda is bf16).
Each configuration runs in its own subprocess so the peaks do not contaminate each other.

    python benchmarks/bench_models.py                        # batch 256, 3 timed steps
    python benchmarks/bench_models.py --steps 1 --warmup 1 --scales demo --threads 2
    python benchmarks/bench_models.py --width 0.25 --batch 64 --device cpu --json out.json

At paper width CelebA costs about 3 s per step at batch 64 on 2 CPU cores (12 s at 256):
keep --steps small on a CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHAPES = {"dsprites": (1, 64), "celeba": (3, 256)}  # img channels, text length
ALPHABET_SIZE = 71


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_one(job: dict) -> dict:
    """Build one model and time `steps` training steps after `warmup` untimed ones."""
    import torch

    from mmjsd.config import load_config
    from mmjsd.models import build_model, model_spec

    torch.set_num_threads(job["threads"])
    torch.manual_seed(0)
    device = torch.device(job["device"])
    cfg = load_config(job["config"], job["scale"])
    if job["width"] is not None:
        cfg["model"][job["dataset"]]["width"] = job["width"]
    channels, text_len = SHAPES[job["dataset"]]
    model = build_model(model_spec(cfg, job["model"], job["dataset"], channels, text_len, ALPHABET_SIZE)).to(device)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=tuple(cfg["train"]["adam_betas"]))
    b = job["batch"]
    img = torch.rand(b, channels, 64, 64, device=device)
    if cfg["model"][job["dataset"]]["image_likelihood"] == "bernoulli":
        img = img.round()
    batch = {"img": img, "text": torch.randint(0, ALPHABET_SIZE, (b, text_len), device=device)}
    use_bf16 = device.type == "cuda" and cfg["precision"]["cuda"] == "bf16"

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss = model.loss(batch)["loss"]
        loss.backward()
        opt.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    rss_before = _rss_bytes()
    for _ in range(job["warmup"]):
        step()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(job["steps"]):
        step()
    sync()
    seconds = time.perf_counter() - start
    result = {
        **{k: job[k] for k in ("model", "dataset", "scale", "device", "batch", "steps", "threads")},
        "width": cfg["model"][job["dataset"]]["width"],
        "parameters": sum(p.numel() for p in model.parameters()),
        "seconds_per_step": seconds / job["steps"],
        "samples_per_s": b * job["steps"] / seconds,
        "bf16": use_bf16,
    }
    if device.type == "cuda":
        result["peak_mem_mib"] = torch.cuda.max_memory_allocated() / 2**20
        result["gpu"] = torch.cuda.get_device_name(device)
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        result["peak_rss_mib"] = peak / 2**20
        result["peak_mem_mib"] = (peak - rss_before) / 2**20  # increase over the pre-training RSS
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(REPO_ROOT / "config.yaml"))
    p.add_argument("--models", nargs="+", default=["mmjsd", "mmpoe"], choices=["mmjsd", "mmpoe"])
    p.add_argument("--datasets", nargs="+", default=["dsprites", "celeba"], choices=list(SHAPES))
    p.add_argument("--scales", nargs="+", default=["paper", "demo"], help="config scales whose widths to use")
    p.add_argument("--width", type=float, default=None, help="override every width (then one scale suffices)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=3, help="timed steps")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    p.add_argument("--device", nargs="+", default=["auto"], choices=["auto", "cpu", "cuda"],
                   help="auto = cpu, plus cuda when available")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads (default: all cores)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child is not None:  # one configuration, result as one JSON line
        print(json.dumps(run_one(json.loads(args.child))))
        return 0

    devices = []
    for d in args.device:
        if d in ("auto", "cpu"):
            devices.append("cpu")
        if d == "cuda" or (d == "auto" and _cuda_available()):
            devices.append("cuda")
    scales = args.scales if args.width is None else args.scales[:1]
    results = []
    header = f"{'device':6} {'scale':6} {'dataset':9} {'model':6} {'width':>7} {'params':>11} {'s/step':>8} {'samples/s':>10} {'peak MiB':>9}"
    print(f"batch {args.batch}, {args.steps} timed step(s) after {args.warmup} warm-up, {args.threads} CPU thread(s); "
          "step = forward + loss + backward + Adam; CPU peak = RSS increase, CUDA peak = max allocated")
    print(header)
    for device in dict.fromkeys(devices):
        for scale in scales:
            for dataset in args.datasets:
                for model in args.models:
                    job = {"config": args.config, "scale": scale, "width": args.width, "dataset": dataset,
                           "model": model, "device": device, "batch": args.batch, "steps": args.steps,
                           "warmup": args.warmup, "threads": args.threads}
                    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(job)],
                                          capture_output=True, text=True)
                    if proc.returncode != 0:
                        print(f"{device:6} {scale:6} {dataset:9} {model:6} FAILED: {proc.stderr.strip().splitlines()[-1:]}")
                        continue
                    r = json.loads(proc.stdout.strip().splitlines()[-1])
                    results.append(r)
                    print(f"{device:6} {scale:6} {dataset:9} {model:6} {r['width']:7.4g} {r['parameters']:11,d} "
                          f"{r['seconds_per_step']:8.3f} {r['samples_per_s']:10.1f} {r['peak_mem_mib']:9.0f}", flush=True)
    if args.json is not None:
        from mmjsd.core.files import write_json

        write_json(args.json, results)
    return 0


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    raise SystemExit(main())
