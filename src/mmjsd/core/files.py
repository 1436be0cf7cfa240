"""Files: atomic writes, temporaries of killed writers, the one JSON and torch reader, content checksums.

Every output goes to a temporary file (or folder) in the destination folder and is
`os.replace`d into place, so a killed job leaves either the old file or the new one, never half
of one. Every JSON and torch file is read through `read_json` / `torch_load`, which turn a
missing or unreadable file into the project's one-line error.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import math
import os
import platform
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import torch

from mmjsd.errors import DataError, MmjsdError, detail



@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` if the block succeeds.

    The temporary name says who writes it (`.NAME.HOST.PID.RANDOM.tmp`), so the next write into
    the same folder removes what a killed writer left behind (`sweep_temporaries`).
    A write error without a file name (a full disk) is re-raised naming `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_temporaries(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as exc:
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
        raise
    except RuntimeError as exc:
        # torch's zip writer reports a failed write (a full disk) as a RuntimeError: "file write
        # failed", or "unexpected pos N vs M" when the short write shows at the end of the archive
        if not any(sign in str(exc).lower() for sign in ("write", "inline_container", "unexpected pos")):
            raise
        free = shutil.disk_usage(path.parent).free
        code = errno.ENOSPC if free < 1 << 20 else errno.EIO
        raise OSError(code, f"writing failed ({' '.join(str(exc).split())}; {free} bytes free there)", str(path)) from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


_HOST = "".join(c if c.isalnum() or c == "-" else "-" for c in platform.node().split(".")[0]) or "host"
_TEMP_RE = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.(tmp|old)$")
_LEGACY_TEMP_RE = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.(tmp|old)$")


def temp_prefix(name: str) -> str:
    """The start of a temporary name for `name` that says which writer made it (see sweep_temporaries)."""
    return f".{name}.{_HOST}.{os.getpid()}."
STALE_FOREIGN_S = 24 * 3600     # a temporary file of another host is stale after a day
STALE_LEGACY_S = 600            # one from before writers were named, after ten minutes


def sweep_tree(root: str | os.PathLike) -> list[Path]:
    """sweep_temporaries in `root` and every folder below it (every `mmjsd` command starts with
    this over its scale's data and results folders: a writer killed by SIGKILL leaves its
    temporary file behind, and no later job of the same kind may come to clean it)."""
    removed: list[Path] = []
    for folder, _, _ in os.walk(root):
        removed += sweep_temporaries(folder)
    return removed


def sweep_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of writers that are gone: this host's whose process has ended,
    another host's older than a day (a shared file system; its pids mean nothing here).
    Returns what it removed."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        if not entry.name.endswith((".tmp", ".old")) or not entry.name.startswith("."):
            continue
        match = _TEMP_RE.match(entry.name)
        try:
            if match and match["host"] == _HOST:
                stale = not process_alive(int(match["pid"]))
            elif match:
                stale = now - entry.stat(follow_symlinks=False).st_mtime > STALE_FOREIGN_S
            elif _LEGACY_TEMP_RE.match(entry.name):
                stale = now - entry.stat(follow_symlinks=False).st_mtime > STALE_LEGACY_S
            else:
                continue
            if stale:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def process_alive(pid: int) -> bool:
    """Whether a process of this host with id `pid` exists (this process counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder next to `path`; if the block succeeds, it replaces `path` (an
    existing folder is moved aside first and removed after). The folder analogue of
    `atomic_path`: a killed writer leaves the old folder or the new one, and its temporary
    folder is swept by the next write into the same parent."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_temporaries(path.parent)      # what a killed earlier call left behind
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())    # mkdtemp makes 0700; the result is an ordinary folder
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=temp_prefix(path.name), suffix=".old", dir=path.parent))
            os.replace(path, old / "previous")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_text_if_changed(path: str | os.PathLike, text: str) -> bool:
    """Write `text` (atomically) only when the file does not already hold it; True if written.

    For files whose mtime Snakemake reads as "the content changed" (the CelebA manifest): an
    unchanged file keeps its mtime, so nothing downstream reruns.
    """
    try:
        if Path(path).read_bytes() == text.encode("utf-8"):
            return False
    except OSError:
        pass
    write_text(path, text)
    return True


def read_json(path: str | os.PathLike, fix: str, what: str = "") -> Any:
    """A JSON file's content; missing or invalid -> DataError naming `fix` (`what`, e.g.
    "classifier metrics", starts the message)."""
    path = Path(path)
    name = f"{what} {path}" if what else str(path)
    if not path.is_file():
        raise DataError(f"{name} not found", fix)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{name} is not valid JSON ({exc})", fix) from None


def torch_load(path: str | os.PathLike, what: str, fix: str, missing_fix: str | None = None,
               weights_only: bool = True, error: type[MmjsdError] = DataError, mmap: bool = False) -> Any:
    """The object in a torch file, on the CPU. Missing -> `error` "<what> <path> not found"
    (fix `missing_fix`, default `fix`); unreadable -> `error` "<what> <path> cannot be read (...)".
    `weights_only=False` only for the project's own checkpoints (they hold optimiser state).
    `mmap=True` maps the tensors instead of reading them: cheap when only the small pickled part
    (spec, fingerprint) is looked at."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} not found", missing_fix or fix)
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only, mmap=mmap)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a truncated, damaged or foreign file
        raise error(f"{what} {path} cannot be read ({detail(exc)})", fix) from None


def check_checksum(blob: dict, what: str, path: str | os.PathLike, fix: str, keys: tuple[str, ...] | None = None,
                   required: bool = False, error: type[MmjsdError] = DataError) -> None:
    """`error` unless `blob["checksum"]` is the content_checksum of its other entries (of `keys`
    when given): torch.load does not notice damage inside a tensor's bytes. Files written before
    checksums were kept have none; they pass unless `required`."""
    stored = blob.get("checksum")
    if stored is None and not required:
        return
    content = {k: blob.get(k) for k in keys} if keys is not None else {k: v for k, v in blob.items() if k != "checksum"}
    if stored != content_checksum(content):
        raise error(f"{what} {path} is damaged: its contents do not match the checksum stored in it", fix)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


SEAL_KEY = "content_sha256"


def _seal_of(record: dict) -> str:
    body = {k: v for k, v in record.items() if k != SEAL_KEY}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=_json_default).encode()).hexdigest()


def sealed(record: dict) -> dict:
    """The record with the sha256 of its own content (canonical JSON, the seal left out): a number
    edited by hand afterwards no longer matches it (seal_problem)."""
    return {**record, SEAL_KEY: _seal_of(record)}


def seal_problem(record: Any) -> str | None:
    """None when `record` is a JSON object whose seal matches its content, else what is wrong."""
    if not isinstance(record, dict):
        return f"it holds a JSON {type(record).__name__}, not the object the step writes"
    if SEAL_KEY not in record:
        return f"it carries no {SEAL_KEY} seal, so its numbers cannot be checked"
    if record[SEAL_KEY] != _seal_of(record):
        return f"its content does not match its {SEAL_KEY} seal: it was edited after the step wrote it"
    return None


def json_safe(obj: Any) -> Any:
    """JSON has no NaN: replace non-finite floats by None, recursively (tuples become lists)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def torch_save(path: str | os.PathLike, obj: Any) -> None:
    """torch.save through a buffer: identical objects give identical bytes, written atomically."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes(path, buffer.getvalue())


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# --------------------------------------------------------------------------------------------
# Fingerprints and checksums (issue 15): what made an artifact, and whether its bytes are intact
# --------------------------------------------------------------------------------------------

def content_checksum(obj: Any) -> str:
    """sha256 over the content of nested dicts/lists/tuples of tensors and plain values, in key
    order: a tensor's dtype, shape and bytes; anything else its repr. Damage inside a saved
    tensor's data (which torch.load does not notice) changes it."""
    digest = hashlib.sha256()

    def walk(node: Any) -> None:
        if isinstance(node, torch.Tensor):
            t = node.detach().cpu().contiguous()
            digest.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(node, dict):
            digest.update(b"{")
            for key in sorted(node, key=str):
                digest.update(repr(key).encode())
                walk(node[key])
            digest.update(b"}")
        elif isinstance(node, (list, tuple)):
            digest.update(b"[")
            for item in node:
                walk(item)
            digest.update(b"]")
        else:
            digest.update(repr(node).encode())

    walk(obj)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """sha256 of a file's bytes (read in 4 MiB chunks: ~2 s for the 2.7 GB paper dSprites split)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def rotate_logs(folder: str | os.PathLike, keep: int = 3) -> list[Path]:
    """Copy every `*.log` in `folder` to `.log.1`, shifting older copies up to `.log.<keep>`.

    Called when a workflow run starts (Snakefile `onstart`): Snakemake empties a job's log when it
    reruns the job, so the previous run's log survives as `<name>.log.1`. Copies, not moves, so
    the logs of jobs that do not rerun stay where they were. Returns the logs copied.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    copied = []
    for log in sorted(folder.glob("*.log")):
        for index in range(keep - 1, 0, -1):
            older = log.with_name(f"{log.name}.{index}")
            if older.exists():
                os.replace(older, log.with_name(f"{log.name}.{index + 1}"))
        shutil.copy2(log, log.with_name(f"{log.name}.1"))
        copied.append(log)
    return copied

