"""Queue again every pipeline step that has not run.

Redis here keeps nothing on disk, and a task can be lost with it; the rows keep their status, so
this finds them. Every step checks its row's status, so queueing one twice is harmless.
`make run` calls it when it starts the worker.
"""

from django.core.management.base import BaseCommand

from clinic_ai.pipeline import tasks


class Command(BaseCommand):
    help = "Queue again the pipeline steps of uploads and images that are not finished."

    def handle(self, *args, **options):
        counts = tasks.resume()
        self.stdout.write(
            f"Queued again: {counts['uploads']} uploads, {counts['deidentify']} de-identifications, "
            f"{counts['mask']} masks, {counts['preview']} previews, {counts['inference']} inference results."
        )
