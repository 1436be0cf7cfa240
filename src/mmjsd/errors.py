"""User-facing errors: one line that names the problem and the fix.

The CLI catches `MmjsdError`, prints `mmjsd: error: <problem> -- fix: <fix>` on one line and
exits with status 2. Library code raises it for bad input (missing or corrupt files, invalid
config, text outside the alphabet, a loss that turned NaN); programming errors stay ordinary
exceptions with tracebacks.
"""

import errno
import os


class MmjsdError(Exception):
    def __init__(self, problem: str, fix: str):
        super().__init__(problem, fix)
        self.problem = problem
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.problem} -- fix: {self.fix}"


class ConfigError(MmjsdError):
    """The configuration is invalid (unknown key, bad value, unknown scale)."""


class DataError(MmjsdError):
    """An input data file is missing, corrupt or malformed."""


class TrainingError(MmjsdError):
    """Training cannot continue (e.g. the loss became NaN/inf)."""


def detail(exc: BaseException) -> str:
    """An exception's full message on one line (never cut: the useful part is often at the end)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class EnvironmentProblem(MmjsdError):
    """The machine cannot do what was asked (disk full, folder not writable, no GPU driver)."""


def from_os_error(exc: OSError) -> MmjsdError:
    """A file-system error as one line naming the path and the fix (the CLI's last resort for
    environment faults: a full disk, a folder that cannot be written, a symlink loop)."""
    where = exc.filename if exc.filename is not None else "a file"
    where = os.fspath(where) if not isinstance(where, str) else where
    reason = exc.strerror or detail(exc)
    code = exc.errno
    if code == errno.ENOSPC or code == errno.EDQUOT:
        fix = (f"free space on the file system that holds {where} (df -h), then run the same command again: "
               f"finished outputs are kept and left-over temporary files are removed on the next run")
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = (f"make {where} (and its folder) writable by this user, or point paths.data/paths.results "
               f"in the config at a writable folder")
    elif code == errno.ELOOP:
        fix = f"remove or repair the symbolic link {where} (it points, directly or not, at itself)"
    elif code in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        fix = f"{where} is in the way: a file where a folder is needed or the reverse; move it aside or change the path"
    elif code == errno.ENOENT:
        fix = f"check that {where} exists (run the step that writes it: `snakemake all`)"
    else:
        fix = f"check the file system at {where} and run the same command again"
    return EnvironmentProblem(f"{where}: {reason} (errno {code})", fix)
