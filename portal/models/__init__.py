"""Models of the portal app, one module each."""

from .job import Job, JobStatus
from .node import NodeSettings, NodeStatus, SetupAttempt

__all__ = ["Job", "JobStatus", "NodeSettings", "NodeStatus", "SetupAttempt"]
