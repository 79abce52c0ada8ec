"""Demo images for `make run`: PneumoniaMNIST validation images with their labels.

They go through the same steps as a browser upload, in this order and in this process (the workers
are not started yet when `make run` sets up): declared and sent in class folders (``normal/…``,
``pneumonia/…``) in an upload labelled by its folder names, so each image gets the dataset's label
as a label given at upload (source "upload", the uploader as reader) exactly as a browser upload
would, and the admin dashboards have a reference standard; validated and filed, de-identified by
the release gate, previewed; then a queued inference result of the active ensemble, which
`manage.py pipeline_resume` hands to the "gpu" worker once it runs.

The validation split chose the members' checkpoints and fitted the ensemble's temperature: the
figures the dashboard shows on these images are optimistic, a demonstration, not a test.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage

from clinic_ai.accounts.models import Project, User
from clinic_ai.deidentification import services as deid_services
from clinic_ai.inference import services as inference_services
from clinic_ai.inference.demo import DEMO_DIR
from clinic_ai.labelling.models import Label, LabelSource
from clinic_ai.studies import services as study_services
from clinic_ai.studies.models import Image, ImageStatus, UploadLabelMode, UploadStatus

DEMO_DATA = DEMO_DIR / "pneumoniamnist_trainval.npz"
CLASSES = ("normal", "pneumonia")


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(pixels.astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def demo_cases(count: int) -> list[tuple[str, bytes]]:
    """(class name, PNG bytes): the first count/2 validation images of each class, alternating."""
    data = np.load(DEMO_DATA)
    images, labels = data["val_images"], data["val_labels"].ravel()
    per_class = [np.flatnonzero(labels == k)[: (count + 1) // 2] for k in range(len(CLASSES))]
    order = [int(i) for pair in zip(*per_class, strict=False) for i in pair][:count]
    return [(CLASSES[int(labels[i])], _png(images[i])) for i in order]


def demo_images_install(*, project: Project, uploader: User, count: int) -> dict[str, int]:
    """Upload, release, label and queue `count` demo images, once: nothing happens when the project
    already has images. Returns counts for the command to print."""
    if count <= 0 or Image.objects.filter(project=project).exists():
        return {"released": 0, "labelled": 0, "queued": 0}
    batch = study_services.upload_batch_create(user=uploader, project=project, label_mode=UploadLabelMode.FOLDERS)
    for i, (name, png) in enumerate(demo_cases(count)):
        upload = study_services.upload_file_declare(batch=batch, name=f"{name}/{i:03d}.png", size=len(png))
        study_services.upload_chunk_append(upload=upload, offset=0, data=png)
    study_services.upload_batch_finish(batch=batch)

    filed = []
    for upload in batch.files.filter(status=UploadStatus.RECEIVED).order_by("created", "pk"):
        outcome = study_services.uploaded_file_process(upload_id=upload.pk)
        if outcome.image_id is not None:
            filed.append(outcome.image_id)
    queued, released = [], 0
    for image_id in filed:
        if deid_services.image_deidentify(image_id=image_id) != ImageStatus.RELEASED:
            continue  # held or rejected: a person would look at it; the demo leaves it be
        study_services.image_preview_render(image_id=image_id)
        released += 1
        queued += inference_services.results_for_released_image(image_id=image_id)
    labelled = Label.objects.filter(project=project, source=LabelSource.UPLOAD, is_current=True).count()
    return {"released": released, "labelled": labelled, "queued": len(queued)}
