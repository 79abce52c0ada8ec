"""Queue again every pipeline step that has not run.

Redis here keeps nothing on disk, and a task can be lost with it; the rows keep their status, so
this finds them. Every step checks its row's status, so queueing one twice is harmless.
`make run` calls it when it starts the worker.
"""

from django.core.management.base import BaseCommand

from clinic_ai.deidentification.tasks import deidentify_image, mask_image
from clinic_ai.studies.selectors import pipeline_pending
from clinic_ai.studies.tasks import process_uploaded_file, render_image_preview


class Command(BaseCommand):
    help = "Queue again the pipeline steps of uploads and images that are not finished."

    def handle(self, *args, **options):
        pending = pipeline_pending()
        for upload_id in pending["uploads"]:
            process_uploaded_file.delay(str(upload_id))
        for image_id in pending["deidentify"]:
            deidentify_image.delay(str(image_id))
        for image_id in pending["mask"]:
            mask_image.delay(str(image_id))
        for image_id in pending["preview"]:
            render_image_preview.delay(str(image_id))
        counts = {step: len(ids) for step, ids in pending.items()}
        self.stdout.write(
            f"Queued again: {counts['uploads']} uploads, {counts['deidentify']} de-identifications, "
            f"{counts['mask']} masks, {counts['preview']} previews."
        )
