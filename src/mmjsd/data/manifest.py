"""A CelebA folder described by its content, so that Snakemake tracks the content, not the folder's mtime.

A folder's mtime changes when a file is added, removed or renamed, not when a file is rewritten
in place: an edited attribute file or a replaced image went unnoticed, and stale processed data
stayed in use (issue 15). The Snakefile (workflow/rules/common.smk) therefore computes, at parse
time, a manifest of the folder `prepare` reads:

- the sha256 of list_attr_celeba.txt and list_eval_partition.txt (or that it is absent),
- whether the SYNTHETIC marker is there,
- the number of images (.jpg) in img_align_celeba/, their total size, and the sha256 of the sorted
  "name size" listing of them,

and writes it to `<paths.data>/raw/celeba_manifest.txt` only when its text changed. `prepare`
depends on that small file, so Snakemake's mtime rule ("input newer than output") now means
"the folder's content changed". Cheap: one directory listing and two hashed text files
(about 1.5 s for the 202,599 images of the full release; the 26 MB attribute file ~0.1 s).

Before a changed folder reruns `prepare` (whose outputs Snakemake deletes first), the Snakefile
validates it as `prepare` would (mmjsd.data.celeba.validate_folder); a bad JPEG or attribute row
stops the run there, the old manifest stays, and the processed splits are kept. A dry run
changes no existing manifest (it writes one only where none exists: Snakemake plans from it). Files that are not images are not listed: `prepare` never reads them.

Not seen: an image rewritten in place with the same size (hashing every image at each parse
would take minutes at full scale). DVC needs no manifest: it hashes the folder's files itself.

The same listing finds, before any job starts, the images that cannot be read: a zero-byte
file or a symbolic link loop stops the run with one line naming the file.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path
from typing import Callable

from mmjsd.core.files import file_sha256, write_text_if_changed
from mmjsd.data.celeba import ATTR_FILE, IMAGE_DIR, IMAGE_FIX, PARTITION_FILE, SYNTHETIC_MARKER
from mmjsd.errors import DataError, detail

IMAGE_SUFFIXES = (".jpg", ".jpeg")
MANIFEST_HEADER = ("# mmjsd CelebA folder manifest v1: what `prepare` reads, by content (written by the "
                   "Snakefile at parse time when it changes; src/mmjsd/data/manifest.py)")


def image_sizes(image_dir: Path) -> list[tuple[str, int]]:
    """(name, size in bytes) of every file in `image_dir`, sorted by name. A dangling symbolic
    link is left out (prepare counts it as missing); a zero-byte file or a link that cannot be
    followed (a loop, no permission) is a DataError naming it."""
    if not image_dir.is_dir():
        return []
    sizes = []
    for entry in os.scandir(image_dir):
        try:
            size = entry.stat().st_size
            is_file = entry.is_file()
        except FileNotFoundError:
            continue
        except OSError as exc:
            fix = (f"remove or repair the symbolic link {entry.path}" if exc.errno == errno.ELOOP
                   else f"make {entry.path} readable, " + IMAGE_FIX.replace("restore", "or restore", 1))
            raise DataError(f"{entry.path} cannot be read ({detail(exc)}); no job was started", fix) from None
        if not is_file or not entry.name.lower().endswith(IMAGE_SUFFIXES):
            continue     # prepare reads images only: a stray file changes nothing it reads
        if size == 0:
            raise DataError(f"{entry.path} is empty (0 bytes), not a JPEG; no job was started", IMAGE_FIX)
        sizes.append((entry.name, size))
    sizes.sort()
    return sizes


def folder_manifest(root: str | os.PathLike) -> str:
    """The manifest text of a CelebA folder (see the module docstring). Deterministic: no paths,
    no times, so two copies of the same folder give the same text."""
    root = Path(root)
    lines = [MANIFEST_HEADER]
    for name in (ATTR_FILE, PARTITION_FILE):
        path = root / name
        try:
            lines.append(f"{name} sha256 {file_sha256(path)}" if path.is_file() else f"{name} absent")
        except OSError as exc:
            raise DataError(f"{path} cannot be read ({detail(exc)}); no job was started",
                            f"make {path} readable or restore it from the CelebA release") from None
    lines.append(f"{SYNTHETIC_MARKER} {'present' if (root / SYNTHETIC_MARKER).is_file() else 'absent'}")
    sizes = image_sizes(root / IMAGE_DIR)
    listing = "".join(f"{name} {size}\n" for name, size in sizes).encode("utf-8")
    lines.append(f"{IMAGE_DIR}/ files {len(sizes)} bytes {sum(size for _, size in sizes)} "
                 f"listing-sha256 {hashlib.sha256(listing).hexdigest()}")
    return "\n".join(lines) + "\n"


def manifest_sha256(root: str | os.PathLike) -> str:
    """sha256 of the folder's manifest: CelebA's input digest in a processed split's fingerprint."""
    return hashlib.sha256(folder_manifest(root).encode("utf-8")).hexdigest()


def refresh_manifest(root: str | os.PathLike, out: str | os.PathLike, dry_run: bool = False,
                     before_change: Callable[[], None] | None = None) -> bool:
    """Write the folder's manifest to `out` when it differs from what `out` holds; True if it
    differs. `before_change` runs first when it differs (the Snakefile validates the folder there:
    a failure leaves the old manifest, so `prepare` is not started and its outputs stay). A dry
    run leaves an existing manifest alone."""
    text = folder_manifest(root)
    out = Path(out)
    if out.is_file() and out.read_text() == text:
        return False
    if before_change is not None:
        before_change()
    if not dry_run or not out.is_file():   # a first dry run needs the file to plan `prepare` at all
        write_text_if_changed(out, text)
    return True
