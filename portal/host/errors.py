"""Errors the host layer raises; each carries a message fit for an operator."""


class HostError(Exception):
    """Base class: something about the system could not be done."""


class InvalidValue(HostError, ValueError):
    """A parameter failed validation before it reached an argv or a file."""


class CommandNotAllowed(HostError):
    """The executable is not on the allow-list, or the argv is malformed."""


class CommandFailed(HostError):
    """A command exited non-zero (or timed out) where success was required."""

    def __init__(self, message: str, result: object | None = None) -> None:
        super().__init__(message)
        self.result = result
