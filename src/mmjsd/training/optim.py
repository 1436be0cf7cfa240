"""The optimiser and its learning-rate schedule, shared by the trainer and the benchmarks.

Adam with `train.adam_betas` (the authors' optimiser) and a linear learning-rate warm-up over
`train.<dataset>.warmup_steps` steps (0 = none, the authors' schedule). The warm-up is our
deviation for the authors' CelebA networks: with lr 5e-4 from the first step, the first Adam
update moves every weight by about lr in the direction of its gradient's sign, and through the
2.0-scaled shortcuts of the residual blocks this throws the log-variance heads to |logvar| ~ 80,
the style KLs to ~1e13 and the loss to inf within a few steps (docs/FIDELITY.md, "CelebA at
paper width"). The rate is a pure function of the step count, so a resumed run continues the
same schedule without any scheduler state in the checkpoint.
"""

from __future__ import annotations

import torch


def learning_rate(config: dict, dataset: str, step: int) -> float:
    """The learning rate of optimiser step `step` (0-based)."""
    settings = config["train"][dataset]
    warmup = int(settings.get("warmup_steps", 0) or 0)
    lr = float(settings["lr"])
    return lr if warmup <= 0 or step >= warmup else lr * (step + 1) / warmup


def make_optimizer(model: torch.nn.Module, config: dict, dataset: str) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=learning_rate(config, dataset, 0),
                            betas=tuple(config["train"]["adam_betas"]))


def set_learning_rate(optimizer: torch.optim.Optimizer, config: dict, dataset: str, step: int) -> None:
    for group in optimizer.param_groups:
        group["lr"] = learning_rate(config, dataset, step)
