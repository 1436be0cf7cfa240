"""Which held-out split a process reads: `test` for the pipeline's final evaluation, `val` for
every tool that chooses settings.

A number read from the test split and then acted on is no longer a test number, so the choice
is made per process, through the environment variable MMJSD_HOLDOUT that child processes
inherit:
- unset or "test": the pipeline. `mmjsd train-classifier` reports held-out accuracy on test and
  `mmjsd evaluate` scores test_fit / test_eval (paper 4.1).
- "val": selection. The same commands use val / val_fit / val_eval instead, and
  `processed.load_split` refuses to open any test split. benchmarks/fidelity.py and every
  diagnostic call `enter_selection()` before they read data, so they cannot see test.
"""

from __future__ import annotations

import os

from mmjsd.core.paths import HOLDOUT_SPLITS
from mmjsd.errors import DataError

ENV = "MMJSD_HOLDOUT"
SELECTION = "val"
FINAL = "test"


def current() -> str:
    """'test' (the default) or 'val'; any other value of MMJSD_HOLDOUT is refused."""
    value = os.environ.get(ENV, FINAL) or FINAL
    if value not in HOLDOUT_SPLITS:
        raise DataError(f"{ENV}={value!r} is not a held-out split (known: {', '.join(HOLDOUT_SPLITS)})",
                        f"unset {ENV} for the pipeline, or set {ENV}=val for a selection run")
    return value


def splits() -> tuple[str, str, str]:
    """(whole, fit half, eval half) of the current held-out split."""
    return HOLDOUT_SPLITS[current()]


def enter_selection() -> None:
    """From here on this process and its children read `val`, and cannot open a test split."""
    os.environ[ENV] = SELECTION


def check_readable(split_name: str, path: str | os.PathLike) -> None:
    """DataError when a selection process (MMJSD_HOLDOUT=val) tries to open a test split."""
    if current() == SELECTION and split_name in HOLDOUT_SPLITS[FINAL]:
        raise DataError(f"{path} is the test split, and this is a selection run ({ENV}={SELECTION}): settings are "
                        "chosen on the validation split only",
                        "read val / val_fit / val_eval; the test split is read once, by the pipeline's final `mmjsd evaluate`")
