"""``manage.py node_start``: queue the jobs a node runs once its worker is up
(see :mod:`portal.start_jobs`); prints their ids."""

from typing import Any

from django.core.management.base import BaseCommand

from portal.start_jobs import queue_start_jobs


class Command(BaseCommand):
    help = "Queue the start jobs: services to their stored state, the uplink again."

    def handle(self, *args: Any, **options: Any) -> None:
        for job in queue_start_jobs():
            self.stdout.write(f"{job.pk} {job.kind}")
