"""Purge abandoned uploads, erase old upload file names, purge originals past their retention period.

The same work as the `housekeeping` task, which celery beat queues every HOUSEKEEPING_INTERVAL_MINUTES
(and every finished upload queues once). Without beat, run this from cron at that interval.
"""

from django.core.management.base import BaseCommand

from clinic_ai.deidentification.services import quarantine_purge_expired
from clinic_ai.studies.services import upload_names_erase_expired, uploads_abandoned_purge


class Command(BaseCommand):
    help = "Erase expired upload file names and purge expired quarantined originals."

    def handle(self, *args, **options):
        abandoned = uploads_abandoned_purge()
        names = upload_names_erase_expired()
        purged = quarantine_purge_expired()
        self.stdout.write(
            f"Purged {abandoned} unfinished uploads; erased the file names of {names} uploads; "
            f"purged {purged} quarantined originals."
        )
