"""Models of the portal app, one module each."""

from .job import Job, JobStatus
from .node import NodeSettings

__all__ = ["Job", "JobStatus", "NodeSettings"]
