"""Training throughput per model x dataset, with time split into data / forward / backward / optimiser.

A script that prints figures, not a test. It drives the same pieces as `mmjsd train`
(InMemoryData batches by index, the model's loss, Adam) on random data of the right shapes, so it
needs no prepared dataset:

    python benchmarks/bench_train.py                       # demo scale, CPU
    python benchmarks/bench_train.py --scale paper --steps 3
    python benchmarks/bench_train.py --device cuda --bf16  # on a GPU machine
    python benchmarks/bench_train.py --compare-precision [--scale S]   # fp32 vs bf16 autocast

--compare-precision alternates fp32 and bf16 steps of the same model in one process (so both
see the same machine state), reports the median step time of each as samples/s, and ends with
`bf16/fp32 throughput ratio: min X, median Y` over the dataset x model pairs.

On CUDA every phase is bracketed by torch.cuda.synchronize() so the split is real (which costs a
little throughput); `total samples/s` is measured separately without the syncs. GPU utilisation
is sampled with nvidia-smi during the unsynchronised run when it is available.
"""

from __future__ import annotations

import argparse
import json
import statistics
import resource
import shutil
import subprocess
import threading
import time
from pathlib import Path

import torch


from mmjsd.config import load_config
from mmjsd.models import build_model, model_spec
from mmjsd.training import precision
from mmjsd.training.batches import InMemoryData, pack_binary_images

SHAPES = {"dsprites": (1, 64), "celeba": (3, 256)}  # image channels, text length
ALPHABET_SIZE = 71


def fake_data(dataset: str, n: int, device: str) -> InMemoryData:
    channels, text_len = SHAPES[dataset]
    generator = torch.Generator().manual_seed(0)
    if dataset == "dsprites":
        images = (torch.rand(n, 1, 64, 64, generator=generator) > 0.9).to(torch.uint8) * 255
        stored, binary = pack_binary_images(images), True
    else:
        stored, binary = torch.randint(0, 256, (n, 3, 64, 64), generator=generator, dtype=torch.uint8), False
    text = torch.randint(0, ALPHABET_SIZE, (n, text_len), generator=generator, dtype=torch.uint8)
    return InMemoryData(stored.to(device), text.to(device), (channels, 64, 64), binary)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class GpuSampler:
    """Mean GPU utilisation from nvidia-smi, sampled every 0.2 s while the timed loop runs."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i", "0"],
                                 capture_output=True, text=True).stdout.strip()
            if out:
                self.samples.append(float(out.splitlines()[0]))
            time.sleep(0.2)

    def __enter__(self):
        if shutil.which("nvidia-smi"):
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    @property
    def mean(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None


def setup(config: dict, dataset: str, model_name: str, batch: int, device: str):
    """(data, spec, model, optimiser, batch order) for a benchmark, seeded."""
    torch.manual_seed(0)
    data = fake_data(dataset, max(batch * 4, 1024), device)
    spec = model_spec(config, model_name, dataset, SHAPES[dataset][0], SHAPES[dataset][1], ALPHABET_SIZE)
    model = build_model(spec).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    return data, spec, model, optimizer, torch.randperm(len(data))


def bench(config: dict, dataset: str, model_name: str, batch: int, steps: int, warmup: int, device: str, bf16: bool) -> dict:
    data, spec, model, optimizer, order = setup(config, dataset, model_name, batch, device)
    use_bf16 = bf16 and device == "cuda"

    def step(i: int, phases: dict | None) -> None:
        t0 = time.perf_counter()
        idx = order[(i * batch) % (len(data) - batch):][:batch].to(device)
        batch_data = data.batch(idx)
        if phases is not None:
            sync(device); t1 = time.perf_counter()
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_bf16):
            loss = model.loss(batch_data)["loss"]
        if phases is not None:
            sync(device); t2 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if phases is not None:
            sync(device); t3 = time.perf_counter()
        optimizer.step()
        if phases is not None:
            sync(device); t4 = time.perf_counter()
            for name, seconds in zip(("data", "forward", "backward", "optimiser"), (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                phases[name] += seconds

    for i in range(warmup):
        step(i, None)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    phases = {"data": 0.0, "forward": 0.0, "backward": 0.0, "optimiser": 0.0}
    for i in range(steps):
        step(i, phases)
    sync(device)
    with GpuSampler() as sampler:
        start = time.perf_counter()
        for i in range(steps):
            step(i, None)
        sync(device)
        elapsed = time.perf_counter() - start
    total_phase = sum(phases.values())
    result = {
        "dataset": dataset, "model": model_name, "width": spec["settings"]["width"], "batch": batch,
        "device": device, "bf16": use_bf16, "steps": steps,
        "samples_per_s": round(batch * steps / elapsed, 1),
        "split_pct": {k: round(100 * v / total_phase, 1) for k, v in phases.items()},
        "params": sum(p.numel() for p in model.parameters()),
    }
    if device == "cuda":
        result["peak_mem_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        result["gpu_util_pct"] = sampler.mean
    else:
        result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def compare_precision(config: dict, dataset: str, model_name: str, batch: int, steps: int, warmup: int,
                      device: str) -> dict:
    """Median samples/s of fp32 and bf16 steps, alternated step by step on one model."""
    data, spec, model, optimizer, order = setup(config, dataset, model_name, batch, device)
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for i in range(warmup + steps):
        for name in ("fp32", "bf16"):
            idx = order[(i * batch) % (len(data) - batch):][:batch].to(device)
            sync(device)
            start = time.perf_counter()
            with precision.autocast(device, name):
                loss = model.loss(data.batch(idx))["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sync(device)
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    rates = {name: batch / statistics.median(t) for name, t in times.items()}
    return {"dataset": dataset, "model": model_name, "width": spec["settings"]["width"], "batch": batch,
            "fp32": round(rates["fp32"], 1), "bf16": round(rates["bf16"], 1), "ratio": rates["bf16"] / rates["fp32"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="demo")
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--datasets", nargs="+", default=["dsprites", "celeba"])
    parser.add_argument("--models", nargs="+", default=["mmjsd", "mmpoe"])
    parser.add_argument("--batch", type=int, default=None, help="default: the scale's training batch size")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--bf16", action="store_true", help="also measure bf16 autocast (CUDA only)")
    parser.add_argument("--compare-precision", action="store_true",
                        help="alternate fp32 and bf16 autocast steps (CPU or CUDA) and print their throughput ratio")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config(args.config, args.scale)
    print(f"# scale={args.scale} device={args.device} threads={torch.get_num_threads()} torch={torch.__version__}"
          + (f" gpu={torch.cuda.get_device_name(0)}" if args.device == "cuda" else ""))
    if args.compare_precision:
        if args.device == "cpu" and not precision.cpu_has_native_bf16():
            print("note: this CPU has no native bf16; the bf16 column is oneDNN's emulation")
        ratios = []
        for dataset in args.datasets:
            for model_name in args.models:
                batch = args.batch or config["train"][dataset]["batch_size"]
                result = compare_precision(config, dataset, model_name, batch, args.steps, args.warmup, args.device)
                ratios.append(result["ratio"])
                print(f"{dataset:8s} {model_name:5s} width={result['width']:<6} batch={batch:<4} "
                      f"fp32 {result['fp32']:>9.1f} samples/s  bf16 {result['bf16']:>9.1f} samples/s  ratio {result['ratio']:.2f}")
        print(f"bf16/fp32 throughput ratio: min {min(ratios):.2f}, median {statistics.median(ratios):.2f}")
        return
    for dataset in args.datasets:
        for model_name in args.models:
            batch = args.batch or config["train"][dataset]["batch_size"]
            variants = [False, True] if (args.bf16 and args.device == "cuda") else [False]
            for bf16 in variants:
                result = bench(config, dataset, model_name, batch, args.steps, args.warmup, args.device, bf16)
                if args.json:
                    print(json.dumps(result))
                else:
                    mem = result.get("peak_mem_mib", result.get("peak_rss_mib"))
                    util = f" gpu_util={result['gpu_util_pct']:.0f}%" if result.get("gpu_util_pct") is not None else ""
                    print(f"{dataset:8s} {model_name:5s} width={result['width']:<6} batch={batch:<4} bf16={str(result['bf16']):5s} "
                          f"{result['samples_per_s']:>9.1f} samples/s  split {result['split_pct']}  peak={mem} MiB{util}")


if __name__ == "__main__":
    main()
