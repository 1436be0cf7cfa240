"""Train one model (mmJSD or mmPoE) on one dataset with one seed.

Read top to bottom: `Trainer` loads the processed training split into memory as tensors (all of
it, or with `train.<dataset>.max_train_samples` a subset drawn with the run's seed and kept in
split order, as the classifiers do), builds the model, restores the last checkpoint if there is
one (`restore`), then `train_run` loops over epochs (`train_epoch`, `end_epoch`) drawing batches
by index.

Guarantees
- Deterministic on the CPU: the same seed and config give the same checkpoint bytes. Model
  initialisation and the reparameterisation noise use the global torch RNG seeded with `seed`;
  the batch order of epoch e comes from its own generator seeded with (seed, e), so a resumed
  run can rebuild the order of the epoch it stopped in.
- Resumable: `checkpoint.pt` holds model, optimiser, every RNG state, the position (epoch and
  batch) and the running sums of the epoch in progress. It is written every
  `train.checkpoint_every_epochs` epochs, when `--max-steps` is reached, and on SIGTERM/SIGINT
  (after the step in flight). A run started again continues from it and ends bit-identical to
  an uninterrupted run.
- Atomic: every file is written to a temporary name and renamed into place.
- A loss that turns NaN/inf stops the run with a TrainingError; the last good checkpoint stays.
- Watchable: the log gets the device, data and sizes at start and one line per epoch (loss
  terms, samples/s, elapsed, ETA); curve.csv is rewritten after every epoch.
- Wall time and samples/s add up over every call of a resumed run (timing.json beside the
  checkpoint, kept out of its bytes); a finished run called again rewrites nothing.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from mmjsd.artifacts import provenance
from mmjsd.core import files, paths
from mmjsd.core.progress import clock as _clock, log
from mmjsd.data.processed import load_checked_split
from mmjsd.errors import TrainingError
from mmjsd.models import build_model, model_spec, save_model
from mmjsd.training import gpu, optim, precision, runtime
from mmjsd.training.batches import InMemoryData, epoch_order
from mmjsd.training.checkpoints import (Position, Timing, load_checkpoint, load_timing, save_checkpoint, save_timing,
                               set_rng_state, utc_now)
from mmjsd.artifacts.steps import code_digest
from mmjsd.artifacts.summary import train_summary

LOSS_TERMS = ("loss", "rec_img", "rec_text", "kl_style_img", "kl_style_text", "divergence")
# How often a CUDA run brings its finite-loss flag to the host (a sync per step would stall the
# GPU); the flag records the exact step on the device. On the CPU every step is checked.
NAN_CHECK_EVERY_CUDA = 25


# --------------------------------------------------------------------------------------------
# A progress line in the log at least this often within an epoch (a CPU epoch can last half an
# hour): `mmjsd status` reads it, and a silent log would look like a stopped job.
PROGRESS_EVERY_S = 60.0

# Interruption: finish the step in flight, save, exit
# --------------------------------------------------------------------------------------------

class StopFlag:
    """Set by SIGTERM/SIGINT; the loop saves a checkpoint at the next step boundary and stops."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        self.signal = signum


# --------------------------------------------------------------------------------------------
# The training run
# --------------------------------------------------------------------------------------------

@dataclass
class RunResult:
    finished: bool            # False: paused by --max-steps or a signal, checkpoint written
    position: Position
    samples_per_s: float      # over every call of the run (timing.json)
    wall_time_s: float        # over every call of the run
    trained_now: bool         # False: the checkpoint was already finished; nothing was trained
    started_at: str           # UTC, first call of the run
    model: torch.nn.Module
    split: dict
    n_train: int
    precision: str            # "fp32" or "bf16": what the networks actually ran in
    run_key: dict = field(default_factory=dict)   # settings, data hash, code digest: the model's fingerprint


class Trainer:
    """One run, read top to bottom: `__init__` loads the data and builds the model, `restore`
    continues from the checkpoint, `train_epoch` runs (the rest of) one epoch, `end_epoch` writes
    the curve and the periodic checkpoint; `train_run` drives them."""

    def __init__(self, config: dict, dataset: str, model_name: str, seed: int, device: str,
                 max_steps: int | None, stop: StopFlag | None, progress: bool | None,
                 config_file: str | os.PathLike) -> None:
        self.config, self.dataset, self.model_name, self.seed, self.device = config, dataset, model_name, seed, device
        self.max_steps, self.stop = max_steps, stop
        self.settings = settings = config["train"][dataset]
        self.run = dict(dataset=dataset, model=model_name, seed=seed)
        self.checkpoint_path = paths.run_file(paths.RUN_CHECKPOINT, config, **self.run)
        self.timing_path = paths.run_file(paths.RUN_TIMING, config, **self.run)
        split_path = paths.processed(config, dataset, "train")
        self.split = load_checked_split(config, dataset, "train", config_file)
        self.data = InMemoryData.from_split(self.split, device, settings.get("max_train_samples"), seed)

        torch.manual_seed(seed)
        if device == "cpu":
            torch.use_deterministic_algorithms(True)
        spec = model_spec(config, model_name, dataset, img_channels=self.data.image_shape[0],
                          text_len=self.data.text.shape[1], alphabet_size=len(self.split["alphabet"]))
        self.model = build_model(spec).to(device)
        self.optimizer = optim.make_optimizer(self.model, config, dataset)
        self.precision = precision.resolve(config, device)
        # The checkpoint is only valid for the same run under the same settings that shape training.
        self.run_key = {**self.run, "spec": spec, "train": settings, "adam_betas": config["train"]["adam_betas"],
                        "data_source": self.split["source"], "n_train": len(self.data), "precision": self.precision,
                        # the bytes it trains on and the code that trains (issue 15: stale checkpoints)
                        "data_sha256": files.file_sha256(split_path), "code": code_digest("train")}
        self.batch_size = settings["batch_size"]
        self.n_batches = runtime.n_batches(len(self.data), self.batch_size)
        self.show_progress = sys.stderr.isatty() if progress is None else progress
        self.position = Position()
        self.prior = Timing()
        self.saved_step: int | None = None     # step of the last checkpoint on disk
        self.started, self.samples_done = time.perf_counter(), 0

    # -- restore ---------------------------------------------------------------------------------
    def restore(self) -> None:
        """Continue from this run's checkpoint when there is one (model, optimiser, RNGs, position,
        the time of earlier calls), and log what is trained."""
        state = load_checkpoint(self.checkpoint_path, self.run_key)
        if state is not None:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            set_rng_state(state["rng"], self.device)
            self.position = Position(**json.loads(state["position"]))
            self.saved_step = self.position.step
            self.prior = load_timing(self.timing_path, self.run_key)
        self.prior.started_at = self.prior.started_at or utc_now()
        settings, data = self.settings, self.data
        n_params = sum(p.numel() for p in self.model.parameters())
        log(f"train {self.dataset}/{self.model_name}/seed{self.seed}: device {self.device}, precision {self.precision}, "
            f"{torch.get_num_threads()} CPU threads; data {self.split['source']}: {len(data)} training samples, "
            f"batch {settings['batch_size']}, {math.ceil(len(data) / settings['batch_size'])} batches/epoch, "
            f"{settings['epochs']} epochs; model {n_params:,} parameters")
        if state is not None:
            log(f"resuming from epoch {self.position.epoch + 1} batch {self.position.batch} (step {self.position.step}); "
                f"{_clock(self.prior.wall_time_s)} trained before")
        self.started = time.perf_counter()

    # -- bookkeeping -------------------------------------------------------------------------------
    def timing(self) -> Timing:
        return Timing(self.prior.wall_time_s + time.perf_counter() - self.started, self.prior.samples + self.samples_done,
                      self.prior.started_at)

    def checkpoint(self) -> None:
        # The small files first, the checkpoint last: right after a checkpoint appears the run is
        # back in training, not in the middle of another write.
        save_timing(self.timing_path, self.run_key, self.timing())
        save_checkpoint(self.checkpoint_path, self.model, self.optimizer, self.position, self.device, self.run_key)
        self.saved_step = self.position.step

    def result(self, finished: bool) -> RunResult:
        total = self.timing() if self.samples_done else self.prior   # a call that trained nothing adds nothing
        if self.samples_done:
            save_timing(self.timing_path, self.run_key, total)
        return RunResult(finished, self.position, total.samples / max(total.wall_time_s, 1e-9), total.wall_time_s,
                         self.samples_done > 0, total.started_at, self.model, self.split, len(self.data), self.precision,
                         self.run_key)

    # -- one epoch ---------------------------------------------------------------------------------
    def train_epoch(self) -> bool:
        """Train from the current position to the end of its epoch; True when paused on the way
        (--max-steps or a signal: the checkpoint is then written)."""
        position, device, dataset = self.position, self.device, self.dataset
        order = epoch_order(len(self.data), self.seed, position.epoch)
        bar = _progress_bar(self.n_batches, position, self.settings["epochs"], self.show_progress)
        # Running sums stay on the device: no host sync per step.
        sums = {k: torch.tensor(position.sums.get(k, 0.0), dtype=torch.float64, device=device) for k in LOSS_TERMS}
        first_bad = torch.full((), -1, dtype=torch.int64, device=device)   # step where a term first went NaN/inf
        next_progress = time.perf_counter() + PROGRESS_EVERY_S
        while position.batch < self.n_batches:
            idx = runtime.nth_batch(order, position.batch, self.batch_size).to(device)
            batch = self.data.batch(idx)
            with precision.autocast(device, self.precision):
                terms = self.model.loss(batch)
            optim.set_learning_rate(self.optimizer, self.config, dataset, position.step)
            self.optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            self.optimizer.step()
            for k in LOSS_TERMS:
                sums[k] += terms[k].detach().double() * len(idx)
            finite = torch.stack([terms[k].detach().float() for k in LOSS_TERMS]).isfinite()
            first_bad = torch.where((first_bad < 0) & ~finite.all(), position.step + 1, first_bad)
            position.batch += 1
            position.step += 1
            position.count += len(idx)
            self.samples_done += len(idx)
            if bar is not None:
                bar.update(1)
                if position.batch % 20 == 0:
                    bar.set_postfix(loss=f"{sums['loss'].item() / position.count:.2f}",
                                    sps=f"{self.samples_done / (time.perf_counter() - self.started):.0f}")
            if bar is None and time.perf_counter() >= next_progress and position.batch < self.n_batches:
                self.log_progress(sums["loss"].item() / position.count)
                next_progress = time.perf_counter() + PROGRESS_EVERY_S
            pause = (self.max_steps is not None and position.step >= self.max_steps) or (self.stop is not None and self.stop.signal)
            if (device != "cuda" or pause or position.batch == self.n_batches or position.step % NAN_CHECK_EVERY_CUDA == 0) \
                    and int(first_bad) >= 0:
                _not_finite(terms, int(first_bad), position, dataset, self.model_name, self.seed, self.checkpoint_path,
                            self.saved_step)
            if pause or position.batch == self.n_batches:
                position.sums = _finite_sums(sums)
            if pause:
                self.checkpoint()
                if bar is not None:
                    bar.close()
                return True
        if bar is not None:
            bar.close()
        return False

    def log_progress(self, loss_so_far: float) -> None:
        """A line within the epoch: where it stands, the loss so far, rate and ETA (mmjsd status reads it)."""
        position, epochs = self.position, self.settings["epochs"]
        total = self.timing()
        rate = total.samples / total.wall_time_s if total.samples and total.wall_time_s > 0 else None
        remaining = len(self.data) * epochs - position.epoch * len(self.data) - position.count
        log(f"epoch {position.epoch + 1}/{epochs} batch {position.batch}/{self.n_batches} (in progress): loss so far "
            f"{loss_so_far:.4g}" + (f" | {rate:.0f} samples/s" if rate else " | samples/s unknown")
            + f" | elapsed {_clock(total.wall_time_s)} | ETA {_clock(remaining / rate) if rate else 'unknown'}")

    def end_epoch(self) -> None:
        """Close the finished epoch: its curve row, the live curve.csv, the periodic checkpoint, a log line."""
        position, settings = self.position, self.settings
        position.curve.append({"epoch": position.epoch + 1, "step": position.step,
                               **{k: position.sums[k] / position.count for k in LOSS_TERMS}})
        position.epoch += 1
        position.batch, position.sums, position.count = 0, {}, 0
        # Live: the curve so far (dvc plots / a plotting user see the run grow) and one log line.
        write_curve(paths.run_file(paths.RUN_CURVE, self.config, **self.run), position.curve)
        if position.epoch % self.config["train"]["checkpoint_every_epochs"] == 0 or position.epoch == settings["epochs"]:
            self.checkpoint()
        # The rate over every call of the run: a call resumed at the end of an epoch has trained
        # nothing of it yet (its own rate would be 0 samples/s and the ETA endless).
        total = self.timing()
        rate = total.samples / total.wall_time_s if total.samples and total.wall_time_s > 0 else None
        remaining = len(self.data) * settings["epochs"] - position.epoch * len(self.data)
        row = position.curve[-1]
        log(f"epoch {position.epoch}/{settings['epochs']} step {position.step}: "
            + " ".join(f"{k} {row[k]:.4g}" for k in LOSS_TERMS)
            + (f" | {rate:.0f} samples/s" if rate else " | samples/s unknown")
            + f" | elapsed {_clock(total.wall_time_s)}"
            + f" | ETA {_clock(remaining / rate) if rate else 'unknown'}")


def train_run(config: dict, dataset: str, model_name: str, seed: int, device: str = "cpu",
              max_steps: int | None = None, stop: StopFlag | None = None,
              progress: bool | None = None, config_file: str | os.PathLike = "config.yaml") -> RunResult:
    """Train (or resume) one run; writes checkpoint, and on completion model, metrics and curve.
    A training split made under other data settings, from other raw data or by other data code
    is refused (mmjsd.artifacts.fingerprints; `config_file` goes into the fix's snakemake command)."""
    trainer = Trainer(config, dataset, model_name, seed, device, max_steps, stop, progress, config_file)
    trainer.restore()
    trainer.model.train()
    while trainer.position.epoch < trainer.settings["epochs"]:
        if trainer.train_epoch():
            return trainer.result(False)
        trainer.end_epoch()
    return trainer.result(True)


def _not_finite(terms: dict, step: int, position: Position, dataset: str, model_name: str, seed: int,
                checkpoint_path: Path, saved_step: int | None) -> None:
    """Stop the run at the step where a loss term turned NaN/inf, with a fix that is true.

    Checked before every checkpoint, so no checkpoint ever holds parameters updated by a NaN
    step. A changed train.* setting (lr, warm-up) changes the checkpoint's run key, so the run
    then starts from scratch; the same settings resume from the last good checkpoint, and on the
    CPU reach the same NaN again (training is deterministic).
    """
    bad = [k for k in LOSS_TERMS if not math.isfinite(float(terms[k].detach().float()))] or ["loss"]
    if saved_step is not None:
        kept = f"the last good checkpoint, at step {saved_step}, is kept in {checkpoint_path}"
        fix = (f"lower train.{dataset}.lr (or raise train.{dataset}.warmup_steps) and run again; a changed train "
               f"setting trains this run from scratch, because a checkpoint is only resumed under the settings it "
               f"was written with (to keep the checkpoint, rerun unchanged: it resumes at step {saved_step} and, "
               f"deterministic on the CPU, meets the same NaN), or check the processed data")
    else:
        kept = "no checkpoint was written yet"
        fix = (f"lower train.{dataset}.lr (or raise train.{dataset}.warmup_steps) or check the processed data, "
               f"then run again (the run trains from scratch)")
    where = f"at step {step}" if step == position.step else f"at step {step} (noticed at step {position.step})"
    raise TrainingError(
        f"{dataset}/{model_name}/seed{seed}: loss term(s) {', '.join(bad)} became NaN/inf {where}, epoch "
        f"{position.epoch + 1}; {kept}", fix)


def _finite_sums(sums: dict) -> dict:
    """Bring the running sums to the host (every step's terms were checked finite already)."""
    return {k: v.item() for k, v in sums.items()}


def _progress_bar(n_batches: int, position: Position, epochs: int, enabled: bool):
    if not enabled:
        return None
    return tqdm(total=n_batches, initial=position.batch, desc=f"epoch {position.epoch + 1}/{epochs}",
                unit="batch", leave=False, dynamic_ncols=True)


def write_curve(path: Path, curve: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["epoch", "step", *LOSS_TERMS], lineterminator="\n")
    writer.writeheader()
    for row in curve:
        writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})
    files.write_text(path, buffer.getvalue())


def cli_train(args, config: dict) -> int:
    dataset, model_name, seed = args.dataset, args.model, args.seed
    if dataset not in config["datasets"] or model_name not in config["models"]:
        print(f"note: {dataset}/{model_name} is not in this scale's datasets/models; training it anyway", file=sys.stderr)
    placement = runtime.place(args, config)
    device, claim, threads = placement.device, placement.claim, placement.threads
    if claim is not None:
        log(f"claimed GPU {claim.index} (share {claim.share:.2f} of the device, lock {claim.lock_path})")
    stop = StopFlag()
    stop.install()
    result = train_run(config, dataset, model_name, seed, device=device, max_steps=args.max_steps, stop=stop,
                       config_file=args.config)
    if not result.finished:  # paused: --max-steps reached or a signal arrived
        checkpoint = paths.run_file(paths.RUN_CHECKPOINT, config, dataset, model_name, seed)
        if stop.signal:
            print(f"mmjsd: interrupted by signal {stop.signal}; checkpoint saved at step {result.position.step} "
                  f"in {checkpoint}; run the same command again to resume", file=sys.stderr)
            return 128 + stop.signal
        print(f"paused at step {result.position.step} (--max-steps); checkpoint {checkpoint}; "
              f"run again without --max-steps to finish", file=sys.stderr)
        return 0
    outputs = [paths.run_file(t, config, dataset, model_name, seed) for t in (paths.RUN_MODEL, paths.RUN_CURVE, paths.RUN_METRICS)]
    if not result.trained_now and all(p.exists() for p in outputs):
        log(f"{dataset}/{model_name}/seed{seed} finished earlier ({result.position.epoch} epochs); outputs kept as they are")
    else:
        finish_run(config, dataset, model_name, seed, result, device, threads)
    if claim is not None:
        claim.release()
    return 0


def finish_run(config, dataset, model_name, seed, result: RunResult, device, threads) -> None:
    """Write the final model, the curve and the metrics (metrics last: it marks the run done)."""
    run = dict(dataset=dataset, model=model_name, seed=seed)
    save_model(paths.run_file(paths.RUN_MODEL, config, **run), result.model, fingerprint=result.run_key)
    split = result.split
    write_curve(paths.run_file(paths.RUN_CURVE, config, **run), result.position.curve)
    final = result.position.curve[-1]
    metrics = {
        **run,
        "scale": config["scale"],
        "data_source": split["source"],
        "n_train": result.n_train,
        "epochs": result.position.epoch,
        "steps": result.position.step,
        "final": {k: final[k] for k in LOSS_TERMS},
        "samples_per_s": round(result.samples_per_s, 1),
        "wall_time_s": round(result.wall_time_s, 2),
        "started_at": result.started_at,     # UTC; metrics.json may differ between runs, model.pt may not
        "finished_at": utc_now(),
        "device": gpu.device_name(device),
        "precision": result.precision,
        "threads": threads,
        "provenance": provenance.provenance(config=config, seed=seed),
    }
    files.write_json(paths.run_file(paths.RUN_SUMMARY, config, **run), train_summary(metrics))
    files.write_json(paths.run_file(paths.RUN_METRICS, config, **run), metrics)
    print(f"{dataset}/{model_name}/seed{seed}: {result.position.epoch} epochs, final loss {final['loss']:.3f}, "
          f"{result.samples_per_s:.0f} samples/s on {metrics['device']}", file=sys.stderr)

