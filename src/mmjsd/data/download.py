"""Downloads, kept apart from the loading code: DeepMind's dSprites npz and torchvision's CelebA.

Each writes atomically and turns every failure (offline, a proxy, a Drive quota, a wrong md5)
into a one-line DataError whose fix names the offline alternatives: a copy downloaded elsewhere
put where the step writes, or the procedural stand-ins (mmjsd.data.dsprites_render,
mmjsd.data.celeba_faces).
"""

from __future__ import annotations

import argparse
import hashlib
import urllib.error
import urllib.request
from pathlib import Path

from mmjsd.data.celeba import ATTR_FILE, IMAGE_DIR, PARTITION_FILE
from mmjsd.data.dsprites import OFFICIAL_MD5, OFFICIAL_NAME, OFFICIAL_URL
from mmjsd.errors import DataError, detail
from mmjsd.files import atomic_path

OFFLINE_FIX = "work offline with the procedural stand-in: set data.dsprites.source: render (or run `mmjsd dsprites-render --out FILE`)"


def offline_fix(out: str | Path) -> str:
    """First where an official npz downloaded elsewhere goes (the path the pipeline expects), then the stand-in."""
    return (f"copy an official {OFFICIAL_NAME} downloaded elsewhere to {out} (md5 {OFFICIAL_MD5} is checked) "
            f"and run again; or {OFFLINE_FIX}")


def download_dsprites(out: str | Path, url: str = OFFICIAL_URL, timeout: float = 60.0, md5: str = OFFICIAL_MD5) -> Path:
    """Download the official npz to `out`: streamed to a temporary file, md5-verified, renamed.

    Offline/HTTP failure or a wrong md5 raises DataError and leaves nothing behind.
    """
    out = Path(out)
    digest = hashlib.md5()
    with atomic_path(out) as tmp:
        try:
            response = urllib.request.urlopen(url, timeout=timeout)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise DataError(f"cannot download dSprites from {url} ({reason})", offline_fix(out)) from None
        try:
            with response, open(tmp, "wb") as fh:
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    fh.write(chunk)
        except OSError as exc:
            raise DataError(f"download of {url} broke off ({exc})", "retry, or " + offline_fix(out)) from None
        if digest.hexdigest() != md5:
            raise DataError(f"{url} gave a file with md5 {digest.hexdigest()}, expected {md5}; nothing was written",
                            "retry the download (a proxy or partial transfer can alter it), or " + offline_fix(out))
    return out


def cli_dsprites_download(args: argparse.Namespace, config: dict) -> int:
    path = download_dsprites(args.out)
    print(f"dsprites-download: {path} (md5 {OFFICIAL_MD5} verified)")
    return 0


def download_torchvision(root: str | Path) -> Path:
    """torchvision.datasets.CelebA(root, split="all", target_type="attr", download=True);
    returns root/celeba. Any failure (offline, Google Drive quota, gdown missing) becomes a
    DataError pointing at the offline alternatives."""
    root = Path(root)
    try:
        import torchvision.datasets   # here, not at the top: slow to import, and only this step downloads

        torchvision.datasets.CelebA(str(root), split="all", target_type="attr", download=True)
    except Exception as exc:   # noqa: BLE001 - a third-party download can fail in many ways
        raise DataError(
            f"torchvision could not download CelebA into {root} ({detail(exc)})",
            f"CelebA's Google Drive download needs network access (and gdown, pinned in requirements.txt); "
            f"with a copy downloaded elsewhere, put its {IMAGE_DIR}/, {ATTR_FILE} and {PARTITION_FILE} into "
            f"{root / 'celeba'} (the folder this step makes), or set data.celeba.source: folder with "
            f"data.celeba.root: <your copy>; offline: data.celeba.source: synthetic",
        ) from None
    return root / "celeba"


def cli_celeba_download(args: argparse.Namespace, config: dict) -> int:
    folder = download_torchvision(args.root)
    print(f"celeba-download: CelebA downloaded by torchvision into {folder}")
    return 0
