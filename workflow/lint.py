"""`make lint`: `snakemake --lint`, with one documented, justified suppression.

Exit 0 when Snakemake finds nothing but the lints in ACCEPTED, else 1 with the findings printed.

ACCEPTED: "Specify a conda environment or container for each rule." Every rule calls this
repository's own `mmjsd` and runs in the environment Snakemake runs in (.venv, or the `mmjsd`
environment that environment.yml creates from the repository root). A per-rule environment file
cannot install the package (Snakemake copies the file elsewhere, where `-r requirements.txt`
and `-e .` do not resolve), and a named environment (`conda: "mmjsd"`) makes Snakemake call
`conda` on every run to record it, which fails on a machine without conda even without
`--sdm conda`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ACCEPTED = {"Specify a conda environment or container for each rule."}


def findings(output: str) -> list[str]:
    """The lint titles Snakemake printed ("    * <title>:" lines)."""
    return [line.strip()[2:].rstrip(":") for line in output.splitlines() if line.strip().startswith("* ")]


def main() -> int:
    snakemake = Path(sys.executable).with_name("snakemake")
    result = subprocess.run([str(snakemake), "--lint"], capture_output=True, text=True)
    found = findings(result.stdout + result.stderr)
    unexpected = sorted(set(found) - ACCEPTED)
    if unexpected or (result.returncode != 0 and not found):
        print(result.stdout + result.stderr)
        print(f"lint: {len(unexpected)} finding(s) beyond the accepted one: {unexpected}", file=sys.stderr)
        return 1
    accepted = sorted(set(found) & ACCEPTED)
    print(f"lint: clean apart from the documented suppression ({', '.join(accepted) or 'none found'}; workflow/lint.py)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
