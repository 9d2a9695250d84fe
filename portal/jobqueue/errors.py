"""Errors of the job pipeline, each with a message an operator can read."""

from __future__ import annotations


class JobFailed(Exception):
    """An expected failure: the job stops and is marked *failed*.

    Raise it from a job with a message in the operator's words, e.g.
    ``JobFailed(_("The interface wlan0 is gone."))``; the message is shown on
    the job page as is. Any other exception marks the job *errored*.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = str(message)


class JobRefused(Exception):
    """The worker refuses to run a job (not in the registry, bad payload).

    Nothing of the job runs; if a ``Job`` row exists it is marked failed.
    """


class JobInputError(ValueError):
    """A caller asked for a job that cannot exist (unknown kind, bad args)."""


class JobNotRetryable(ValueError):
    """Retry was asked for a job that did not fail or error."""
