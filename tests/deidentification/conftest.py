"""Fixtures of the masking tests: an ultrasound held for masking, and a second radiologist."""

import pytest

from clinic_ai.accounts.models import Role
from clinic_ai.studies.models import Image, ImageStatus
from tests.conftest import run_pipeline_inline, upload_through_api

from .synthetic import ultrasound_bytes


@pytest.fixture
def held_image(client, project, radiologist):
    client.force_login(radiologist)
    upload_through_api(client, project, {"us.dcm": ultrasound_bytes()})
    run_pipeline_inline()
    client.logout()
    image = Image.objects.get()
    assert image.status == ImageStatus.HELD
    return image


@pytest.fixture
def other_radiologist(project, member_of):
    return member_of(project, Role.RADIOLOGIST)
