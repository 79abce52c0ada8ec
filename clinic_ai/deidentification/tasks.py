from clinic_ai.core.tasks import cpu_task
from clinic_ai.deidentification import services


@cpu_task
def deidentify_image(image_id: str) -> None:
    services.image_deidentify(image_id=image_id)


@cpu_task
def mask_image(image_id: str) -> None:
    services.image_mask_apply(image_id=image_id)
