"""Errors that reach the user as one clear line.

Every error the CLI prints without a traceback derives from :class:`DkError`. The message names
the problem and, where there is one, what to do about it.
"""


class DkError(Exception):
    """A problem the user can fix; the CLI prints ``error: <message>`` and exits non-zero.

    :ivar result: the command's result document when it ran to the end and then failed (a bench
        with failed runs, a comparison outside tolerance); ``--json`` prints it with the error.
    """

    exit_code = 2
    result: dict | None = None


class UsageError(DkError):
    """A command-line option has a bad value (the message names the option)."""


class PluginNotFound(DkError):
    """``--plugin NAME`` names no installed plugin, or one that failed to load."""


class StageNotImplemented(DkError):
    """The chosen plugin does not implement the requested stage."""


class MissingDependency(DkError):
    """An optional library a plugin needs is not installed (the message says what to install)."""


class ModelError(DkError):
    """The model or artifact cannot be read: missing, not the expected format, truncated, unsafe."""


class InputError(DkError):
    """Inference inputs do not match the engine's inputs (names, rank, shape, dtype)."""


class DeviceError(DkError):
    """The requested device or execution provider is not available on this machine."""


class ToleranceExceeded(DkError):
    """``dk compare`` found outputs outside the tolerance for their precision."""

    exit_code = 1
