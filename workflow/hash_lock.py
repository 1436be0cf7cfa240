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

Platform markers: a pin may carry a PEP 508 marker (`name==version ; marker`), kept as written
when the file is regenerated. The lock is resolved on Linux x86-64 and pins torch's CUDA
dependencies (nvidia-*, triton, cuda-*), which torch only requires on Linux; they carry torch's
own markers (`platform_system == "Linux"`, read from torch's METADATA), so that the lock also
installs on macOS. Linux aarch64 keeps them: torch's aarch64 wheel requires them there too, and
the index has aarch64 wheels of each. Regenerating checks that every pin has a file for every
platform in PLATFORMS where its marker applies; `--platforms` runs only that check.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from packaging import tags
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

REPO = Path(__file__).resolve().parents[1]
LOCK_FILES = [REPO / "requirements.txt", REPO / "requirements-dev.txt"]
INDEX = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
LINK = re.compile(r'href="[^"]*?/([^/"#]+)#sha256=([0-9a-f]{64})"')


PYTHON = (3, 11)   # pyproject.toml: requires-python >=3.11,<3.12


def _environment(system: str, machine: str) -> dict[str, str]:
    """A PEP 508 marker environment for CPython 3.11 on one platform."""
    return {"implementation_name": "cpython", "implementation_version": "3.11.9", "os_name": "posix",
            "platform_machine": machine, "platform_python_implementation": "CPython", "platform_release": "",
            "platform_system": system, "platform_version": "", "python_full_version": "3.11.9",
            "python_version": "3.11", "sys_platform": system.lower(), "extra": ""}


def _manylinux(arch: str) -> list[str]:
    """Platform tags a glibc 2.28 Linux accepts (what torch's manylinux_2_28 wheels need), newest first,
    with the legacy aliases (manylinux2014 = 2_17, manylinux2010 = 2_12, manylinux1 = 2_5)."""
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    found = []
    for minor in range(28, 4, -1):
        found.append(f"manylinux_2_{minor}_{arch}")
        if minor in legacy:
            found.append(f"{legacy[minor]}_{arch}")
    return found


class Platform(NamedTuple):
    environment: dict[str, str]   # for markers
    platforms: list[str]          # wheel platform tags it installs


# The platforms the lock must install on (issue: Linux x86-64, Linux aarch64, macOS on Apple silicon).
PLATFORMS = {
    "linux-x86_64": Platform(_environment("Linux", "x86_64"), _manylinux("x86_64")),
    "linux-aarch64": Platform(_environment("Linux", "aarch64"), _manylinux("aarch64")),
    "macos-arm64": Platform(_environment("Darwin", "arm64"), list(tags.mac_platforms((14, 0), "arm64"))),
}


class Pin(NamedTuple):
    name: str
    version: str
    marker: str = ""   # PEP 508 environment marker, as written after ';' (empty: every platform)

    def applies(self, platform: str, extra: str = "") -> bool:
        return not self.marker or Marker(self.marker).evaluate({**PLATFORMS[platform].environment, "extra": extra})


def supported_tags(platform: str) -> set[tags.Tag]:
    arches = PLATFORMS[platform].platforms
    return {*tags.cpython_tags(PYTHON, platforms=arches), *tags.compatible_tags(PYTHON, "cp311", arches)}


def installable(filenames, platform: str) -> bool:
    """Whether one of a version's files (wheels by their tags; an sdist anywhere) installs on platform."""
    supported = supported_tags(platform)
    for filename in filenames:
        if not filename.endswith(".whl"):
            return True
        try:
            if parse_wheel_filename(filename)[3] & supported:
                return True
        except InvalidWheelFilename:
            continue
    return False


def platform_gaps(pin: Pin, filenames) -> list[str]:
    """The PLATFORMS where the pin's marker applies but no file of it installs."""
    return [name for name in PLATFORMS if pin.applies(name) and not installable(filenames, name)]


def unmet_requirements(pins: list[Pin], platform: str, requires) -> list[str]:
    """What pip in hash-checking mode would refuse on `platform`: a requirement of an applicable pin
    (Requires-Dist from `requires(name)`, markers evaluated for that platform with the extras other
    pins ask for) whose package is not pinned there, or pinned outside the required range."""
    environment = PLATFORMS[platform].environment
    applicable = {normalise(pin.name): pin for pin in pins if pin.applies(platform)}
    extras = {name: {""} for name in applicable}
    problems: set[str] = set()
    changed = True
    while changed:   # until no pin is asked for a further extra
        changed = False
        for name, pin in list(applicable.items()):
            for text in requires(pin.name) or []:
                req = Requirement(text)
                if req.marker is not None and not any(req.marker.evaluate({**environment, "extra": e}) for e in extras[name]):
                    continue
                dep = applicable.get(normalise(req.name))
                if dep is None:
                    problems.add(f"{pin.name}=={pin.version} requires {text!r}, which is not pinned for {platform}")
                elif not req.specifier.contains(dep.version, prereleases=True):
                    problems.add(f"{pin.name}=={pin.version} requires {text!r}, but the lock pins {dep.name}=={dep.version}")
                elif set(req.extras) - extras[normalise(req.name)]:
                    extras[normalise(req.name)] |= set(req.extras)
                    changed = True
    return sorted(problems)


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


def read_pin(line: str) -> Pin | None:
    """`name==version [; marker] [\\]` as a Pin, else None."""
    stripped = line.strip()
    match = PIN.match(stripped)
    if not match:
        return None
    rest = stripped[match.end():].split(" --", 1)[0].rstrip(" \\").strip()
    return Pin(match.group(1), match.group(2), rest[1:].strip() if rest.startswith(";") else "")


def parse(text: str) -> list[Pin | str]:
    """The lock file as entries: a Pin (its marker kept, its old hash lines dropped), or a
    verbatim line (comments, -r includes)."""
    entries: list[Pin | str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("--hash="):
            continue
        pin = read_pin(stripped)
        entries.append(pin if pin else line.rstrip(" \\"))
    return entries


def pins(text: str) -> list[Pin]:
    return [entry for entry in parse(text) if isinstance(entry, Pin)]


def render(entries: list[Pin | str], hashes: dict[tuple[str, str], dict[str, str]]) -> str:
    lines = []
    for entry in entries:
        if isinstance(entry, str):
            lines.append(entry)
            continue
        digests = sorted(set(hashes[entry.name, entry.version].values()))
        marker = f" ; {entry.marker}" if entry.marker else ""
        lines.append(f"{entry.name}=={entry.version}{marker} \\")
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
    parser.add_argument("--platforms", action="store_true",
                        help=f"only check, from the index's listing, that every pin has a file for each of "
                             f"{', '.join(PLATFORMS)} where its marker applies")
    args = parser.parse_args()
    if args.check:
        missing = {path.name: unhashed(path.read_text()) for path in LOCK_FILES}
        for name, pins in missing.items():
            for pin in pins:
                print(f"{name}: {pin} has no hash")
        return 1 if any(missing.values()) else 0
    parsed = {path: parse(path.read_text()) for path in LOCK_FILES}
    every_pin = sorted({e for entries in parsed.values() for e in entries if isinstance(e, Pin)})
    versions = sorted({(pin.name, pin.version) for pin in every_pin})
    with ThreadPoolExecutor(8) as pool:
        pages = dict(zip(versions, pool.map(lambda nv: fetch_page(nv[0]), versions)))
    hashes = {nv: version_files(*nv, pages[nv]) for nv in versions}
    empty = [f"{n}=={v}" for (n, v), files in hashes.items() if not files]
    if empty:
        print(f"hash_lock: error: {INDEX} lists no file for {', '.join(empty)} -- fix: correct the pin or the index",
              file=sys.stderr)
        return 2
    gaps = [f"{pin.name}=={pin.version} ({', '.join(missing)})" for pin in every_pin
            if (missing := platform_gaps(pin, hashes[pin.name, pin.version]))]
    if gaps:
        print(f"hash_lock: error: {INDEX} has no installable file on a platform where the pin's marker applies: "
              f"{'; '.join(gaps)} -- fix: move the pin to a version with those wheels, or add a marker that "
              f"leaves the platform out when nothing there requires the package", file=sys.stderr)
        return 2
    if args.platforms:
        print(f"hash_lock: {len(every_pin)} pins: each installs on {', '.join(PLATFORMS)} wherever its marker applies")
        return 0
    for path, entries in parsed.items():
        path.write_text(render(entries, hashes))
        print(f"{path.name}: {sum(isinstance(e, Pin) for e in entries)} pins, "
              f"{sum(len(set(hashes[e.name, e.version].values())) for e in entries if isinstance(e, Pin))} hashes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
