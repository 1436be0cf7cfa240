"""User-facing errors: one line that names the problem and the fix.

The CLI catches `MmjsdError`, prints `mmjsd: error: <problem> -- fix: <fix>` on one line and
exits with status 2. Library code raises it for bad input (missing or corrupt files, invalid
config, text outside the alphabet, a loss that turned NaN); programming errors stay ordinary
exceptions with tracebacks.
"""


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
