"""The jobs a node queues once its worker runs: at boot, and after the
worker restarts (``runnode`` in the lab, ``ExecStartPost=`` of the worker's
systemd unit on a real node, through ``manage.py node_start``).

Each app brings the system back to its stored state: every service to its
on/off state, the gateway's uplink set up again. The jobs read the system
first, so running them twice changes nothing.
"""

from __future__ import annotations

from django.apps import apps

from portal.jobqueue.services import enqueue_job
from portal.models import Job


def queue_start_jobs() -> list[Job]:
    """Queue every installed app's start job; returns the jobs queued."""
    queued: list[Job] = []
    if apps.is_installed("services"):
        queued.append(enqueue_job(kind="services.reconcile"))
    if apps.is_installed("gateway"):
        from gateway.services import start_request

        job = start_request()
        if job is not None:
            queued.append(job)
    return queued
