"""Downloads, kept apart from the loading code: DeepMind's dSprites npz and torchvision's CelebA.

dSprites comes through `requests`, with urllib3's retries (connection errors and 429/5xx answers,
with backoff) and resume: the bytes received so far stay in `<out>.part`, and a transfer that
breaks off, in this run or an earlier one, goes on from there with an HTTP Range request. The
md5 of the whole file is checked before it is renamed into place. CelebA comes through
torchvision's own downloader (Google Drive, md5-checked).

Every failure (offline, a proxy, a Drive quota, a wrong md5) becomes a one-line DataError whose
fix names the offline alternatives: a copy downloaded elsewhere put where the step writes, or the
procedural stand-ins (mmjsd.data.dsprites_render, mmjsd.data.celeba_faces).
"""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from mmjsd.data.celeba import ATTR_FILE, IMAGE_DIR, PARTITION_FILE
from mmjsd.data.dsprites import OFFICIAL_MD5, OFFICIAL_NAME, OFFICIAL_URL
from mmjsd.errors import DataError, detail

OFFLINE_FIX = "work offline with the procedural stand-in: set data.dsprites.source: render (or run `mmjsd dsprites-render --out FILE`)"
CHUNK = 1 << 16      # what a break can lose of the bytes in flight; the rest waits in <out>.part


def offline_fix(out: str | Path) -> str:
    """First where an official npz downloaded elsewhere goes (the path the pipeline expects), then the stand-in."""
    return (f"copy an official {OFFICIAL_NAME} downloaded elsewhere to {out} (md5 {OFFICIAL_MD5} is checked) "
            f"and run again; or {OFFLINE_FIX}")


def partial_path(out: str | Path) -> Path:
    """Where the bytes received so far wait for the next attempt (or the next run) to go on."""
    out = Path(out)
    return out.with_name(out.name + ".part")


def _session(retries: int, backoff: float) -> requests.Session:
    """A session whose requests urllib3 retries: failed connects, and 429/5xx answers (with backoff)."""
    retry = Retry(total=retries, connect=retries, read=retries, status=retries, backoff_factor=backoff,
                  status_forcelist=(429, 500, 502, 503, 504), allowed_methods=("GET",), raise_on_status=False)
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


def _size(path: Path) -> int:
    """Bytes already in `path` (0 when it does not exist yet)."""
    return path.stat().st_size if path.exists() else 0


def _fetch_rest(session: requests.Session, url: str, partial: Path, timeout: float) -> None:
    """Append what `partial` lacks (Range), or write it anew where the server ignores Range."""
    have = _size(partial)
    headers = {"Range": f"bytes={have}-"} if have else {}
    with session.get(url, headers=headers, stream=True, timeout=timeout) as response:
        if have and response.status_code == 416:       # nothing after `have`: the file is complete
            return
        response.raise_for_status()
        resumed = have and response.status_code == 206
        with open(partial, "ab" if resumed else "wb") as fh:
            for chunk in response.iter_content(CHUNK):
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download_dsprites(out: str | Path, url: str = OFFICIAL_URL, timeout: float = 60.0, md5: str = OFFICIAL_MD5,
                      retries: int = 5, backoff: float = 0.5) -> Path:
    """Download the official npz to `out`: resumable in `<out>.part`, md5-verified, renamed.

    A transfer that breaks off mid-file is resumed up to `retries` times; what it got stays in
    `<out>.part` for the next run. A wrong md5 deletes the partial file (its bytes cannot be
    trusted) and raises DataError; `out` itself is written only when whole and verified.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(out)
    session = _session(retries, backoff)
    for attempt in range(retries + 1):
        before = _size(partial)
        try:
            _fetch_rest(session, url, partial, timeout)
            break
        except requests.HTTPError as exc:
            raise DataError(f"cannot download dSprites from {url} (HTTP {exc.response.status_code})", offline_fix(out)) from None
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError,
                requests.exceptions.Timeout) as exc:
            received = _size(partial)
            kept = f"; {received} bytes are kept in {partial} for the next run" if received else ""
            if received == before:    # no byte came (offline, refused, unresolved): urllib3 has retried already
                raise DataError(f"cannot download dSprites from {url} ({detail(exc)}){kept}", offline_fix(out)) from None
            if attempt == retries:      # it broke off mid-file on every attempt
                raise DataError(f"download of {url} broke off {retries + 1} times ({detail(exc)}){kept}",
                                "run again to resume it, or " + offline_fix(out)) from None
        except requests.exceptions.RequestException as exc:     # an invalid URL, too many redirects
            raise DataError(f"cannot download dSprites from {url} ({detail(exc)})", offline_fix(out)) from None
    got = _md5(partial)
    if got != md5:
        partial.unlink()
        raise DataError(f"{url} gave a file with md5 {got}, expected {md5}; nothing was written",
                        "retry the download (a proxy or partial transfer can alter it), or " + offline_fix(out))
    os.replace(partial, out)
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
