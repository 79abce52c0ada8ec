"""Labels given at upload (`label_upload_record`), as the demo images get theirs."""

import pytest

from clinic_ai.core.models import AuditEvent
from clinic_ai.labelling import services
from clinic_ai.labelling.models import Label
from tests.factories import ImageFactory

pytestmark = pytest.mark.django_db


def test_an_upload_label_is_recorded_audited_and_replaced_with_history(project, project_admin):
    image = ImageFactory(project=project, uploaded_by=project_admin)
    first = services.label_upload_record(actor=project_admin, project=project, image=image, values=["normal"])
    second = services.label_upload_record(actor=project_admin, project=project, image=image, values=["pneumonia"])
    assert (first.source, second.source) == ("upload", "upload")
    current = Label.objects.get(image=image, is_current=True)
    assert current == second and current.values == ["pneumonia"]
    assert Label.objects.get(pk=first.pk).withdrawn_at is not None
    assert AuditEvent.objects.filter(action="label.upload").count() == 2


def test_an_upload_label_outside_the_schema_is_refused(project, project_admin):
    image = ImageFactory(project=project, uploaded_by=project_admin)
    with pytest.raises(services.LabelRefused):
        services.label_upload_record(actor=project_admin, project=project, image=image, values=["fracture"])
    with pytest.raises(services.LabelRefused):
        services.label_upload_record(actor=project_admin, project=project, image=ImageFactory(), values=["normal"])
    assert not Label.objects.exists()
