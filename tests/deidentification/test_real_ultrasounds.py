"""Real images from deid's test data: ultrasounds with burned-in annotations, CTs and a radiograph without."""

from pathlib import Path

import deid_data
import pydicom
import pytest

from clinic_ai.deidentification import services
from clinic_ai.studies.models import Image, ImageStatus
from tests.conftest import run_pipeline_inline, upload_through_api

pytestmark = pytest.mark.django_db

DATA = Path(deid_data.__file__).parent / "data"


@pytest.mark.parametrize(
    "name", ["ultrasounds/GREYSCALE_IMAGE.dcm", "ultrasounds/RGB_IMAGE.dcm", "ultrasounds/ultrasound-multiframe.dcm"]
)
def test_real_ultrasounds_are_held_with_their_text_found_and_masked_on_release(client, project, radiologist, name):
    from django.test import TestCase

    client.force_login(radiologist)
    upload_through_api(client, project, {"us.dcm": (DATA / name).read_bytes()})
    run_pipeline_inline()
    image = Image.objects.get()
    assert image.status == ImageStatus.HELD
    suggested = [tuple(b) for b in image.suggested_boxes]
    assert suggested, "the annotations of a real ultrasound should be found"
    services.image_mask_request(
        user=radiologist, image_id=image.pk, boxes=suggested, save_template=False, confirm_no_text=False
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.image_mask_apply(image_id=image.pk)  # what the mask_image task does
    image.refresh_from_db()
    released = services.storage.media_path(image.released_path)
    ds = pydicom.dcmread(released)
    assert ds.BurnedInAnnotation == "NO" and ds.PatientIdentityRemoved == "YES"
    assert int(ds.get("NumberOfFrames", 1) or 1) == image.frames
    pixels = ds.pixel_array if image.frames > 1 else ds.pixel_array[None]
    for x0, y0, x1, y1 in suggested:
        assert not pixels[:, y0:y1, x0:x1].any(), "every frame is black inside every box"

    # OCR is not perfect: a line it missed the first time can show up once its neighbours are masked,
    # which is why a person reviews every held image. Most of the text must be gone.
    def area(boxes):
        return sum((b[2] - b[0]) * (b[3] - b[1]) for b in boxes)

    assert area(services.detect_text(released, "dicom")) < area(suggested) / 4


def test_a_radiograph_without_text_is_released(client, project, radiologist):
    client.force_login(radiologist)
    upload_through_api(client, project, {"img.dcm": (DATA / "animals/cat.dcm").read_bytes()})
    run_pipeline_inline()
    image = Image.objects.get()
    assert image.status == ImageStatus.RELEASED, image.hold_reason


@pytest.mark.parametrize("name", ["humans/ctbrain1.dcm", "humans/ctbrain2.dcm"])
def test_secondary_captures_are_held_by_their_class_though_no_text_is_found(client, project, radiologist, name):
    client.force_login(radiologist)
    upload_through_api(client, project, {"img.dcm": (DATA / name).read_bytes()})
    run_pipeline_inline()
    image = Image.objects.get()
    assert image.status == ImageStatus.HELD
    assert "Secondary Capture" in image.hold_reason
    assert image.suggested_boxes == []
