"""User-facing failures: each becomes one line and a non-zero exit in the CLI."""


def cause_line(exc: BaseException) -> str:
    """The informative line of an engine exception: its last line, not a header such as
    OpenVINO's 'Exception from src/...cpp:117:' that hides the cause ('' if none)."""
    lines = [line.strip() for line in str(exc).splitlines()
             if line.strip() and not line.strip().startswith("Exception from ")]
    return lines[-1] if lines else ""


class Rn50Error(Exception):
    """Base of every failure the user can fix; its message is one line."""

    exit_code = 1


class ConfigError(Rn50Error):
    """A flag or setting is invalid or contradicts the platform."""

    exit_code = 2


class ModelError(Rn50Error):
    """A model file is missing, unreadable or not an image-classification model."""


class DataError(Rn50Error):
    """Input data is missing or unreadable."""


class OutputError(Rn50Error):
    """Results or logs cannot be written."""


class EngineError(Rn50Error):
    """An inference engine is missing or failed."""


class WorkerError(Rn50Error):
    """The benchmark child process crashed, was killed or returned no result."""
