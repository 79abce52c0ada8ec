"""Read the worklist fields (pseudonym, age, sex, body part, descriptions) of studies released
before those fields existed, from their released files.

    python manage.py worklist_fields_backfill

Safe to run again: it reads every released DICOM image and writes the same values.
"""

from django.core.management.base import BaseCommand

from clinic_ai.deidentification import services


class Command(BaseCommand):
    help = "Fill the worklist fields of released studies from their released DICOM files."

    def handle(self, *args, **options):
        count = services.released_display_fields_backfill()
        self.stdout.write(f"Read {count} released DICOM image(s).")
