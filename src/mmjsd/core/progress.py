"""Progress lines for job logs: the rules send stderr to logs/<scale>/<job>.log, where a
terminal progress bar never appears, so every long step writes plain lines, flushed at once."""

from __future__ import annotations

import sys


def log(message: str) -> None:
    """One line in the job's log, now."""
    print(message, file=sys.stderr, flush=True)


def clock(seconds: float) -> str:
    """Seconds as H:MM:SS."""
    seconds = int(round(max(seconds, 0)))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def rate_and_eta(done: float, remaining: float, elapsed: float) -> str:
    """'N samples/s | elapsed H:MM:SS | ETA H:MM:SS' from the work done in `elapsed` seconds."""
    rate = done / max(elapsed, 1e-9)
    return f"{rate:.0f} samples/s | elapsed {clock(elapsed)} | ETA {clock(remaining / max(rate, 1e-9))}"
