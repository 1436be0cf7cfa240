"""Add sha256 hashes to the lock files (requirements.txt, requirements-dev.txt), from the package
index's own listing.

    python workflow/hash_lock.py                      # rewrite both lock files in place
    python workflow/hash_lock.py --check              # exit 1 when a pin has no hash

Every `name==version` pin gets a `--hash=sha256:...` for each file of that version that the
index lists (every platform's wheel and the sdist), read from the PEP 503 simple page's
`#sha256=` fragments: nothing is downloaded. With a hash on every line, pip installs in
hash-checking mode: a file whose bytes differ from the index's is refused.

Why not pip-compile --generate-hashes: it downloads every wheel it cannot hash from an index
listing (the CUDA wheels are gigabytes), and re-resolves pins we already hold.

To change a pin: edit its version in the file, then run this script again.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCK_FILES = [REPO / "requirements.txt", REPO / "requirements-dev.txt"]
INDEX = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
LINK = re.compile(r'href="[^"]*?/([^/"#]+)#sha256=([0-9a-f]{64})"')


def normalise(name: str) -> str:
    """PEP 503 project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def version_files(name: str, version: str, page: str) -> dict[str, str]:
    """{filename: sha256} of one version's files on a simple page (wheels: name-version-...whl;
    sdists: name-version.tar.gz or .zip; names compared PEP 503-normalised)."""
    found = {}
    for filename, digest in LINK.findall(page):
        stem = filename[:-4] if filename.endswith((".whl", ".zip")) else filename.removesuffix(".tar.gz")
        project, _, rest = stem.partition(f"-{version}")
        if normalise(project) == normalise(name) and (rest == "" or rest.startswith("-")):
            found[filename] = digest
    return found


def fetch_page(name: str) -> str:
    with urllib.request.urlopen(f"{INDEX}/{normalise(name)}/", timeout=120) as response:
        return response.read().decode()


def parse(text: str) -> list[tuple[str, str] | str]:
    """The lock file as entries: (name, version) for a pin (its old hash lines dropped), or a
    verbatim line (comments, -r includes)."""
    entries: list[tuple[str, str] | str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("--hash="):
            continue
        match = PIN.match(stripped)
        entries.append((match.group(1), match.group(2)) if match else line.rstrip(" \\"))
    return entries


def render(entries: list[tuple[str, str] | str], hashes: dict[tuple[str, str], dict[str, str]]) -> str:
    lines = []
    for entry in entries:
        if isinstance(entry, str):
            lines.append(entry)
            continue
        digests = sorted(set(hashes[entry].values()))
        lines.append(f"{entry[0]}=={entry[1]} \\")
        lines += [f"    --hash=sha256:{d}" + (" \\" if i < len(digests) - 1 else "") for i, d in enumerate(digests)]
    return "\n".join(lines) + "\n"


def unhashed(text: str) -> list[str]:
    """Pins with no --hash line under them."""
    missing, current = [], None
    for line in text.splitlines() + [""]:
        stripped = line.strip()
        if stripped.startswith("--hash=sha256:"):
            current = None
            continue
        if current:
            missing.append(current)
        match = PIN.match(stripped)
        current = f"{match.group(1)}=={match.group(2)}" if match else None
    return missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report pins without a hash")
    args = parser.parse_args()
    if args.check:
        missing = {path.name: unhashed(path.read_text()) for path in LOCK_FILES}
        for name, pins in missing.items():
            for pin in pins:
                print(f"{name}: {pin} has no hash")
        return 1 if any(missing.values()) else 0
    parsed = {path: parse(path.read_text()) for path in LOCK_FILES}
    pins = sorted({e for entries in parsed.values() for e in entries if isinstance(e, tuple)})
    with ThreadPoolExecutor(8) as pool:
        pages = dict(zip(pins, pool.map(lambda pin: fetch_page(pin[0]), pins)))
    hashes = {pin: version_files(*pin, pages[pin]) for pin in pins}
    empty = [f"{n}=={v}" for (n, v), files in hashes.items() if not files]
    if empty:
        print(f"hash_lock: error: {INDEX} lists no file for {', '.join(empty)} -- fix: correct the pin or the index",
              file=sys.stderr)
        return 2
    for path, entries in parsed.items():
        path.write_text(render(entries, hashes))
        print(f"{path.name}: {sum(isinstance(e, tuple) for e in entries)} pins, "
              f"{sum(len(set(hashes[e].values())) for e in entries if isinstance(e, tuple))} hashes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
