import io

import numpy as np
import pytest
from PIL import Image as PILImage

from clinic_ai.deidentification.models import DeidProfile
from clinic_ai.studies.models import Image, ImageStatus
from tests.conftest import run_pipeline_inline, upload_through_api


def distinct_png(seed: int, size: int = 48) -> bytes:
    """A small greyscale PNG whose bytes differ per seed (the same bytes twice are one image)."""
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    PILImage.fromarray((rng.random((size, size)) * 255).astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def released_images(client, project, radiologist):
    """released_images(n) -> n released images of `project` with previews, oldest first, uploaded
    through the browser's API and the real pipeline (OCR off: random noise has no text to find)."""

    def make(n: int) -> list[Image]:
        DeidProfile.objects.update_or_create(project=project, defaults={"ocr_enabled": False})
        client.force_login(radiologist)
        for i in range(n):
            # One upload per image, so their release order is their upload order.
            upload_through_api(client, project, {f"img{i}.png": distinct_png(1000 + i + 100 * Image.objects.count())})
            run_pipeline_inline()
        client.logout()
        images = list(Image.objects.filter(project=project).order_by("released_at", "created"))
        assert len(images) >= n and all(i.status == ImageStatus.RELEASED for i in images)
        assert all(i.preview_status == "ready" for i in images)
        return images

    return make
