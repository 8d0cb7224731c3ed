"""The one error this plugin adds: the worker is unreachable, too slow, or answered garbage."""

from dk.errors import DkError


class WorkerError(DkError):
    """The HTTP worker cannot be reached, timed out, or answered something that is not OIP v2."""
