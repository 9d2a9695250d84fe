"""Queue the reconcile job: every service to its stored on/off state.

Run once at boot (after the worker is up), e.g. by runnode or a systemd
``ExecStartPost=``; the job itself reads the system, so running it twice is
harmless.
"""

from django.core.management.base import BaseCommand

from portal.jobqueue.services import enqueue_job


class Command(BaseCommand):
    help = "Queue services.reconcile (bring services to their stored state)."

    def handle(self, *args: object, **options: object) -> None:
        job = enqueue_job(kind="services.reconcile")
        self.stdout.write(str(job.pk))
